package esm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kgo"
)

var msArn = "arn:aws:kafka:us-west-2:012345678901:cluster/ExampleMSKCluster/e9f754c6-d29a-4430-a7db-958a19fd2c54-4"

// TestEncoderMatchesAWSSample encodes the record of aws-lambda-go's sample
// MSK event and requires the same JSON document.
func TestEncoderMatchesAWSSample(t *testing.T) {
	want, err := os.ReadFile("testdata/aws-kafka-event.json")
	if err != nil {
		t.Fatal(err)
	}
	kv := mustB64(t, "OGQ1NTk2YjQtMTgxMy00MjM4LWIyNGItNmRhZDhlM2QxYzBj")
	r := &kgo.Record{
		Topic: "AWSKafkaTopic", Partition: 0, Offset: 0,
		Timestamp: time.UnixMilli(1595035749700),
		Key:       kv, Value: kv,
		Headers: []kgo.RecordHeader{{Key: "headerKey", Value: []byte{118, 0xdc, 0, 127, 0x80}}},
	}
	enc := NewEncoder(msArn, []string{
		"b-2.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092",
		"b-1.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092",
	})
	got := enc.Append(nil, []*kgo.Record{r})
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("our event is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("event differs from AWS sample:\n got %s\nwant %s", got, want)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncoderRoundTrip decodes events with tricky records into
// events.KafkaEvent and checks every field, the null/empty distinction,
// the exact size prediction and the envelope for both event sources.
func TestEncoderRoundTrip(t *testing.T) {
	ts := time.UnixMilli(1700000000123)
	uniTopic := "tópico-\"q\"\\\n\t\u2028😀"
	recs := []*kgo.Record{
		{Topic: "t", Partition: 0, Offset: 5, Timestamp: ts, Key: nil, Value: []byte("v0")},
		{Topic: "t", Partition: 1, Offset: 9, Timestamp: ts, Key: []byte{}, Value: []byte{}},
		{Topic: "t", Partition: 0, Offset: 6, Timestamp: ts, Key: []byte("k"), Value: nil,
			Headers: []kgo.RecordHeader{
				{Key: "dup", Value: []byte{0x00, 0x7f, 0x80, 0xff}},
				{Key: "dup", Value: []byte{}},
				{Key: "é\"x", Value: nil},
				{Key: "dup", Value: []byte{1}},
			}},
		{Topic: uniTopic, Partition: 12345, Offset: 1 << 40, Timestamp: ts,
			Key: bytes.Repeat([]byte{0xfe}, 7), Value: []byte{0, 1, 2}},
		{Topic: "t", Partition: 1, Offset: 10, Timestamp: time.UnixMilli(-5), Key: nil, Value: nil},
	}
	for _, tc := range []struct {
		name, arn, source string
		bootstrap         []string
	}{
		{"self-managed", "", EventSourceSelfManaged, []string{"127.0.0.1:1", "127.0.0.1:2"}},
		{"msk", msArn, EventSourceMSK, []string{"b-1:9098"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := NewEncoder(tc.arn, tc.bootstrap)
			out := enc.Append([]byte("garbage-prefix-kept"), recs)
			if !bytes.HasPrefix(out, []byte("garbage-prefix-kept")) {
				t.Fatal("Append must append")
			}
			out = out[len("garbage-prefix-kept"):]
			if got, want := enc.Size(recs), len(out); got != want {
				t.Fatalf("Size=%d, Append wrote %d", got, want)
			}
			if !json.Valid(out) {
				t.Fatalf("invalid JSON: %s", out)
			}

			var ev events.KafkaEvent
			if err := json.Unmarshal(out, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.EventSource != tc.source || ev.EventSourceARN != tc.arn || ev.BootstrapServers != strings.Join(tc.bootstrap, ",") {
				t.Fatalf("envelope: %+v", ev)
			}
			wantKeys := map[string][]*kgo.Record{
				"t-0":               {recs[0], recs[2]},
				"t-1":               {recs[1], recs[4]},
				uniTopic + "-12345": {recs[3]},
			}
			if len(ev.Records) != len(wantKeys) {
				t.Fatalf("got %d partition keys, want %d: %v", len(ev.Records), len(wantKeys), keys(ev.Records))
			}
			for key, want := range wantKeys {
				got := ev.Records[key]
				if len(got) != len(want) {
					t.Fatalf("%q: %d records, want %d", key, len(got), len(want))
				}
				for i, w := range want {
					checkRecord(t, got[i], w)
				}
			}

			// Null vs empty: decode generically to see which fields exist.
			var raw struct {
				Records map[string][]map[string]json.RawMessage `json:"records"`
			}
			if err := json.Unmarshal(out, &raw); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				key        string
				i          int
				field      string
				present    bool
				rawPresent string
			}{
				{"t-0", 0, "key", false, ""},
				{"t-0", 1, "value", false, ""},
				{"t-1", 0, "key", true, `""`},
				{"t-1", 0, "value", true, `""`},
				{"t-1", 1, "key", false, ""},
				{"t-1", 1, "value", false, ""},
				{"t-1", 1, "headers", true, `[]`},
			} {
				v, ok := raw.Records[c.key][c.i][c.field]
				if ok != c.present || (ok && string(v) != c.rawPresent) {
					t.Errorf("%s[%d].%s: present=%v raw=%s, want present=%v raw=%s", c.key, c.i, c.field, ok, v, c.present, c.rawPresent)
				}
			}
			if _, ok := ev.Records["t-0"]; ok && tc.arn == "" && bytes.Contains(out, []byte("eventSourceArn")) {
				t.Error("self-managed events must not carry eventSourceArn")
			}
			// Partition keys in order of first appearance.
			if i, j := bytes.Index(out, []byte(`"t-0":`)), bytes.Index(out, []byte(`"t-1":`)); i < 0 || j < i {
				t.Errorf("partition keys out of first-appearance order")
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func checkRecord(t *testing.T, got events.KafkaRecord, want *kgo.Record) {
	t.Helper()
	if got.Topic != want.Topic || got.Partition != int64(want.Partition) || got.Offset != want.Offset {
		t.Errorf("identity: got %s/%d/%d, want %s/%d/%d", got.Topic, got.Partition, got.Offset, want.Topic, want.Partition, want.Offset)
	}
	if !got.Timestamp.Time.Equal(want.Timestamp) {
		t.Errorf("%d: timestamp %v, want %v", want.Offset, got.Timestamp.Time, want.Timestamp)
	}
	wantType := TimestampCreateTime
	if want.Attrs.TimestampType() == 1 {
		wantType = TimestampLogAppendTime
	}
	if got.TimestampType != wantType {
		t.Errorf("%d: timestampType %q, want %q", want.Offset, got.TimestampType, wantType)
	}
	for _, f := range []struct {
		name string
		enc  string
		raw  []byte
	}{{"key", got.Key, want.Key}, {"value", got.Value, want.Value}} {
		dec, err := base64.StdEncoding.DecodeString(f.enc)
		if err != nil {
			t.Errorf("%d: %s not base64: %v", want.Offset, f.name, err)
		}
		if !bytes.Equal(dec, f.raw) {
			t.Errorf("%d: %s %x, want %x", want.Offset, f.name, dec, f.raw)
		}
	}
	if len(got.Headers) != len(want.Headers) {
		t.Fatalf("%d: %d headers, want %d", want.Offset, len(got.Headers), len(want.Headers))
	}
	for i, h := range want.Headers {
		if len(got.Headers[i]) != 1 {
			t.Fatalf("%d: header %d has %d entries, want 1", want.Offset, i, len(got.Headers[i]))
		}
		v, ok := got.Headers[i][h.Key]
		if !ok || !bytes.Equal(v, h.Value) {
			t.Errorf("%d: header %d = %v, want %q:%v", want.Offset, i, got.Headers[i], h.Key, h.Value)
		}
	}
}

// TestEncoderEscaping covers JSON escaping against encoding/json, including
// invalid UTF-8 (which becomes U+FFFD) and control characters.
func TestEncoderEscaping(t *testing.T) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x01\x1f\x7f", "\u2028\u2029", "é😀", "\xff\xfe", "ok\xc3"} {
		got := appendStringBody(nil, s)
		if len(got) != stringLen(s) {
			t.Errorf("%q: stringLen %d, wrote %d", s, stringLen(s), len(got))
		}
		var dec string
		if err := json.Unmarshal([]byte(`"`+string(got)+`"`), &dec); err != nil {
			t.Errorf("%q: %v (%s)", s, err, got)
			continue
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if s == "\xff\xfe" {
			want = "\uFFFD\uFFFD"
		}
		if dec != want {
			t.Errorf("%q: decoded %q, want %q", s, dec, want)
		}
	}
}

// TestRecordSizeMatches checks the size prediction on random-ish shapes,
// including every byte value in headers.
func TestRecordSizeMatches(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	enc := NewEncoder("", []string{"x:1"})
	var recs []*kgo.Record
	for i := range 50 {
		r := &kgo.Record{Topic: "topic" + strings.Repeat("é", i%3), Partition: int32(i % 4), Offset: int64(i * 997), Timestamp: time.UnixMilli(int64(i) * 1e9)}
		if i%2 == 0 {
			r.Key = all[:i]
		}
		if i%3 != 0 {
			r.Value = all[i:]
		}
		if i%5 == 0 {
			r.Headers = []kgo.RecordHeader{{Key: "h", Value: all}, {Key: "", Value: nil}}
		}
		recs = append(recs, r)
		if got, want := enc.Size(recs), len(enc.Append(nil, recs)); got != want {
			t.Fatalf("after %d records: Size %d, Append %d", i+1, got, want)
		}
	}
}

func BenchmarkEncoder(b *testing.B) {
	val := bytes.Repeat([]byte("0123456789"), 100)
	recs := make([]*kgo.Record, 100)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "orders", Partition: int32(i % 6), Offset: int64(i), Timestamp: time.Now(),
			Key: []byte("key-000000"), Value: val, Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("abcdef0123456789")}}}
	}
	enc := NewEncoder("", []string{"127.0.0.1:9092"})
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.Append(buf[:0], recs)
	}
	b.SetBytes(int64(len(buf)))
}

func TestIntLen(t *testing.T) {
	for _, v := range []int64{0, 1, 9, 10, 99, 100, -1, -9, -10, -100, 1<<31 - 1, -1 << 31, math.MaxInt64, math.MinInt64} {
		if got, want := intLen(v), len(strconv.FormatInt(v, 10)); got != want {
			t.Errorf("intLen(%d) = %d, want %d", v, got, want)
		}
	}
}

// TestRecordSizerRemembersTopics checks that one sizer over records whose
// topics change (and repeat, and are empty or need escaping) gives what a
// fresh RecordSize gives for each.
func TestRecordSizerRemembersTopics(t *testing.T) {
	var sz recordSizer
	for i, topic := range []string{"a", "a", "bé", "", "", "a\"b", "a", "c\n", "c\n"} {
		r := &kgo.Record{Topic: topic, Partition: int32(i), Offset: int64(i) * 1001, Value: []byte("v")}
		if got, want := sz.size(r), len(NewEncoder("", nil).Append(nil, []*kgo.Record{r}))-NewEncoder("", nil).Overhead()-GroupOverhead(topic, int32(i)); got != want || got != RecordSize(r) {
			t.Fatalf("record %d (topic %q): sizer %d, encoded %d, RecordSize %d", i, topic, got, want, RecordSize(r))
		}
	}
}
