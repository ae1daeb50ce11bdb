package esm

import (
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/b64"
)

// Event sources written in the top-level eventSource field, as AWS does.
const (
	EventSourceMSK         = "aws:kafka"
	EventSourceSelfManaged = "SelfManagedKafka"
)

// Timestamp types written in each record's timestampType field.
const (
	TimestampCreateTime    = "CREATE_TIME"
	TimestampLogAppendTime = "LOG_APPEND_TIME"
)

// MaxPayloadBytes is the largest event the emulator invokes a function
// with: Lambda's 6 MB synchronous invocation payload limit.
const MaxPayloadBytes = 6 * 1024 * 1024

// Encoder writes Kafka records as the JSON event an AWS Lambda Kafka event
// source mapping delivers (events.KafkaEvent): top-level eventSource,
// eventSourceArn (MSK only), bootstrapServers and records grouped under
// "topic-partition" keys in order of first appearance, each partition's
// records in the order given. A nil key or value is omitted; an empty one
// is written as "". Headers keep their order, one single-entry object per
// header, values as arrays of signed bytes.
//
// Size reports exactly the length Append writes, so callers can enforce
// [MaxPayloadBytes] before encoding. An Encoder reuses scratch memory and
// is not safe for concurrent use.
type Encoder struct {
	prefix  []byte // `{"eventSource":...,"records":{`
	byGroup map[tpKey]int
	groups  []encGroup
	sorted  []*kgo.Record
}

type tpKey struct {
	topic     string
	partition int32
}

type encGroup struct {
	tpKey
	n, next int
}

// NewEncoder returns an encoder for events from a cluster. A non-empty
// eventSourceArn makes the events MSK events ("aws:kafka" with the ARN);
// otherwise they are "SelfManagedKafka" events with no eventSourceArn.
func NewEncoder(eventSourceArn string, bootstrapServers []string) *Encoder {
	e := &Encoder{byGroup: make(map[tpKey]int)}
	b := []byte(`{"eventSource":"`)
	if eventSourceArn != "" {
		b = append(b, EventSourceMSK...)
		b = append(b, `","eventSourceArn":"`...)
		b = appendStringBody(b, eventSourceArn)
	} else {
		b = append(b, EventSourceSelfManaged...)
	}
	b = append(b, `","bootstrapServers":"`...)
	b = appendStringBody(b, strings.Join(bootstrapServers, ","))
	b = append(b, `","records":{`...)
	e.prefix = b
	return e
}

// Overhead is the size of an event with no records.
func (e *Encoder) Overhead() int { return len(e.prefix) + len(`}}`) }

// GroupOverhead is what a partition's "topic-partition":[ ... ] wrapper
// adds to an event, not counting the comma separating it from a previous
// partition.
func GroupOverhead(topic string, partition int32) int {
	return 1 + stringLen(topic) + 1 + intLen(int64(partition)) + len(`":[]`)
}

const (
	recTopic     = `{"topic":"`
	recPartition = `","partition":`
	recOffset    = `,"offset":`
	recTimestamp = `,"timestamp":`
	recTSType    = `,"timestampType":"`
	recKey       = `","key":"`
	recValue     = `","value":"`
	recHeaders   = `","headers":[`
	recEnd       = `]}`
)

func tsType(r *kgo.Record) string {
	if r.Attrs.TimestampType() == 1 {
		return TimestampLogAppendTime
	}
	return TimestampCreateTime
}

// RecordSize is the exact length of r's JSON object in an event, without
// the comma that separates it from a previous record.
func RecordSize(r *kgo.Record) int {
	var sz recordSizer
	return sz.size(r)
}

// recordSizer computes RecordSize, remembering the escaped length of the
// last topic it saw (a poll's records share a few topic strings).
type recordSizer struct {
	topic    string
	topicLen int
}

func (sz *recordSizer) size(r *kgo.Record) int {
	if r.Topic != sz.topic || sz.topicLen == 0 {
		sz.topic, sz.topicLen = r.Topic, stringLen(r.Topic)
	}
	n := len(recTopic) + sz.topicLen + len(recPartition) + intLen(int64(r.Partition)) +
		len(recOffset) + intLen(r.Offset) + len(recTimestamp) + intLen(r.Timestamp.UnixMilli()) +
		len(recTSType) + len(tsType(r)) + len(recHeaders) + len(recEnd)
	if r.Key != nil {
		n += len(recKey) + base64.StdEncoding.EncodedLen(len(r.Key))
	}
	if r.Value != nil {
		n += len(recValue) + base64.StdEncoding.EncodedLen(len(r.Value))
	}
	for i, h := range r.Headers {
		if i > 0 {
			n++
		}
		n += len(`{"`) + stringLen(h.Key) + len(`":[`) + len(`]}`)
		for j, c := range h.Value {
			if j > 0 {
				n++
			}
			n += len(int8Text[c])
		}
	}
	return n
}

