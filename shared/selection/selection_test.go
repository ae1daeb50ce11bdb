package selection

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	topics := []string{
		"orders", "orders.eu", "orders.us", "ordersX", "legacy.orders", "legacyXorders",
		"payments", "payments.internal", "payments-internal", "audit.log",
		"__consumer_offsets", "__transaction_state", ".hidden", "_schemas", "_confluent-metrics",
		"heartbeats", "connect-offsets", "kmig.dead-letter", "kmig.cutover-details", "orders.eu",
	}
	for _, c := range []struct {
		name             string
		include, exclude []string
		want             []string
	}{
		{"names", []string{"orders", "payments"}, nil, []string{"orders", "payments"}},
		{"a pattern must match the whole name", []string{"orders\\..*"}, nil, []string{"orders.eu", "orders.us"}},
		{"a dot in a plain name matches any character, as in MirrorMaker 2", []string{"legacy.orders"}, nil, []string{"legacy.orders", "legacyXorders"}},
		{"excludes win", []string{"orders.*"}, []string{"orders\\.us", "ordersX"}, []string{"orders", "orders.eu"}},
		{"everything but internal and reserved topics", []string{".*"}, nil,
			[]string{"audit.log", "legacy.orders", "legacyXorders", "orders", "orders.eu", "orders.us", "ordersX", "payments"}},
		{"an internal topic is never selected, even by name", []string{"__consumer_offsets", "payments.internal", "_schemas", "heartbeats"}, nil, nil},
		{"a reserved topic is never selected, even by name", []string{"kmig.dead-letter", "kmig.cutover-details", "audit.log"}, nil, []string{"audit.log"}},
		{"spaces around entries are trimmed", []string{" orders ", "payments"}, []string{" payments "}, []string{"orders"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse(c.include, c.exclude, []string{"kmig.dead-letter", "kmig.cutover-details"})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Select(topics); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Select = %q; want %q", got, c.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct {
		name             string
		include, exclude []string
		list             string
		index            int
	}{
		{"nothing included", nil, []string{"x"}, "include", 0},
		{"an empty include", []string{"orders", " "}, nil, "include", 1},
		{"an empty exclude", []string{"orders"}, []string{""}, "exclude", 0},
		{"not a regular expression", []string{"orders", "orders.(eu"}, nil, "include", 1},
		{"a bad exclude", []string{"orders"}, []string{"[a-"}, "exclude", 0},
		{"too long", []string{strings.Repeat("a", 1025)}, nil, "include", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.include, c.exclude, nil)
			var pe *PatternError
			if !errors.As(err, &pe) || pe.List != c.list || pe.Index != c.index {
				t.Fatalf("Parse = %v; want a *PatternError for %s[%d]", err, c.list, c.index)
			}
			if !strings.Contains(err.Error(), c.list+"[") {
				t.Fatalf("message does not name the entry: %v", err)
			}
		})
	}
}

func TestPrefixes(t *testing.T) {
	for _, c := range []struct {
		include []string
		want    []string
	}{
		{[]string{"orders", "payments"}, []string{"orders", "payments"}},
		{[]string{"orders\\..*", "orders\\.eu", "orders"}, []string{"orders"}},
		{[]string{"team-a\\..*", "team-b\\..*"}, []string{"team-a.", "team-b."}},
		{[]string{"legacy.orders"}, []string{"legacy"}}, // "." is not literal
		{[]string{"orders", ".*"}, []string{""}},
		{[]string{"[a-z]+"}, []string{""}},
	} {
		s, err := Parse(c.include, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := s.Prefixes()
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Prefixes(%q) = %q; want %q", c.include, got, c.want)
		}
		// Every selected name starts with one of the prefixes.
		for _, name := range []string{"orders", "orders.eu", "payments", "team-a.x", "team-b.y", "legacyXorders", "zzz"} {
			if !s.Match(name) {
				continue
			}
			ok := false
			for _, p := range got {
				ok = ok || strings.HasPrefix(name, p)
			}
			if !ok {
				t.Errorf("%q is selected by %q but starts with none of %q", name, c.include, got)
			}
		}
	}
}

// FuzzSelection: Parse never panics; a parsed selection never selects an
// internal or reserved topic, and every topic it selects starts with one
// of its Prefixes.
func FuzzSelection(f *testing.F) {
	for _, s := range []string{"orders", "orders\\..*", ".*", "(a|b)+", "[", "__.*", "x{1000}"} {
		f.Add(s, "", "orders.eu")
	}
	f.Fuzz(func(t *testing.T, include, exclude, topic string) {
		var ex []string
		if exclude != "" {
			ex = []string{exclude}
		}
		s, err := Parse([]string{include}, ex, []string{"kmig.dead-letter"})
		if err != nil {
			var pe *PatternError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error %T, not a *PatternError: %v", err, err)
			}
			return
		}
		for _, name := range []string{topic, "__consumer_offsets", "kmig.dead-letter", "x.internal"} {
			if !s.Match(name) {
				continue
			}
			if name != topic {
				t.Fatalf("selected %q (internal or reserved) with include %q", name, include)
			}
			ok := false
			for _, p := range s.Prefixes() {
				ok = ok || strings.HasPrefix(name, p)
			}
			if !ok {
				t.Fatalf("%q selected by %q starts with none of %q", name, include, s.Prefixes())
			}
		}
	})
}
