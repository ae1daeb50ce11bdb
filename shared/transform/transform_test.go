package transform

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	RegisterHook("uppercase-value", func(r *kgo.Record) (Verdict, error) {
		if string(r.Value) == "poison" {
			return Keep, errors.New("cannot transform poison")
		}
		r.Value = []byte(strings.ToUpper(string(r.Value)))
		return Keep, nil
	})
}

func rec(topic, key, value string, hs ...string) *kgo.Record {
	r := &kgo.Record{Topic: topic, Partition: 3}
	if key != "<nil>" {
		r.Key = []byte(key)
	}
	if value != "<nil>" {
		r.Value = []byte(value)
	}
	for i := 0; i+1 < len(hs); i += 2 {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: hs[i], Value: []byte(hs[i+1])})
	}
	return r
}

func headers(r *kgo.Record) string {
	var s []string
	for _, h := range r.Headers {
		s = append(s, h.Key+"="+string(h.Value))
	}
	return strings.Join(s, ",")
}

func TestChain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		spec     string
		in       *kgo.Record
		verdict  Verdict
		topic    string
		value    string
		headers  string
		errMatch string
	}{
		{"empty config keeps", ``, rec("a", "k", "v"), Keep, "a", "v", "", ""},
		{"rename", `[{"type":"rename","topics":{"a":"b"}}]`, rec("a", "k", "v"), Keep, "b", "v", "", ""},
		{"rename leaves others", `[{"type":"rename","topics":{"a":"b"}}]`, rec("c", "k", "v"), Keep, "c", "v", "", ""},
		{"rename collision", `[{"type":"rename","topics":{"a":"b"}}]`, rec("b", "k", "v"), Keep, "b", "v", "", "collides"},
		{"drop by key prefix", `[{"type":"filter","drop":{"field":"key","match":"prefix","value":"test-"}}]`, rec("a", "test-1", "v"), Filter, "a", "v", "", ""},
		{"drop by key prefix no match", `[{"type":"filter","drop":{"field":"key","match":"prefix","value":"test-"}}]`, rec("a", "prod-1", "v"), Keep, "a", "v", "", ""},
		{"keep by header", `[{"type":"filter","keep":{"field":"header","header":"env","match":"equals","value":"prod"}}]`, rec("a", "k", "v", "env", "dev"), Filter, "a", "v", "env=dev", ""},
		{"keep by header match", `[{"type":"filter","keep":{"field":"header","header":"env","match":"equals","value":"prod"}}]`, rec("a", "k", "v", "env", "prod"), Keep, "a", "v", "env=prod", ""},
		{"drop tombstones", `[{"type":"filter","drop":{"field":"value","match":"null"}}]`, rec("a", "k", "<nil>"), Filter, "a", "", "", ""},
		{"empty is not null", `[{"type":"filter","drop":{"field":"value","match":"null"}}]`, rec("a", "k", ""), Keep, "a", "", "", ""},
		{"drop by value regex", `[{"type":"filter","drop":{"field":"value","match":"regex","value":"^\\d+$"}}]`, rec("a", "k", "12345"), Filter, "a", "12345", "", ""},
		{"set header replaces first, removes rest, keeps order", `[{"type":"setHeader","key":"x","value":"new"}]`, rec("a", "k", "v", "x", "1", "y", "2", "x", "3"), Keep, "a", "v", "x=new,y=2", ""},
		{"set header appends", `[{"type":"setHeader","key":"z","value":"1"}]`, rec("a", "k", "v", "y", "2"), Keep, "a", "v", "y=2,z=1", ""},
		{"remove header", `[{"type":"removeHeader","key":"x"}]`, rec("a", "k", "v", "x", "1", "y", "2", "x", "3"), Keep, "a", "v", "y=2", ""},
		{"hook", `[{"type":"hook","name":"uppercase-value"}]`, rec("a", "k", "abc"), Keep, "a", "ABC", "", ""},
		{"hook error is a record error", `[{"type":"hook","name":"uppercase-value"}]`, rec("a", "k", "poison"), Keep, "a", "poison", "", "poison"},
		{"order matters: filter before rename", `[{"type":"filter","drop":{"field":"key","match":"equals","value":"k"}},{"type":"rename","topics":{"a":"b"}}]`, rec("a", "k", "v"), Filter, "a", "v", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.spec))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			v, err := c.Apply(tc.in)
			if tc.errMatch != "" {
				var re *RecordError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.errMatch) {
					t.Fatalf("err = %v, want *RecordError containing %q", err, tc.errMatch)
				}
				return
			}
			if err != nil || v != tc.verdict {
				t.Fatalf("Apply = %v, %v; want %v", v, err, tc.verdict)
			}
			if tc.in.Topic != tc.topic || string(tc.in.Value) != tc.value || headers(tc.in) != tc.headers || tc.in.Partition != 3 {
				t.Fatalf("record = %s/%d %q [%s]", tc.in.Topic, tc.in.Partition, tc.in.Value, headers(tc.in))
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{`{"type":"rename"}`, "not a JSON list"},
		{`[{"type":"rename","topics":{"a":"x","b":"x"}}]`, "many-to-one"},
		{`[{"type":"rename","topics":{"a":"x"}},{"type":"rename","topics":{"b":"x"}}]`, "many-to-one"},
		{`[{"type":"rename","topics":{"a":"x"}},{"type":"rename","topics":{"a":"y"}}]`, "renamed twice"},
		{`[{"type":"explode"}]`, "unknown transform type"},
		{`[{"typo":"rename"}]`, "unknown field"},
		{`[{"type":"filter"}]`, "exactly one of drop or keep"},
		{`[{"type":"filter","drop":{"field":"offset","match":"equals"}}]`, "transforms[0].drop"},
		{`[{"type":"filter","drop":{"field":"key","match":"regex","value":"("}}]`, "bad regex"},
		{`[{"type":"hook","name":"nope"}]`, "no hook registered"},
		{`[{"type":"setHeader"}]`, "transforms[0].key"},
	} {
		_, err := Parse([]byte(tc.spec))
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want *ParseError containing %q", tc.spec, err, tc.want)
		}
	}
}