// Size is the exact length Append writes for records.
func (e *Encoder) Size(records []*kgo.Record) int {
	n := e.Overhead()
	clear(e.byGroup)
	for _, r := range records {
		k := tpKey{r.Topic, r.Partition}
		if _, ok := e.byGroup[k]; !ok {
			if len(e.byGroup) > 0 {
				n++
			}
			e.byGroup[k] = 0
			n += GroupOverhead(r.Topic, r.Partition)
		} else {
			n++ // comma after a previous record of the partition
		}
		n += RecordSize(r)
	}
	return n
}

// Append appends the event for records to dst and returns the extended
// buffer. Records are grouped by topic and partition in order of first
// appearance; within a partition their order is kept.
func (e *Encoder) Append(dst []byte, records []*kgo.Record) []byte {
	e.group(records)
	dst = append(dst, e.prefix...)
	at := 0
	for gi, g := range e.groups {
		if gi > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = appendStringBody(dst, g.topic)
		dst = append(dst, '-')
		dst = strconv.AppendInt(dst, int64(g.partition), 10)
		dst = append(dst, `":[`...)
		for i, r := range e.sorted[at : at+g.n] {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendRecord(dst, r)
		}
		at += g.n
		dst = append(dst, ']')
	}
	clear(e.sorted) // drop references to records
	return append(dst, `}}`...)
}

// group fills e.groups in first-appearance order and e.sorted with records
// ordered by group, keeping order within a group (a stable counting sort).
func (e *Encoder) group(records []*kgo.Record) {
	clear(e.byGroup)
	e.groups = e.groups[:0]
	if len(records) > 0 && onePartition(records) {
		// The usual batch (one partition per ESM worker): no sort needed.
		e.groups = append(e.groups, encGroup{tpKey: tpKey{records[0].Topic, records[0].Partition}, n: len(records)})
		e.sorted = append(e.sorted[:0], records...)
		return
	}
	for _, r := range records {
		k := tpKey{r.Topic, r.Partition}
		gi, ok := e.byGroup[k]
		if !ok {
			gi = len(e.groups)
			e.byGroup[k] = gi
			e.groups = append(e.groups, encGroup{tpKey: k})
		}
		e.groups[gi].n++
	}
	start := 0
	for i := range e.groups {
		e.groups[i].next = start
		start += e.groups[i].n
	}
	if cap(e.sorted) < len(records) {
		e.sorted = make([]*kgo.Record, len(records))
	}
	e.sorted = e.sorted[:len(records)]
	for _, r := range records {
		g := &e.groups[e.byGroup[tpKey{r.Topic, r.Partition}]]
		e.sorted[g.next] = r
		g.next++
	}
}

// onePartition reports whether records all belong to the partition of the
// first.
func onePartition(records []*kgo.Record) bool {
	first := records[0]
	for _, r := range records[1:] {
		if r.Partition != first.Partition || r.Topic != first.Topic {
			return false
		}
	}
	return true
}

func appendRecord(dst []byte, r *kgo.Record) []byte {
	dst = append(dst, recTopic...)
	dst = appendStringBody(dst, r.Topic)
	dst = append(dst, recPartition...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, recOffset...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, recTimestamp...)
	dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
	dst = append(dst, recTSType...)
	dst = append(dst, tsType(r)...)
	if r.Key != nil {
		dst = append(dst, recKey...)
		dst = b64.AppendEncode(dst, r.Key)
	}
	if r.Value != nil {
		dst = append(dst, recValue...)
		dst = b64.AppendEncode(dst, r.Value)
	}
	dst = append(dst, recHeaders...)
	for i, h := range r.Headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"`...)
		dst = appendStringBody(dst, h.Key)
		dst = append(dst, `":[`...)
		for j, c := range h.Value {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, int8Text[c]...)
		}
		dst = append(dst, `]}`...)
	}
	return append(dst, recEnd...)
}

// int8Text[b] is the decimal text of int8(b).
var int8Text = func() (t [256]string) {
	for i := range t {
		t[i] = strconv.Itoa(int(int8(uint8(i))))
	}
	return t
}()

// intLen is len(strconv.AppendInt(nil, v, 10)).
func intLen(v int64) int {
	n := 1
	u := uint64(v)
	if v < 0 {
		n, u = 2, -u
	}
	for ; u >= 10; u /= 10 {
		n++
	}
	return n
}

const hexDigits = "0123456789abcdef"

// appendStringBody appends s escaped for the inside of a JSON string:
// quote, backslash and control characters are escaped, U+2028/U+2029 too
// (as encoding/json does), and invalid UTF-8 becomes U+FFFD.
func appendStringBody(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// stringLen is len(appendStringBody(nil, s)) without allocating.
func stringLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			case c < 0x20:
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
