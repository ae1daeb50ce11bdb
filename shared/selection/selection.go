// Package selection decides which source topics a stack migrates: a list
// of patterns to include and a list to exclude, as MirrorMaker 2's topics
// and topics.exclude and MSK Replicator's topics to replicate and exclude.
//
// A pattern is a regular expression (Go RE2 syntax) that must match the
// whole topic name; a plain topic name is a pattern that matches itself
// (and, since "." matches any character, names that differ from it only
// where it has a dot, as in MirrorMaker 2). Excludes win over includes.
// Besides the caller's excludes, a Selection never selects Kafka's and
// the usual tools' internal topics (Internal) or the names the caller
// reserves (the dead-letter topic, the cutover's details topic).
//
// Guarantees: Parse refuses, with a *PatternError naming the entry, an
// empty or invalid pattern, and a selection that includes nothing; Match
// is pure and safe for concurrent use.
package selection

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Internal are the patterns of topics that are never migrated. They
// follow MirrorMaker 2's rule for internal topics (a name starting with
// "__" or ".", or ending in ".internal" or "-internal": Kafka's
// __consumer_offsets and __transaction_state, KRaft's
// __cluster_metadata, MirrorMaker 2's own), and add Confluent Schema
// Registry's _schemas, Confluent Platform's _confluent-* topics,
// MirrorMaker 2's heartbeats and Kafka Connect's default internal topics.
var Internal = []string{
	`__.*`,
	`\..*`,
	`.*[-.]internal`,
	`_schemas`,
	`_confluent-.*`,
	`heartbeats`,
	`connect-(offsets|configs|status)`,
}

// maxPattern bounds one pattern's length: Kafka topic names have at most
// 249 characters, and patterns are typed by people.
const maxPattern = 1024

// PatternError says an include or exclude entry cannot be used.
type PatternError struct {
	List    string // "include" or "exclude"
	Index   int    // position in its list
	Pattern string
	Problem string
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("topic selection: %s[%d] %q: %s", e.List, e.Index, e.Pattern, e.Problem)
}

// Selection is a parsed include/exclude list.
type Selection struct {
	include, exclude []*regexp.Regexp
	includeSrc       []string
	reserved         []string
}

// Parse compiles include and exclude. reserved are topic names that are
// never selected (the project's own topics). Every entry is trimmed of
// spaces; empty entries are refused.
func Parse(include, exclude, reserved []string) (*Selection, error) {
	s := &Selection{}
	if len(include) == 0 {
		return nil, &PatternError{List: "include", Index: 0, Problem: "no pattern: a selection must include something"}
	}
	var err error
	if s.include, s.includeSrc, err = compile("include", include); err != nil {
		return nil, err
	}
	if s.exclude, _, err = compile("exclude", append(append([]string{}, exclude...), Internal...)); err != nil {
		return nil, err
	}
	for _, r := range reserved {
		if r = strings.TrimSpace(r); r != "" {
			s.reserved = append(s.reserved, r)
		}
	}
	return s, nil
}

func compile(list string, patterns []string) ([]*regexp.Regexp, []string, error) {
	var res []*regexp.Regexp
	var src []string
	for i, p := range patterns {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
			return nil, nil, &PatternError{List: list, Index: i, Pattern: p, Problem: "empty"}
		case len(p) > maxPattern:
			return nil, nil, &PatternError{List: list, Index: i, Pattern: p[:40] + "…", Problem: fmt.Sprintf("longer than %d characters", maxPattern)}
		}
		re, err := regexp.Compile(`^(?:` + p + `)$`)
		if err != nil {
			return nil, nil, &PatternError{List: list, Index: i, Pattern: p, Problem: "not a regular expression: " + err.Error()}
		}
		res = append(res, re)
		src = append(src, p)
	}
	return res, src, nil
}

// Match reports whether topic is selected: some include matches it, no
// exclude does, and it is not reserved or internal.
func (s *Selection) Match(topic string) bool {
	if slices.Contains(s.reserved, topic) {
		return false
	}
	for _, re := range s.exclude {
		if re.MatchString(topic) {
			return false
		}
	}
	for _, re := range s.include {
		if re.MatchString(topic) {
			return true
		}
	}
	return false
}

// Select returns the selected topics of topics, sorted and without
// repeats.
func (s *Selection) Select(topics []string) []string {
	var out []string
	for _, t := range topics {
		if s.Match(t) {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Prefixes returns, for each include pattern, the literal text every
// topic it matches starts with, sorted and without repeats, and with no
// prefix that another one already covers. An include with no literal
// prefix (".*", "[a-z]+") gives "": every name. IAM policies scope
// topic ARNs with them ("<prefix>*").
func (s *Selection) Prefixes() []string {
	var ps []string
	for _, src := range s.includeSrc {
		p, _ := regexp.MustCompile(`^(?:` + src + `)$`).LiteralPrefix()
		ps = append(ps, p)
	}
	sort.Strings(ps)
	var out []string
	for _, p := range ps {
		if len(out) > 0 && strings.HasPrefix(p, out[len(out)-1]) {
			continue // covered by a shorter prefix (sorted: it comes first)
		}
		out = append(out, p)
	}
	return out
}
