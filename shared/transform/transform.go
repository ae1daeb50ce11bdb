// Package transform applies an ordered list of record transforms, configured
// as JSON: topic rename, filter (drop or keep) by key, value or header
// predicate, header set and remove, and Go hooks compiled into the function.
//
// Guarantees: a Chain never drops a record silently — Apply says whether the
// record was kept, filtered, or failed with a *RecordError, and the caller
// counts each outcome. A many-to-one rename is refused by Parse.
package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Verdict is what a transform decided for a record.
type Verdict int

const (
	Keep   Verdict = iota // write the record on
	Filter                // drop the record on purpose; it is counted as filtered
)

// Step transforms one record in place.
type Step interface {
	Apply(r *kgo.Record) (Verdict, error)
}

// Chain is an ordered list of steps.
type Chain struct {
	steps   []Step
	renames map[string]string
	targets map[string]string // rename destination -> its source
}

// RecordError is a permanent, per-record transform failure. The record goes
// to the dead-letter topic or fails the batch, by configuration.
type RecordError struct {
	Step int    // index of the failing transform in the configured list
	Type string // its type
	Err  error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("transform %d (%s): %v", e.Step, e.Type, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// ErrTopicCollision is returned when a record's topic is not renamed but
// another topic is renamed onto it: two source topics would merge into one
// target topic, and partitions could no longer be preserved.
var ErrTopicCollision = errors.New("topic collides with a rename destination")

// Apply runs every step in order, stopping at the first Filter or error.
func (c *Chain) Apply(r *kgo.Record) (Verdict, error) {
	if c == nil {
		return Keep, nil
	}
	if src, ok := c.targets[r.Topic]; ok && src != r.Topic {
		if _, renamed := c.renames[r.Topic]; !renamed {
			return Keep, &RecordError{Step: -1, Type: "rename", Err: fmt.Errorf("%w: %q is also where %q is renamed to", ErrTopicCollision, r.Topic, src)}
		}
	}
	for i, s := range c.steps {
		v, err := s.Apply(r)
		if err != nil {
			var re *RecordError
			if errors.As(err, &re) {
				return Keep, err
			}
			return Keep, &RecordError{Step: i, Type: typeName(s), Err: err}
		}
		if v == Filter {
			return Filter, nil
		}
	}
	return Keep, nil
}

// Len is the number of configured steps.
func (c *Chain) Len() int {
	if c == nil {
		return 0
	}
	return len(c.steps)
}

// TargetTopic returns the topic a source topic is written to.
func (c *Chain) TargetTopic(src string) string {
	if c != nil {
		if t, ok := c.renames[src]; ok {
			return t
		}
	}
	return src
}

// Spec is one configured transform, as JSON.
type Spec struct {
	Type string `json:"type"` // rename | filter | setHeader | removeHeader | hook

	Topics map[string]string `json:"topics,omitempty"` // rename: source -> target

	Drop *Predicate `json:"drop,omitempty"` // filter: drop records matching
	Keep *Predicate `json:"keep,omitempty"` // filter: drop records not matching

	Key   string `json:"key,omitempty"`   // setHeader/removeHeader: header key
	Value string `json:"value,omitempty"` // setHeader: header value

	Name string `json:"name,omitempty"` // hook: registered name
}

// Predicate matches a record by one field.
type Predicate struct {
	Field  string `json:"field"`            // key | value | header
	Header string `json:"header,omitempty"` // for field header: its key
	Match  string `json:"match"`            // equals | prefix | suffix | contains | regex | exists | null
	Value  string `json:"value,omitempty"`

	re *regexp.Regexp
}

// ParseError is a bad TRANSFORMS configuration; Index is the offending
// entry (-1 for the document as a whole).
type ParseError struct {
	Index int
	Field string
	Err   error
}

func (e *ParseError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("transforms: %v", e.Err)
	}
	if e.Field != "" {
		return fmt.Sprintf("transforms[%d].%s: %v", e.Index, e.Field, e.Err)
	}
	return fmt.Sprintf("transforms[%d]: %v", e.Index, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// decodeSpecs decodes a JSON list of Specs, refusing unknown fields.
func decodeSpecs(data []byte) ([]Spec, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var specs []Spec
	if err := dec.Decode(&specs); err != nil {
		return nil, &ParseError{Index: -1, Err: fmt.Errorf("not a JSON list of transforms: %w", err)}
	}
	return specs, nil
}

// Parse builds a Chain from a JSON list of Specs. Unknown fields, unknown
// types, bad regexes, unregistered hooks and many-to-one renames are
// refused with a *ParseError, as are renames of or to illegal topic
// names and chained renames (see TopicMap).
func Parse(data []byte) (*Chain, error) {
	c := &Chain{renames: map[string]string{}, targets: map[string]string{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	specs, err := decodeSpecs(data)
	if err != nil {
		return nil, err
	}
	for i, s := range specs {
		st, err := c.build(i, s)
		if err != nil {
			return nil, err
		}
		if st != nil {
			c.steps = append(c.steps, st)
		}
	}
	return c, nil
}

func (c *Chain) build(i int, s Spec) (Step, error) {
	perr := func(field, format string, args ...any) error {
		return &ParseError{Index: i, Field: field, Err: fmt.Errorf(format, args...)}
	}
	switch s.Type {
	case "rename":
		if err := c.addRenames(i, s.Topics); err != nil {
			return nil, err
		}
		return renameStep(s.Topics), nil
	case "filter":
		if (s.Drop == nil) == (s.Keep == nil) {
			return nil, perr("", "filter needs exactly one of drop or keep")
		}
		p, field := s.Drop, "drop"
		if p == nil {
			p, field = s.Keep, "keep"
		}
		if err := p.compile(); err != nil {
			return nil, perr(field, "%v", err)
		}
		return filterStep{p: p, keep: s.Keep != nil}, nil
	case "setHeader":
		if s.Key == "" {
			return nil, perr("key", "setHeader needs a header key")
		}
		return setHeader{key: s.Key, value: []byte(s.Value)}, nil
	case "removeHeader":
		if s.Key == "" {
			return nil, perr("key", "removeHeader needs a header key")
		}
		return removeHeader(s.Key), nil
	case "hook":
		h, ok := lookupHook(s.Name)
		if !ok {
			return nil, perr("name", "no hook registered as %q (registered: %s)", s.Name, strings.Join(hookNames(), ", "))
		}
		return hookStep{name: s.Name, fn: h}, nil
	case "":
		return nil, perr("type", "missing")
	default:
		return nil, perr("type", "unknown transform type %q (want rename, filter, setHeader, removeHeader or hook)", s.Type)
	}
}

func (p *Predicate) compile() error {
	switch p.Field {
	case "key", "value":
	case "header":
		if p.Header == "" {
			return errors.New("field header needs a header name")
		}
	default:
		return fmt.Errorf("field %q is not key, value or header", p.Field)
	}
	switch p.Match {
	case "equals", "prefix", "suffix", "contains", "exists", "null":
	case "regex":
		re, err := regexp.Compile(p.Value)
		if err != nil {
			return fmt.Errorf("bad regex: %w", err)
		}
		p.re = re
	default:
		return fmt.Errorf("match %q is not equals, prefix, suffix, contains, regex, exists or null", p.Match)
	}
	return nil
}

func (p *Predicate) matches(r *kgo.Record) bool {
	var v []byte
	present := true
	switch p.Field {
	case "key":
		v = r.Key
		present = v != nil
	case "value":
		v = r.Value
		present = v != nil
	case "header":
		present = false
		for _, h := range r.Headers {
			if h.Key == p.Header {
				v, present = h.Value, true
			}
		}
	}
	switch p.Match {
	case "exists":
		return present
	case "null":
		return !present
	}
	if !present {
		return false
	}
	switch p.Match {
	case "equals":
		return string(v) == p.Value
	case "prefix":
		return bytes.HasPrefix(v, []byte(p.Value))
	case "suffix":
		return bytes.HasSuffix(v, []byte(p.Value))
	case "contains":
		return bytes.Contains(v, []byte(p.Value))
	case "regex":
		return p.re.Match(v)
	}
	return false
}

type renameStep map[string]string

func (s renameStep) Apply(r *kgo.Record) (Verdict, error) {
	if t, ok := s[r.Topic]; ok {
		r.Topic = t
	}
	return Keep, nil
}

type filterStep struct {
	p    *Predicate
	keep bool
}

func (s filterStep) Apply(r *kgo.Record) (Verdict, error) {
	if s.p.matches(r) != s.keep {
		return Filter, nil
	}
	return Keep, nil
}

type setHeader struct {
	key   string
	value []byte
}

// Apply replaces the value of the first header with the key, removes any
// later ones, or appends the header when absent.
func (s setHeader) Apply(r *kgo.Record) (Verdict, error) {
	out := r.Headers[:0:0]
	found := false
	for _, h := range r.Headers {
		if h.Key == s.key {
			if found {
				continue
			}
			found = true
			h.Value = s.value
		}
		out = append(out, h)
	}
	if !found {
		out = append(out, kgo.RecordHeader{Key: s.key, Value: s.value})
	}
	r.Headers = out
	return Keep, nil
}

type removeHeader string

func (s removeHeader) Apply(r *kgo.Record) (Verdict, error) {
	out := r.Headers[:0:0]
	for _, h := range r.Headers {
		if h.Key != string(s) {
			out = append(out, h)
		}
	}
	r.Headers = out
	return Keep, nil
}

// Hook is custom Go code compiled into the function. It may change the
// record in place (not its Partition), return Filter to drop it on
// purpose, or return an error to fail that record permanently.
type Hook func(r *kgo.Record) (Verdict, error)

var (
	hooksMu sync.RWMutex
	hooks   = map[string]Hook{}
)

// RegisterHook makes a hook available to TRANSFORMS as {"type":"hook",
// "name": name}. Call it from an init function in a package imported by
// the replicator's main. Registering a name twice panics: it is a
// programming error caught at start-up.
func RegisterHook(name string, h Hook) {
	hooksMu.Lock()
	defer hooksMu.Unlock()
	if _, dup := hooks[name]; dup {
		panic("transform: hook " + name + " registered twice")
	}
	hooks[name] = h
}

func lookupHook(name string) (Hook, bool) {
	hooksMu.RLock()
	defer hooksMu.RUnlock()
	h, ok := hooks[name]
	return h, ok
}

func hookNames() []string {
	hooksMu.RLock()
	defer hooksMu.RUnlock()
	names := make([]string, 0, len(hooks))
	for n := range hooks {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return []string{"none"}
	}
	return names
}

type hookStep struct {
	name string
	fn   Hook
}

func (s hookStep) Apply(r *kgo.Record) (v Verdict, err error) {
	p := r.Partition
	defer func() {
		if x := recover(); x != nil {
			v, err = Keep, fmt.Errorf("hook %s panicked: %v", s.name, x)
		}
	}()
	v, err = s.fn(r)
	if err == nil && r.Partition != p {
		r.Partition = p
		return Keep, fmt.Errorf("hook %s changed the partition; partitions are preserved", s.name)
	}
	return v, err
}

func typeName(s Step) string {
	switch s.(type) {
	case renameStep:
		return "rename"
	case filterStep:
		return "filter"
	case setHeader:
		return "setHeader"
	case removeHeader:
		return "removeHeader"
	case hookStep:
		return "hook"
	}
	return fmt.Sprintf("%T", s)
}
