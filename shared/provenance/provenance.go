// Package provenance encodes and parses the kmig-src header that names the
// source record a target record was copied from.
//
// The header value is ASCII "<source-topic>/<partition>/<offset>". Topic
// names may not contain '/', so the last two fields are split from the
// right. Parse never panics on any input.
package provenance

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// HeaderKey is the header carrying a record's source coordinates.
const HeaderKey = "kmig-src"

// Source is the position of a record in the source cluster.
type Source struct {
	Topic     string
	Partition int32
	Offset    int64
}

// String renders the header value.
func (s Source) String() string { return string(s.Append(nil)) }

// Append appends the header value to dst without extra allocation.
func (s Source) Append(dst []byte) []byte {
	dst = append(dst, s.Topic...)
	dst = append(dst, '/')
	dst = strconv.AppendInt(dst, int64(s.Partition), 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, s.Offset, 10)
}

// ErrMalformed is returned for a header value that is not
// topic/partition/offset; the record did not come from this migrator.
var ErrMalformed = errors.New("malformed kmig-src header")

// Parse parses a header value.
func Parse(v []byte) (Source, error) {
	j := lastSlash(v, len(v))
	if j <= 0 {
		return Source{}, fmt.Errorf("%w: %q", ErrMalformed, v)
	}
	i := lastSlash(v, j)
	if i <= 0 {
		return Source{}, fmt.Errorf("%w: %q", ErrMalformed, v)
	}
	p, err1 := strconv.ParseInt(string(v[i+1:j]), 10, 32)
	o, err2 := strconv.ParseInt(string(v[j+1:]), 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return Source{}, fmt.Errorf("%w: %q", ErrMalformed, v)
	}
	return Source{Topic: string(v[:i]), Partition: int32(p), Offset: o}, nil
}

func lastSlash(v []byte, end int) int {
	for i := end - 1; i >= 0; i-- {
		if v[i] == '/' {
			return i
		}
	}
	return -1
}

// ErrAbsent is returned by Of for a record without a kmig-src header.
var ErrAbsent = errors.New("record has no kmig-src header")

// Of returns the provenance of a record read from the target: ErrAbsent if
// it has none, ErrMalformed if it has one that does not parse. If a record
// carries several, the last one wins.
func Of(r *kgo.Record) (Source, error) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == HeaderKey {
			return Parse(r.Headers[i].Value)
		}
	}
	return Source{}, ErrAbsent
}
