package provenance

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRoundTrip(t *testing.T) {
	for _, s := range []Source{
		{"orders", 0, 0},
		{"a-b.c_d", 11, 1<<62 + 5},
		{"t", 2147483647, 9},
	} {
		got, err := Parse([]byte(s.String()))
		if err != nil || got != s {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", s.String(), got, err, s)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	for _, in := range []string{"", "/", "t/1", "/1/2", "t/-1/2", "t/1/-2", "t/x/2", "t/1/2x", "t/99999999999/1", "t//1"} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) error = %v, want ErrMalformed", in, err)
		}
	}
}

func TestOf(t *testing.T) {
	r := &kgo.Record{Headers: []kgo.RecordHeader{{Key: "a", Value: []byte("x")}, {Key: HeaderKey, Value: []byte("old/0/1")}, {Key: HeaderKey, Value: []byte("t/3/42")}}}
	got, err := Of(r)
	if err != nil || got != (Source{"t", 3, 42}) {
		t.Fatalf("Of = %+v, %v", got, err)
	}
	if _, err := Of(&kgo.Record{}); !errors.Is(err, ErrAbsent) {
		t.Fatalf("Of(no header) = %v, want ErrAbsent", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("orders/3/17"))
	f.Add([]byte("a/b/c/1/2"))
	f.Fuzz(func(t *testing.T, v []byte) {
		s, err := Parse(v)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if s.String() != string(v) {
			// Only canonical forms may differ (e.g. leading zeros); they must re-parse equal.
			if s2, err := Parse([]byte(s.String())); err != nil || s2 != s {
				t.Fatalf("round trip of %q: %+v then %+v, %v", v, s, s2, err)
			}
		}
	})
}
