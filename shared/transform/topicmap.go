package transform

import (
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"slices"
)

// TopicMap is the source → target topic name map of a TRANSFORMS
// configuration: it holds the renamed topics only, and every other topic
// keeps its name on the target. The replicator, the provisioner and the
// cutover all take it from the same TRANSFORMS value, through ParseTopicMap
// or Chain.TopicMap, so they agree on every target name.
//
// A TopicMap from a successful parse is one-to-one, names only legal Kafka
// topics, and no topic in it is both renamed and a rename destination.
type TopicMap map[string]string

// Target returns the target name of source topic src.
func (m TopicMap) Target(src string) string {
	if t, ok := m[src]; ok {
		return t
	}
	return src
}

// Renamed reports whether src gets another name on the target.
func (m TopicMap) Renamed(src string) bool {
	t, ok := m[src]
	return ok && t != src
}

// For returns the part of m that applies to topics (nil when none is
// renamed), for reports and state.
func (m TopicMap) For(topics []string) TopicMap {
	var out TopicMap
	for _, t := range topics {
		if m.Renamed(t) {
			if out == nil {
				out = TopicMap{}
			}
			out[t] = m[t]
		}
	}
	return out
}

// TopicMapError refuses a rename that cannot work with the migrated topics:
// its destination is another migrated topic's name (two source topics would
// share one target topic), or, checked with Strict, its source is not
// migrated at all, or its destination is a target-only topic such as the
// dead-letter topic.
type TopicMapError struct {
	Source, Target string
	Problem        string
}

func (e *TopicMapError) Error() string {
	return fmt.Sprintf("rename %q -> %q: %s", e.Source, e.Target, e.Problem)
}

// CheckOptions tune TopicMap.Check.
type CheckOptions struct {
	// Strict refuses renames of topics not in the migrated list: with the
	// full list of a stack's topics such a rename never applies, and is
	// almost always a misspelt topic name.
	Strict bool
	// TargetOnly are topics that exist on the target only (the dead-letter
	// topic); no rename may write into them.
	TargetOnly []string
}

// Check refuses, with a *TopicMapError, what cannot work for the migrated
// topics: a rename whose destination is the name of another migrated topic
// that keeps its name, or of a TargetOnly topic, and with Strict a rename
// of a topic that is not migrated. The first problem in source-name order
// is returned.
func (m TopicMap) Check(topics []string, o CheckOptions) error {
	migrated := map[string]bool{}
	for _, t := range topics {
		migrated[t] = true
	}
	targetOnly := map[string]bool{}
	for _, t := range o.TargetOnly {
		targetOnly[t] = true
	}
	for _, s := range slices.Sorted(maps.Keys(m)) {
		d := m[s]
		switch {
		case o.Strict && !migrated[s]:
			return &TopicMapError{Source: s, Target: d, Problem: "the renamed topic is not one of the migrated topics (a misspelt name?)"}
		case !migrated[s]:
			continue
		case migrated[d] && !m.Renamed(d) && d != s:
			return &TopicMapError{Source: s, Target: d, Problem: fmt.Sprintf("%q is also a migrated topic that keeps its name, so two source topics would write into one target topic", d)}
		case targetOnly[d]:
			return &TopicMapError{Source: s, Target: d, Problem: fmt.Sprintf("%q is the target-only topic %q (dead letters)", d, d)}
		}
	}
	return nil
}

// TopicMap returns the chain's renames. The caller must not change it.
func (c *Chain) TopicMap() TopicMap {
	if c == nil || len(c.renames) == 0 {
		return nil
	}
	return TopicMap(c.renames)
}

// ParseTopicMap reads the renames of a TRANSFORMS configuration, with the
// same checks Parse applies to them, and ignores the other transforms
// (hooks are compiled into the replicator only, so functions that need
// just the topic names cannot resolve them). A bad document or rename is a
// *ParseError; an empty configuration renames nothing.
func ParseTopicMap(data []byte) (TopicMap, error) {
	c := &Chain{renames: map[string]string{}, targets: map[string]string{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	specs, err := decodeSpecs(data)
	if err != nil {
		return nil, err
	}
	for i, s := range specs {
		if s.Type != "rename" {
			continue
		}
		if err := c.addRenames(i, s.Topics); err != nil {
			return nil, err
		}
	}
	return c.TopicMap(), nil
}

// legalTopic is Kafka's rule for topic names.
var legalTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func validTopicName(name string) bool {
	return legalTopic.MatchString(name) && name != "." && name != ".."
}

// addRenames checks one rename transform's map against the renames before
// it and records it. Both names must be legal Kafka topic names; a topic is
// renamed at most once, no two topics share a destination, and no topic is
// both renamed and a destination (a chain a -> b, b -> c would send a's
// records through both transforms to c).
func (c *Chain) addRenames(i int, topics map[string]string) error {
	perr := func(format string, args ...any) error {
		return &ParseError{Index: i, Field: "topics", Err: fmt.Errorf(format, args...)}
	}
	if len(topics) == 0 {
		return perr("rename needs a non-empty map of source topic to target topic")
	}
	srcs := slices.Sorted(maps.Keys(topics))
	for _, src := range srcs {
		dst := topics[src]
		if !validTopicName(src) || !validTopicName(dst) {
			return perr("invalid rename %q -> %q: topic names are 1 to 249 of [a-zA-Z0-9._-], not . or ..", src, dst)
		}
		if _, dup := c.renames[src]; dup {
			return perr("topic %q is renamed twice", src)
		}
		if other, dup := c.targets[dst]; dup {
			return perr("many-to-one rename: %q and %q both map to %q", other, src, dst)
		}
		c.renames[src] = dst
		c.targets[dst] = src
	}
	for _, src := range srcs {
		dst := topics[src]
		if _, renamed := c.renames[dst]; renamed && dst != src {
			return perr("topic %q is both renamed (to %q) and a rename destination (of %q); chained or swapped renames are not supported", dst, c.renames[dst], src)
		}
		if from, isDst := c.targets[src]; isDst && from != src {
			return perr("topic %q is both renamed (to %q) and a rename destination (of %q); chained or swapped renames are not supported", src, dst, from)
		}
	}
	return nil
}
