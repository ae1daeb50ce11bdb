// Package kafkaevent decodes the Kafka event that a Lambda event source
// mapping delivers (aws:kafka or SelfManagedKafka) straight from its raw
// JSON bytes into franz-go records, without going through
// events.KafkaEvent.
//
// Guarantees: Decode never panics on any input; every problem is a
// *MalformedEventError; a null key or value (field absent or JSON null)
// decodes to nil and an empty one ("") to a non-nil empty slice; headers
// keep their order; records of one partition keep their order and must have
// strictly increasing offsets. Decoded key, value and header bytes share one
// backing array per event, so callers must not append to them.
package kafkaevent

import (
	"bytes"
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/b64"
)

// Event sources, as the eventSource field names them.
const (
	SourceMSK         = "aws:kafka"
	SourceSelfManaged = "SelfManagedKafka"
)

// Event is a decoded batch.
type Event struct {
	EventSource      string
	EventSourceARN   string
	BootstrapServers string
	// Partitions holds one entry per records key, sorted by topic then
	// partition. Each entry's records are in offset order.
	Partitions []Partition
	// Records is the total record count; Bytes the decoded key, value and
	// header payload size.
	Records int
	Bytes   int
}

// Partition is one source topic-partition's records in the batch.
type Partition struct {
	Topic     string
	Partition int32
	// Records are in offset order. Each record's Headers slice has spare
	// capacity for one more header (the provenance header) so appending
	// it does not copy.
	Records []kgo.Record
	// LogAppendTime is true when the source stamped these records with
	// LOG_APPEND_TIME rather than CREATE_TIME.
	LogAppendTime bool
}

