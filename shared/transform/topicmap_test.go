package transform

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

// TestTopicMap: the replicator's chain and ParseTopicMap give the same map
// from the same TRANSFORMS, and Target names every topic's target.
func TestTopicMap(t *testing.T) {
	const cfg = `[{"type":"filter","drop":{"field":"key","match":"prefix","value":"test-"}},
		{"type":"rename","topics":{"legacy.orders":"orders","legacy.payments":"payments"}},
		{"type":"hook","name":"uppercase-value"},
		{"type":"rename","topics":{"old_audit":"audit"}}]`
	m, err := ParseTopicMap([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	want := TopicMap{"legacy.orders": "orders", "legacy.payments": "payments", "old_audit": "audit"}
	if !maps.Equal(m, want) {
		t.Fatalf("ParseTopicMap = %v, want %v", m, want)
	}
	c, err := Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(c.TopicMap(), want) {
		t.Fatalf("Chain.TopicMap = %v, want %v", c.TopicMap(), want)
	}
	for src, dst := range map[string]string{"legacy.orders": "orders", "old_audit": "audit", "orders": "orders", "other": "other"} {
		if got := m.Target(src); got != dst || got != c.TargetTopic(src) {
			t.Errorf("Target(%q) = %q (chain %q), want %q", src, got, c.TargetTopic(src), dst)
		}
	}
	if !m.Renamed("legacy.orders") || m.Renamed("orders") {
		t.Error("Renamed is wrong")
	}
	if got := m.For([]string{"legacy.orders", "other"}); !maps.Equal(got, TopicMap{"legacy.orders": "orders"}) {
		t.Errorf("For = %v", got)
	}
	if got := m.For([]string{"other"}); got != nil {
		t.Errorf("For without renamed topics = %v, want nil", got)
	}
	for _, empty := range []string{``, ` `, `[]`, `[{"type":"setHeader","key":"k","value":"v"}]`} {
		if m, err := ParseTopicMap([]byte(empty)); err != nil || len(m) != 0 || m.Target("a") != "a" {
			t.Errorf("ParseTopicMap(%q) = %v, %v; want no renames", empty, m, err)
		}
	}
}

// TestTopicMapRefuses: both parsers refuse the same bad renames with a
// *ParseError naming the transform.
func TestTopicMapRefuses(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{`{"type":"rename"}`, "not a JSON list"},
		{`[{"type":"rename"}]`, "non-empty map"},
		{`[{"type":"rename","topics":{"a":"x","b":"x"}}]`, "many-to-one"},
		{`[{"type":"rename","topics":{"a":"x"}},{"type":"rename","topics":{"b":"x"}}]`, "transforms[1].topics: many-to-one"},
		{`[{"type":"rename","topics":{"a":"x"}},{"type":"rename","topics":{"a":"y"}}]`, "renamed twice"},
		{`[{"type":"rename","topics":{"a":"b"}},{"type":"rename","topics":{"b":"c"}}]`, "both renamed"},
		{`[{"type":"rename","topics":{"b":"c"}},{"type":"rename","topics":{"a":"b"}}]`, "both renamed"},
		{`[{"type":"rename","topics":{"a":"b","b":"a"}}]`, "both renamed"},
		{`[{"type":"rename","topics":{"a":"b","b":"c"}}]`, "both renamed"},
		{`[{"type":"rename","topics":{"a":"has space"}}]`, "invalid rename"},
		{`[{"type":"rename","topics":{"a":"x/y"}}]`, "invalid rename"},
		{`[{"type":"rename","topics":{"a":"orders:v2"}}]`, "invalid rename"},
		{`[{"type":"rename","topics":{"a":".."}}]`, "invalid rename"},
		{`[{"type":"rename","topics":{"a":"` + strings.Repeat("x", 250) + `"}}]`, "invalid rename"},
		{`[{"type":"rename","topics":{"":"x"}}]`, "invalid rename"},
		{`[{"type":"rename","topics":{"a":"x"},"typo":1}]`, "unknown field"},
	} {
		_, err1 := ParseTopicMap([]byte(tc.spec))
		_, err2 := Parse([]byte(tc.spec))
		for name, err := range map[string]error{"ParseTopicMap": err1, "Parse": err2} {
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s(%s) = %v, want *ParseError containing %q", name, tc.spec, err, tc.want)
			}
		}
	}
}

// TestTopicMapCheck: renames are refused where they cannot work with the
// migrated topics.
func TestTopicMapCheck(t *testing.T) {
	m := TopicMap{"legacy.orders": "orders", "legacy.audit": "kmig.dead-letter"}
	for _, tc := range []struct {
		name   string
		topics []string
		o      CheckOptions
		want   string // "" = accepted
	}{
		{"renamed topic alone", []string{"legacy.orders"}, CheckOptions{}, ""},
		{"destination is another migrated topic", []string{"legacy.orders", "orders"}, CheckOptions{}, `"orders" is also a migrated topic`},
		{"rename of an unmigrated topic is inert", []string{"payments"}, CheckOptions{}, ""},
		{"strict: rename of an unmigrated topic", []string{"legacy.orders", "payments"}, CheckOptions{Strict: true}, `rename "legacy.audit" -> "kmig.dead-letter": the renamed topic is not one of the migrated topics`},
		{"destination is the dead-letter topic", []string{"legacy.orders", "legacy.audit"}, CheckOptions{TargetOnly: []string{"kmig.dead-letter"}}, "target-only"},
		{"all fine", []string{"legacy.orders", "legacy.audit", "payments"}, CheckOptions{Strict: true, TargetOnly: []string{"dlq"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Check(tc.topics, tc.o)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			var te *TopicMapError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want *TopicMapError containing %q", err, tc.want)
			}
		})
	}
}
