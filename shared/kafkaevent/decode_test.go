package kafkaevent

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kgo"
)

func awsSample(t testing.TB) []byte {
	t.Helper()
	// The sample shipped with aws-lambda-go, from the module cache.
	dir := moduleDir(t, "github.com/aws/aws-lambda-go")
	b, err := os.ReadFile(filepath.Join(dir, "events", "testdata", "kafka-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compareWithStd decodes data both ways and checks every record agrees
// with encoding/json into events.KafkaEvent.
func compareWithStd(t *testing.T, data []byte) *Event {
	t.Helper()
	ev, err := Decode(data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	var std events.KafkaEvent
	if err := json.Unmarshal(data, &std); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if ev.EventSource != std.EventSource || ev.EventSourceARN != std.EventSourceARN || ev.BootstrapServers != std.BootstrapServers {
		t.Fatalf("top level differs: %+v vs %+v", ev, std)
	}
	total := 0
	for _, p := range ev.Partitions {
		key := p.Topic + "-" + itoa(p.Partition)
		srs := std.Records[key]
		if len(srs) != len(p.Records) {
			t.Fatalf("%s: %d records, std %d", key, len(p.Records), len(srs))
		}
		for i, r := range p.Records {
			s := srs[i]
			total++
			if r.Topic != s.Topic || int64(r.Partition) != s.Partition || r.Offset != s.Offset || !r.Timestamp.Equal(s.Timestamp.Time) {
				t.Errorf("%s[%d]: coordinates differ: %v/%d/%d/%v vs %+v", key, i, r.Topic, r.Partition, r.Offset, r.Timestamp, s)
			}
			checkB64(t, key+" key", r.Key, s.Key)
			checkB64(t, key+" value", r.Value, s.Value)
			var sh []kgo.RecordHeader
			for _, m := range s.Headers {
				for k, v := range m {
					sh = append(sh, kgo.RecordHeader{Key: k, Value: v})
				}
			}
			if len(sh) != len(r.Headers) {
				t.Fatalf("%s[%d]: %d headers, std %d", key, i, len(r.Headers), len(sh))
			}
			for j := range sh {
				if sh[j].Key != r.Headers[j].Key || !bytes.Equal(sh[j].Value, r.Headers[j].Value) {
					t.Errorf("%s[%d] header %d: %q=%v, std %q=%v", key, i, j, r.Headers[j].Key, r.Headers[j].Value, sh[j].Key, sh[j].Value)
				}
			}
		}
	}
	if total != ev.Records {
		t.Fatalf("Records = %d, counted %d", ev.Records, total)
	}
	return ev
}

func checkB64(t *testing.T, what string, got []byte, std string) {
	t.Helper()
	want, err := base64.StdEncoding.DecodeString(std)
	if err != nil {
		t.Fatalf("%s: std base64: %v", what, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func TestDecodeAWSSample(t *testing.T) {
	ev := compareWithStd(t, awsSample(t))
	if ev.EventSource != SourceMSK || len(ev.Partitions) != 1 || ev.Records != 1 {
		t.Fatalf("unexpected event: %+v", ev)
	}
	r := ev.Partitions[0].Records[0]
	if string(r.Key) != "8d5596b4-1813-4238-b24b-6dad8e3d1c0c" || r.Headers[0].Key != "headerKey" ||
		!bytes.Equal(r.Headers[0].Value, []byte{118, 220, 0, 127, 128}) || r.Timestamp.UnixMilli() != 1595035749700 {
		t.Fatalf("record = %+v", r)
	}
	if cap(r.Headers) != len(r.Headers)+1 {
		t.Fatalf("headers have no spare slot for provenance: len %d cap %d", len(r.Headers), cap(r.Headers))
	}
}

// TestDecodeEventsDir decodes every batch sample in events/ and checks
// the parts that matter to fidelity: null versus empty, header order.
func TestDecodeEventsDir(t *testing.T) {
	files, _ := filepath.Glob("../../events/*batch*.json")
	if len(files) < 2 {
		t.Fatalf("expected the MSK and self-managed samples in events/, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			compareWithStd(t, b)
		})
	}
	b, _ := os.ReadFile("../../events/self-managed-batch.json")
	ev, _ := Decode(b)
	r0, r1 := ev.Partitions[0].Records[0], ev.Partitions[0].Records[1]
	if r0.Value == nil || len(r0.Value) != 0 {
		t.Errorf("empty value decoded as %#v, want non-nil empty", r0.Value)
	}
	if r0.Headers[0].Key != "retry" || len(r0.Headers[0].Value) != 0 || string(r0.Headers[1].Value) != "1" {
		t.Errorf("duplicate header keys out of order: %+v", r0.Headers)
	}
	if !bytes.Equal(r1.Headers[0].Value, []byte{0xff, 0, 0x7f, 0x80}) || string(r1.Value) != "été" {
		t.Errorf("record = %+v", r1)
	}
	if !ev.Partitions[0].LogAppendTime {
		t.Errorf("LOG_APPEND_TIME not reported")
	}
	b, _ = os.ReadFile("../../events/msk-batch.json")
	ev, _ = Decode(b)
	if ev.Partitions[0].Records[1].Value != nil || ev.Partitions[1].Records[0].Key != nil {
		t.Errorf("absent key/value must decode to nil")
	}
}

func TestDecodeMalformed(t *testing.T) {
	rec := func(fields string) string {
		return `{"eventSource":"SelfManagedKafka","records":{"t-0":[` + fields + `]}}`
	}
	const ok = `{"topic":"t","partition":0,"offset":5,"timestamp":1,"key":"a2V5","value":"dmFs","headers":[]}`
	for _, tc := range []struct {
		name string
		in   string
		kind error
	}{
		{"empty input", ``, ErrSyntax},
		{"not an object", `[1,2]`, ErrSyntax},
		{"truncated", rec(ok)[:40], ErrSyntax},
		{"trailing garbage", rec(ok) + `x`, ErrSyntax},
		{"bad base64 value", rec(`{"topic":"t","partition":0,"offset":5,"timestamp":1,"value":"!!notb64"}`), ErrBadBase64},
		{"bad base64 key", rec(`{"topic":"t","partition":0,"offset":5,"timestamp":1,"key":"abc"}`), ErrBadBase64},
		{"topic mismatch", rec(`{"topic":"u","partition":0,"offset":5,"timestamp":1}`), ErrKeyMismatch},
		{"partition mismatch", rec(`{"topic":"t","partition":1,"offset":5,"timestamp":1}`), ErrKeyMismatch},
		{"key not topic-partition", `{"eventSource":"aws:kafka","records":{"nodash":[` + ok + `]}}`, ErrKeyMismatch},
		{"offsets out of order", rec(ok + `,{"topic":"t","partition":0,"offset":4,"timestamp":1}`), ErrOffsetOrder},
		{"offsets repeated", rec(ok + `,` + ok), ErrOffsetOrder},
		{"missing topic", rec(`{"partition":0,"offset":5,"timestamp":1}`), ErrMissingField},
		{"missing offset", rec(`{"topic":"t","partition":0,"timestamp":1}`), ErrMissingField},
		{"missing timestamp", rec(`{"topic":"t","partition":0,"offset":1}`), ErrMissingField},
		{"missing eventSource", `{"records":{"t-0":[` + ok + `]}}`, ErrMissingField},
		{"missing records", `{"eventSource":"aws:kafka"}`, ErrMissingField},
		{"unknown eventSource", `{"eventSource":"aws:sqs","records":{"t-0":[` + ok + `]}}`, ErrUnknownSource},
		{"empty batch", `{"eventSource":"aws:kafka","records":{}}`, ErrEmptyBatch},
		{"empty lists", `{"eventSource":"aws:kafka","records":{"t-0":[],"t-1":[]}}`, ErrEmptyBatch},
		{"fractional offset", rec(`{"topic":"t","partition":0,"offset":5.5,"timestamp":1}`), ErrBadField},
		{"negative offset", rec(`{"topic":"t","partition":0,"offset":-5,"timestamp":1}`), ErrBadField},
		{"header byte out of range", rec(`{"topic":"t","partition":0,"offset":5,"timestamp":1,"headers":[{"h":[300]}]}`), ErrBadField},
		{"header not a list", rec(`{"topic":"t","partition":0,"offset":5,"timestamp":1,"headers":[{"h":"x"}]}`), ErrSyntax},
		{"huge offset", rec(`{"topic":"t","partition":0,"offset":99999999999999999999,"timestamp":1}`), ErrBadField},
		{"same partition twice", `{"eventSource":"aws:kafka","records":{"t-0":[` + ok + `],"t-00":[` + ok + `]}}`, ErrBadField},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Decode([]byte(tc.in))
			if err == nil {
				t.Fatalf("decoded %+v, want error %v", ev, tc.kind)
			}
			var me *MalformedEventError
			if !errors.As(err, &me) {
				t.Fatalf("error %T %v is not *MalformedEventError", err, err)
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want kind %v", err, tc.kind)
			}
			if strings.Contains(err.Error(), "dmFs") {
				t.Fatalf("error leaks record contents: %v", err)
			}
		})
	}
}

func TestDecodeEscapesAndWhitespace(t *testing.T) {
	in := "{ \"eventSource\" : \"SelfManagedKafka\" , \"extra\": {\"a\":[1,2.5e3,true,null]},\n\"records\":{\"t\\u00e9-2\":[{\"topic\":\"t\\u00e9\",\"partition\":2,\"offset\":0,\"timestamp\":-1,\"key\":null,\"value\":\"\",\"unknown\":[{}]}]}}"
	ev := compareWithStd(t, []byte(in))
	r := ev.Partitions[0].Records[0]
	if r.Topic != "té" || r.Key != nil || r.Value == nil || r.Timestamp.UnixMilli() != -1 {
		t.Fatalf("record %+v", r)
	}
}

// FuzzDecode checks that Decode never panics, that whatever it accepts is
// valid JSON that encoding/json also reads, and that decoding is
// deterministic.
func FuzzDecode(f *testing.F) {
	f.Add(awsSample(f))
	for _, name := range []string{"msk-batch.json", "self-managed-batch.json"} {
		if b, err := os.ReadFile("../../events/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"eventSource":"aws:kafka","records":{"a-b-0":[{"topic":"a-b","partition":0,"offset":1,"timestamp":2,"key":"","headers":[{"x":[-128,127]}]}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Decode(data)
		if err != nil {
			var me *MalformedEventError
			if !errors.As(err, &me) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if ev.Records == 0 {
			t.Fatalf("accepted an empty batch")
		}
		ev2, err := Decode(data)
		if err != nil || ev2.Records != ev.Records || ev2.Bytes != ev.Bytes {
			t.Fatalf("second decode differs: %v", err)
		}
		// Decoding in place, on a copy, yields the same records.
		var inPlace []kgo.Record
		cp := append([]byte(nil), data...)
		if _, err := DecodeEachInPlace(cp, 3, func(c *Partition) error { inPlace = append(inPlace, c.Records...); return nil }); err != nil {
			t.Fatalf("in place: %v", err)
		}
		var all []kgo.Record
		for _, p := range ev.Partitions {
			all = append(all, p.Records...)
		}
		if len(all) != len(inPlace) {
			t.Fatalf("in place: %d records, want %d", len(inPlace), len(all))
		}
		sortRecords(inPlace)
		for i := range all {
			a, b := all[i], inPlace[i]
			if a.Topic != b.Topic || a.Partition != b.Partition || a.Offset != b.Offset || !bytes.Equal(a.Key, b.Key) || (a.Key == nil) != (b.Key == nil) ||
				!bytes.Equal(a.Value, b.Value) || (a.Value == nil) != (b.Value == nil) || len(a.Headers) != len(b.Headers) {
				t.Fatalf("in place record %d differs: %+v vs %+v", i, b, a)
			}
			for j := range a.Headers {
				if a.Headers[j].Key != b.Headers[j].Key || !bytes.Equal(a.Headers[j].Value, b.Headers[j].Value) {
					t.Fatalf("in place record %d header %d differs", i, j)
				}
			}
		}
	})
}

func itoa(p int32) string { return strconv.Itoa(int(p)) }

// moduleDir returns a dependency's directory in the module cache.
func moduleDir(t testing.TB, mod string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", mod, err)
	}
	return strings.TrimSpace(string(out))
}

// TestDecodeEachChunks checks that streaming decode hands over every record
// once, in order, in chunks of at most the asked size, one partition at a
// time, and that Decode's view is the same.
func TestDecodeEachChunks(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"eventSource":"SelfManagedKafka","records":{`)
	for p := 0; p < 3; p++ {
		if p > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"t-%d":[`, p)
		for i := 0; i < 25; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"topic":"t","partition":%d,"offset":%d,"timestamp":1,"value":"%s"}`, p, 100+i, base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(p, "-", i))))
		}
		b.WriteString("]")
	}
	b.WriteString("}}")
	data := []byte(b.String())
	var got []string
	sizes := map[int]int{}
	ev, err := DecodeEach(data, 10, func(c *Partition) error {
		sizes[len(c.Records)]++
		for _, r := range c.Records {
			got = append(got, fmt.Sprintf("%d/%d=%s", c.Partition, r.Offset, r.Value))
		}
		return nil
	})
	if err != nil || ev.Records != 75 || ev.Partitions != nil {
		t.Fatalf("DecodeEach: %+v, %v", ev, err)
	}
	if sizes[10] != 6 || sizes[5] != 3 || len(sizes) != 2 {
		t.Fatalf("chunk sizes %v, want six of 10 and three of 5", sizes)
	}
	full, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range full.Partitions {
		for _, r := range p.Records {
			want = append(want, fmt.Sprintf("%d/%d=%s", p.Partition, r.Offset, r.Value))
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("streamed %v\nwant %v", got, want)
	}
	// An error from fn stops decoding and comes back as is.
	stop := errors.New("stop")
	calls := 0
	if _, err := DecodeEach(data, 10, func(*Partition) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

// sortRecords orders records as Decode orders partitions.
func sortRecords(rs []kgo.Record) {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Topic != rs[j].Topic {
			return rs[i].Topic < rs[j].Topic
		}
		return rs[i].Partition < rs[j].Partition
	})
}

// TestDecodeInPlaceMalformed checks that decoding in place reports the same
// kinds of error as Decode.
func TestDecodeInPlaceMalformed(t *testing.T) {
	for _, in := range []string{
		`{"eventSource":"aws:kafka","records":{"t-0":[{"topic":"t","partition":0,"offset":1,"timestamp":1,"value":"!!!!"}]}}`,
		`{"eventSource":"aws:kafka","records":{"t-0":[{"topic":"t","partition":0,"offset":1,"timestamp":1,"value":"QQ=A"}]}}`,
		`{"eventSource":"aws:kafka","records":{"t-0":[{"topic":"t","partition":0,"offset":1,"timestamp":1,"key":"abc"}]}}`,
	} {
		_, err := DecodeEachInPlace([]byte(in), 0, func(*Partition) error { return nil })
		if !errors.Is(err, ErrBadBase64) {
			t.Errorf("%s: %v, want ErrBadBase64", in, err)
		}
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrBadBase64) {
			t.Errorf("Decode %s: %v, want ErrBadBase64", in, err)
		}
	}
}