// Decode parses a raw event. See the package documentation for guarantees.
func Decode(data []byte) (*Event, error) {
	var parts []Partition
	ev, err := DecodeEach(data, 0, func(c *Partition) error {
		if n := len(parts); n > 0 && parts[n-1].Topic == c.Topic && parts[n-1].Partition == c.Partition {
			parts[n-1].Records = append(parts[n-1].Records, c.Records...)
			parts[n-1].LogAppendTime = parts[n-1].LogAppendTime || c.LogAppendTime
			return nil
		}
		parts = append(parts, *c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(parts, func(a, b Partition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition) - int(b.Partition)
	})
	ev.Partitions = parts
	return ev, nil
}

// DecodeEach parses a raw event and hands its records to fn as they are
// decoded, in runs (chunks) of at most chunk records of one partition (0
// means a whole partition per call), in the order the event lists them. A
// partition's chunks come in offset order, one after another. fn may keep
// the chunk's records; an error from fn stops decoding and is returned as
// is. The returned Event has no Partitions, only the envelope and counts.
//
// Records are validated before fn sees them, but problems later in the
// event (a malformed later record, trailing garbage, a bad eventSource
// after the records) are found only after fn has seen earlier chunks; the
// error is the same *MalformedEventError as Decode's.
func DecodeEach(data []byte, chunk int, fn func(*Partition) error) (*Event, error) {
	return decodeEach(data, chunk, fn, false)
}

// DecodeEachInPlace is DecodeEach that decodes keys, values and header
// values into data's own memory, so a batch costs no second copy of its
// payload. data is overwritten: after the call it may be used only through
// the records fn received, and the caller must not reuse it while it still
// needs them.
func DecodeEachInPlace(data []byte, chunk int, fn func(*Partition) error) (*Event, error) {
	return decodeEach(data, chunk, fn, true)
}

func decodeEach(data []byte, chunk int, fn func(*Partition) error, inPlace bool) (*Event, error) {
	d := decoder{buf: data, keys: make(map[string]string, 8), chunk: chunk, emit: fn, seen: map[seenKey]bool{}, inPlace: inPlace}
	if !inPlace {
		d.arena = make([]byte, 0, len(data)*3/4+16)
	}
	ev := &Event{}
	if err := d.event(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

type seenKey struct {
	topic     string
	partition int32
}

type decoder struct {
	buf   []byte
	pos   int
	arena []byte             // backing store for keys, values and header values
	hdrs  []kgo.RecordHeader // slab for headers
	keys  map[string]string  // interned topics and header keys
	chunk int                // records per emitted chunk; 0 means unlimited
	emit  func(*Partition) error
	seen  map[seenKey]bool // partitions already decoded
	// inPlace decodes into buf itself: decoded bytes are never longer
	// than their encoding and are written behind the read position.
	inPlace bool
	fastErr error // a failure fastB64 found and the slow path cannot redo
	// where we are, for errors
	key   string
	index int
}

func (d *decoder) fail(kind error, field, detail string) error {
	return &MalformedEventError{Kind: kind, Key: d.key, Index: d.index, Field: field, Pos: d.pos, Detail: detail}
}

func (d *decoder) syntax(detail string) error { return d.fail(ErrSyntax, "", detail) }

func (d *decoder) ws() {
	for d.pos < len(d.buf) {
		switch d.buf[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at end.
func (d *decoder) peek() byte {
	d.ws()
	if d.pos >= len(d.buf) {
		return 0
	}
	return d.buf[d.pos]
}

func (d *decoder) expect(c byte) error {
	if d.peek() != c {
		return d.syntax("expected '" + string(c) + "'")
	}
	d.pos++
	return nil
}

// object iterates over an object's members, calling fn with each key; fn
// must consume the value.
func (d *decoder) object(fn func(key []byte) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.pos++
		return nil
	}
	for {
		k, err := d.str()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.syntax("expected ',' or '}' in object")
		}
	}
}

// array iterates over an array's elements; fn must consume each element.
func (d *decoder) array(fn func() error) error {
	if err := d.expect('['); err != nil {
		return err
	}
	if d.peek() == ']' {
		d.pos++
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return nil
		default:
			return d.syntax("expected ',' or ']' in array")
		}
	}
}

// str reads a JSON string. Without escapes the result aliases the input;
// with escapes it is decoded into a new slice.
func (d *decoder) str() ([]byte, error) {
	if d.peek() != '"' {
		return nil, d.syntax("expected string")
	}
	d.pos++
	start := d.pos
	for i := start; i < len(d.buf); i++ {
		switch c := d.buf[i]; {
		case c == '"':
			d.pos = i + 1
			return d.buf[start:i], nil
		case c == '\\':
			return d.unescape(start)
		case c < 0x20:
			d.pos = i
			return nil, d.syntax("control character in string")
		}
	}
	d.pos = len(d.buf)
	return nil, d.syntax("unterminated string")
}

func (d *decoder) unescape(start int) ([]byte, error) {
	out := make([]byte, 0, 32)
	i := start
	for i < len(d.buf) {
		c := d.buf[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return out, nil
		case c < 0x20:
			d.pos = i
			return nil, d.syntax("control character in string")
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(d.buf) {
			break
		}
		e := d.buf[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(d.buf, i)
			if !ok {
				d.pos = i
				return nil, d.syntax("bad \\u escape")
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(0), false
				if i+6 <= len(d.buf) && d.buf[i] == '\\' && d.buf[i+1] == 'u' {
					r2, ok2 = hex4(d.buf, i+2)
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			d.pos = i - 1
			return nil, d.syntax("bad escape")
		}
	}
	d.pos = len(d.buf)
	return nil, d.syntax("unterminated string")
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// int reads a JSON integer. Fractions and exponents are refused.
func (d *decoder) int(field string) (int64, error) {
	d.ws()
	start := d.pos
	i := start
	neg := false
	if i < len(d.buf) && d.buf[i] == '-' {
		neg = true
		i++
	}
	var n uint64
	digits := 0
	for ; i < len(d.buf) && d.buf[i] >= '0' && d.buf[i] <= '9'; i++ {
		if n > (math.MaxInt64)/10 {
			d.pos = i
			return 0, d.fail(ErrBadField, field, "integer overflows int64")
		}
		n = n*10 + uint64(d.buf[i]-'0')
		digits++
	}
	if digits == 0 {
		return 0, d.fail(ErrBadField, field, "expected an integer")
	}
	if digits > 1 && d.buf[i-digits] == '0' {
		return 0, d.fail(ErrBadField, field, "integer has a leading zero")
	}
	if i < len(d.buf) && (d.buf[i] == '.' || d.buf[i] == 'e' || d.buf[i] == 'E') {
		d.pos = i
		return 0, d.fail(ErrBadField, field, "expected an integer, got a fraction or exponent")
	}
	if n > math.MaxInt64 {
		return 0, d.fail(ErrBadField, field, "integer overflows int64")
	}
	d.pos = i
	if neg {
		return -int64(n), nil
	}
	return int64(n), nil
}

// null consumes a JSON null if present.
func (d *decoder) null() bool {
	if d.peek() == 'n' && d.pos+4 <= len(d.buf) && string(d.buf[d.pos:d.pos+4]) == "null" {
		d.pos += 4
		return true
	}
	return false
}

// skip consumes any JSON value.
func (d *decoder) skip(depth int) error {
	if depth > 64 {
		return d.syntax("nesting too deep")
	}
	switch c := d.peek(); {
	case c == '{':
		return d.object(func([]byte) error { return d.skip(depth + 1) })
	case c == '[':
		return d.array(func() error { return d.skip(depth + 1) })
	case c == '"':
		_, err := d.str()
		return err
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if d.pos+len(lit) <= len(d.buf) && string(d.buf[d.pos:d.pos+len(lit)]) == lit {
				d.pos += len(lit)
				return nil
			}
		}
		return d.syntax("bad literal")
	case c == '-' || (c >= '0' && c <= '9'):
		n := numberLen(d.buf[d.pos:])
		if n == 0 {
			return d.syntax("bad number")
		}
		d.pos += n
		return nil
	default:
		return d.syntax("expected a value")
	}
}

func (d *decoder) intern(b []byte) string {
	if s, ok := d.keys[string(b)]; ok {
		return s
	}
	s := string(b)
	d.keys[s] = s
	return s
}

func (d *decoder) event(ev *Event) error {
	d.index = -1
	var sawRecords, sawSource bool
	err := d.object(func(k []byte) error {
		switch string(k) {
		case "eventSource":
			s, err := d.str()
			if err != nil {
				return err
			}
			sawSource = true
			ev.EventSource = string(s)
		case "eventSourceArn":
			if d.null() {
				return nil
			}
			s, err := d.str()
			ev.EventSourceARN = string(s)
			return err
		case "bootstrapServers":
			if d.null() {
				return nil
			}
			s, err := d.str()
			ev.BootstrapServers = string(s)
			return err
		case "records":
			sawRecords = true
			if sawSource && ev.EventSource != SourceMSK && ev.EventSource != SourceSelfManaged {
				return d.fail(ErrUnknownSource, "eventSource", strconv.Quote(truncate(ev.EventSource)))
			}
			return d.records(ev)
		default:
			return d.skip(0)
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.key, d.index = "", -1
	if d.peek() != 0 {
		return d.syntax("trailing data after event")
	}
	switch {
	case !sawSource:
		return d.fail(ErrMissingField, "eventSource", "")
	case ev.EventSource != SourceMSK && ev.EventSource != SourceSelfManaged:
		return d.fail(ErrUnknownSource, "eventSource", strconv.Quote(truncate(ev.EventSource)))
	case !sawRecords:
		return d.fail(ErrMissingField, "records", "")
	case ev.Records == 0:
		return d.fail(ErrEmptyBatch, "records", "")
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// splitKey splits "topic-partition" at the last '-'.
func splitKey(k string) (string, int32, bool) {
	i := strings.LastIndexByte(k, '-')
	if i <= 0 || i == len(k)-1 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(k[i+1:], 10, 32)
	if err != nil || p < 0 || k[i+1] == '+' || k[i+1] == '-' {
		return "", 0, false
	}
	return k[:i], int32(p), true
}

func (d *decoder) records(ev *Event) error {
	if d.null() {
		return nil
	}
	return d.object(func(k []byte) error {
		d.key = string(k)
		d.index = -1
		topic, part, ok := splitKey(d.key)
		if !ok {
			return d.fail(ErrKeyMismatch, "", "records key is not topic-partition")
		}
		p := Partition{Topic: d.intern([]byte(topic)), Partition: part}
		if d.seen[seenKey{p.Topic, part}] {
			return d.fail(ErrBadField, "records", "partition appears under two keys")
		}
		d.seen[seenKey{p.Topic, part}] = true
		last := int64(-1)
		index := 0
		if d.chunk > 0 {
			p.Records = make([]kgo.Record, 0, d.chunk)
		}
		flush := func() error {
			if len(p.Records) == 0 {
				return nil
			}
			ev.Records += len(p.Records)
			c := p
			p.Records = nil
			if d.chunk > 0 {
				p.Records = make([]kgo.Record, 0, d.chunk)
			}
			return d.emit(&c)
		}
		err := d.array(func() error {
			d.index = index
			index++
			p.Records = append(p.Records, kgo.Record{})
			r := &p.Records[len(p.Records)-1]
			logAppend, err := d.record(r)
			if err != nil {
				return err
			}
			if r.Topic != p.Topic || r.Partition != p.Partition {
				return d.fail(ErrKeyMismatch, "topic", "record is "+truncate(r.Topic)+"-"+strconv.Itoa(int(r.Partition)))
			}
			if r.Offset <= last {
				return d.fail(ErrOffsetOrder, "offset", strconv.FormatInt(r.Offset, 10)+" follows "+strconv.FormatInt(last, 10))
			}
			last = r.Offset
			p.LogAppendTime = p.LogAppendTime || logAppend
			ev.Bytes += len(r.Key) + len(r.Value)
			for _, h := range r.Headers {
				ev.Bytes += len(h.Key) + len(h.Value)
			}
			if d.chunk > 0 && len(p.Records) == d.chunk {
				return flush()
			}
			return nil
		})
		if err != nil {
			return err
		}
		return flush()
	})
}

const (
	hasTopic = 1 << iota
	hasPartition
	hasOffset
	hasTimestamp
)

func (d *decoder) record(r *kgo.Record) (logAppend bool, err error) {
	var seen int
	err = d.object(func(k []byte) error {
		switch string(k) {
		case "topic":
			s, err := d.str()
			if err != nil {
				return err
			}
			r.Topic = d.intern(s)
			seen |= hasTopic
		case "partition":
			n, err := d.int("partition")
			if err != nil {
				return err
			}
			if n < 0 || n > math.MaxInt32 {
				return d.fail(ErrBadField, "partition", "out of range")
			}
			r.Partition = int32(n)
			seen |= hasPartition
		case "offset":
			n, err := d.int("offset")
			if err != nil {
				return err
			}
			if n < 0 {
				return d.fail(ErrBadField, "offset", "negative")
			}
			r.Offset = n
			seen |= hasOffset
		case "timestamp":
			n, err := d.int("timestamp")
			if err != nil {
				return err
			}
			r.Timestamp = time.UnixMilli(n)
			seen |= hasTimestamp
		case "timestampType":
			s, err := d.str()
			if err != nil {
				return err
			}
			logAppend = string(s) == "LOG_APPEND_TIME"
		case "key":
			b, err := d.b64("key")
			r.Key = b
			return err
		case "value":
			b, err := d.b64("value")
			r.Value = b
			return err
		case "headers":
			return d.headers(r)
		default:
			return d.skip(0)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, f := range []struct {
		bit  int
		name string
	}{{hasTopic, "topic"}, {hasPartition, "partition"}, {hasOffset, "offset"}, {hasTimestamp, "timestamp"}} {
		if seen&f.bit == 0 {
			return false, d.fail(ErrMissingField, f.name, "")
		}
	}
	if r.Headers == nil {
		r.Headers = d.headerSlab(0)
	}
	return logAppend, nil
}

// b64 decodes a base64 string into the arena; null gives nil.
func (d *decoder) b64(field string) ([]byte, error) {
	if d.null() {
		return nil, nil
	}
	if b, ok := d.fastB64(); ok {
		return b, nil
	}
	if d.fastErr != nil {
		err := d.fastErr.(*MalformedEventError)
		err.Field = field
		return nil, err
	}
	s, err := d.str()
	if err != nil {
		return nil, err
	}
	n := base64.StdEncoding.DecodedLen(len(s))
	if cap(d.arena)-len(d.arena) < n || d.arena == nil {
		d.arena = make([]byte, 0, max(n, 64<<10))
	}
	start := len(d.arena)
	got, err := base64.StdEncoding.Decode(d.arena[start:start+n], s)
	if err != nil {
		return nil, d.fail(ErrBadBase64, field, err.Error())
	}
	d.arena = d.arena[:start+got]
	return d.arena[start : start+got : start+got], nil
}

// fastB64 decodes a base64 string without escapes straight from the input.
// It reports false, consuming nothing, whenever the slow path must decide
// (escapes, control characters, bad base64), so errors stay exact.
func (d *decoder) fastB64() ([]byte, bool) {
	if d.peek() != '"' {
		return nil, false
	}
	rest := d.buf[d.pos+1:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || end%4 != 0 {
		return nil, false
	}
	s := rest[:end]
	if bytes.IndexByte(s, '\\') >= 0 {
		return nil, false
	}
	if d.inPlace {
		n, ok := b64.DecodeInPlace(s)
		if !ok {
			// s may be partly overwritten now; the slow path must not
			// reread it. It held a character base64 does not allow
			// (escapes were ruled out above).
			d.fastErr = d.fail(ErrBadBase64, "", "illegal base64 data")
			return nil, false
		}
		d.pos += 1 + end + 1
		return s[:n:n], true
	}
	want := end / 4 * 3
	if end > 0 && s[end-1] == '=' {
		want--
		if s[end-2] == '=' {
			want--
		}
	}
	if cap(d.arena)-len(d.arena) < want+2 {
		d.arena = make([]byte, 0, max(want+2, 64<<10))
	}
	start := len(d.arena)
	// base64 skips \r and \n; a decoded length short of want means the
	// string held one (invalid JSON), so the slow path reports it.
	got, err := base64.StdEncoding.Decode(d.arena[start:start+want+2], s)
	if err != nil || got != want {
		return nil, false
	}
	d.pos += 1 + end + 1
	d.arena = d.arena[:start+got]
	return d.arena[start : start+got : start+got], true
}

// headerSlab returns an empty header slice with room for n+1 headers.
func (d *decoder) headerSlab(n int) []kgo.RecordHeader {
	if cap(d.hdrs)-len(d.hdrs) < n+1 {
		d.hdrs = make([]kgo.RecordHeader, 0, max(n+1, 1024))
	}
	s := d.hdrs[len(d.hdrs) : len(d.hdrs) : len(d.hdrs)+n+1]
	d.hdrs = d.hdrs[:len(d.hdrs)+n+1]
	return s
}

// headers decodes [{"k":[bytes...]}, ...] keeping order.
func (d *decoder) headers(r *kgo.Record) error {
	if d.null() {
		return nil
	}
	// Count entries cheaply is not possible without a second pass, so
	// collect into a small local buffer first.
	var local [8]kgo.RecordHeader
	hs := local[:0]
	err := d.array(func() error {
		return d.object(func(k []byte) error {
			key := d.intern(k)
			if d.null() {
				hs = append(hs, kgo.RecordHeader{Key: key})
				return nil
			}
			if d.inPlace {
				// Each byte takes at least one digit and a comma, so
				// writing from the '[' on stays behind the reader.
				d.peek()
				w := d.pos
				start := w
				err := d.array(func() error {
					c, err := d.headerByte()
					if err != nil {
						return err
					}
					d.buf[w] = c
					w++
					return nil
				})
				if err != nil {
					return err
				}
				hs = append(hs, kgo.RecordHeader{Key: key, Value: d.buf[start:w:w]})
				return nil
			}
			start := len(d.arena)
			err := d.array(func() error {
				c, err := d.headerByte()
				if err != nil {
					return err
				}
				if len(d.arena) == cap(d.arena) {
					grown := make([]byte, len(d.arena)-start, max(2*(len(d.arena)-start), 64<<10))
					copy(grown, d.arena[start:])
					d.arena, start = grown, 0
				}
				d.arena = append(d.arena, c)
				return nil
			})
			if err != nil {
				return err
			}
			v := d.arena[start:len(d.arena):len(d.arena)]
			if v == nil {
				v = []byte{}
			}
			hs = append(hs, kgo.RecordHeader{Key: key, Value: v})
			return nil
		})
	})
	if err != nil {
		return err
	}
	r.Headers = append(d.headerSlab(len(hs)), hs...)
	return nil
}

// headerByte reads one element of a header value: a byte as a signed
// (Java) or unsigned number.
func (d *decoder) headerByte() (byte, error) {
	n, err := d.int("headers")
	if err != nil {
		return 0, err
	}
	if n < -128 || n > 255 {
		return 0, d.fail(ErrBadField, "headers", "header byte out of range")
	}
	return byte(n), nil
}

// numberLen returns the length of the JSON number at the start of b, or 0
// if b does not start with one (RFC 8259 grammar).
func numberLen(b []byte) int {
	i := 0
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	start := i
	if n := digits(); n == 0 || (n > 1 && b[start] == '0') {
		return 0
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return 0
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0
		}
	}
	return i
}
