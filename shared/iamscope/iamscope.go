// Package iamscope is the CloudFormation custom resource Custom::TopicScope:
// it turns a stack's topic selection into the MSK IAM resource ARNs its
// policies grant, so that the template's IAM does not grow with the number
// of topics. CloudFormation cannot compute a regular expression's literal
// prefix; this resource does, and the template uses its attributes with
// !Split [",", !GetAtt TopicScope.<attribute>].
//
// For each include pattern it grants the literal text every matching topic
// starts with: a pattern that is a plain topic name gives that exact topic
// ARN (topic/CLUSTER/UUID/payments), a pattern with a literal prefix gives
// a prefix wildcard (topic/CLUSTER/UUID/orders.*), and a pattern with no
// literal prefix gives the cluster's topic/CLUSTER/UUID/*. Entries that a
// shorter prefix already covers are dropped. The target names of the
// selected topics that TRANSFORMS renames are granted exactly. The
// mappings' consumer groups (ConsumerGroupIdPrefix + topic) and the
// replicator's transactional IDs (ConsumerGroupIdPrefix + topic + "-" +
// partition) are scoped the same way.
//
// Guarantees: every topic the selection can select (and its target name,
// consumer group and transactional IDs) is covered; nothing broader than
// needed is granted, except when the lists together would exceed
// ListBudget characters, in which case groups and transactional IDs fall
// back to ConsumerGroupIdPrefix* and then, if still too long, topics fall
// back to each cluster's topic/CLUSTER/UUID/*. A pattern that does not
// parse fails the resource with the *selection.PatternError's text. The
// handler needs no access to Kafka or to any AWS API.
package iamscope

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/customresource"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/selection"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

// ResourceType is the custom resource's type in template.yaml.
const ResourceType = "Custom::TopicScope"

// Property names of the custom resource.
const (
	PropServiceToken   = "ServiceToken"   // set by CloudFormation; ignored
	PropServiceTimeout = "ServiceTimeout" // ignored
	// PropSourceClusterArn is the source MSK cluster's ARN; "" for a
	// self-managed source (the source attributes are then "").
	PropSourceClusterArn = "SourceClusterArn"
	// PropTargetClusterArn is the target MSK cluster's ARN (required).
	PropTargetClusterArn = "TargetClusterArn"
	// PropTopicPatterns and PropExcludedTopicPatterns are the selection:
	// lists, or comma-separated strings.
	PropTopicPatterns         = "TopicPatterns"
	PropExcludedTopicPatterns = "ExcludedTopicPatterns"
	// PropTransforms is the replicator's TRANSFORMS (JSON); its renames
	// give the target names of renamed topics.
	PropTransforms = "Transforms"
	// PropDeadLetterTopic and PropCutoverDetailsTopic are reserved: never
	// selected.
	PropDeadLetterTopic     = "DeadLetterTopic"
	PropCutoverDetailsTopic = "CutoverDetailsTopic"
	// PropConsumerGroupIDPrefix is the mappings' consumer group prefix.
	PropConsumerGroupIDPrefix = "ConsumerGroupIdPrefix"
)

// Attribute names of the response (each a comma-joined ARN list).
const (
	// AttrSourceTopicArns: the selected topics on the source cluster.
	AttrSourceTopicArns = "SourceTopicArns"
	// AttrSourceGroupArns: the mappings' consumer groups on the source.
	AttrSourceGroupArns = "SourceGroupArns"
	// AttrTargetTopicArns: the selected topics' target names on the target.
	AttrTargetTopicArns = "TargetTopicArns"
	// AttrTargetTransactionalIDArns: the replicator's transactional IDs on
	// the target.
	AttrTargetTransactionalIDArns = "TargetTransactionalIdArns"
	// AttrScope says how narrow the lists are: "prefixes", "topics"
	// (groups and transactional IDs fell back to the prefix), or
	// "clusters" (topics fell back to the whole clusters).
	AttrScope = "Scope"
)

// Scopes reported in AttrScope.
const (
	ScopePrefixes = "prefixes"
	ScopeTopics   = "topics"
	ScopeClusters = "clusters"
)

// MaxRolePolicyChars is IAM's quota on the aggregate size of a role's
// inline policies, white space not counted: "Role policy size cannot
// exceed 10,240 characters" (IAM and AWS STS quotas).
const MaxRolePolicyChars = 10240

// ListBudget is the most characters the four lists may take together in
// one role's policies, as JSON arrays ("arn","arn"): each role references
// each list at most once, and the rest of the largest role's policies
// stays below MaxRolePolicyChars-ListBudget (templatetest checks both).
const ListBudget = 3000

// Error is a property that cannot be used; the resource fails with its
// message.
type Error struct {
	Property string
	Problem  string
	Err      error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Property, e.Problem, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Property, e.Problem)
}

func (e *Error) Unwrap() error { return e.Err }

// Scope is the result for one set of properties.
type Scope struct {
	SourceTopics, SourceGroups         []string // nil without a source cluster ARN
	TargetTopics, TargetTransactionIDs []string
	Scope                              string
}

// Data returns the response attributes.
func (s Scope) Data() map[string]any {
	return map[string]any{
		AttrSourceTopicArns:           strings.Join(s.SourceTopics, ","),
		AttrSourceGroupArns:           strings.Join(s.SourceGroups, ","),
		AttrTargetTopicArns:           strings.Join(s.TargetTopics, ","),
		AttrTargetTransactionalIDArns: strings.Join(s.TargetTransactionIDs, ","),
		AttrScope:                     s.Scope,
	}
}

// Handle processes one custom resource event. Delete succeeds with nothing
// to do; Create and Update compute the lists from the properties.
func Handle(ctx context.Context, ev cfn.Event) (physicalID string, data map[string]any, err error) {
	physicalID = PhysicalID(ev)
	switch ev.RequestType {
	case cfn.RequestDelete:
		return physicalID, nil, nil
	case cfn.RequestCreate, cfn.RequestUpdate:
	default:
		return physicalID, nil, fmt.Errorf("topic scope: unknown RequestType %q", ev.RequestType)
	}
	p, err := parseProperties(ev.ResourceProperties)
	if err != nil {
		return physicalID, nil, fmt.Errorf("topic scope: %w", err)
	}
	s, err := Compute(p)
	if err != nil {
		return physicalID, nil, fmt.Errorf("topic scope: %w", err)
	}
	return physicalID, s.Data(), nil
}

// PhysicalID is stable for the life of the resource: Create derives it
// from the stack and logical ID, Update and Delete keep CloudFormation's.
func PhysicalID(ev cfn.Event) string { return customresource.PhysicalID(ev, "kmig-topic-scope") }

// Properties are the custom resource's properties.
type Properties struct {
	SourceClusterArn, TargetClusterArn string
	Include, Exclude                   []string
	Transforms                         string
	DeadLetterTopic                    string
	CutoverDetailsTopic                string
	ConsumerGroupIDPrefix              string
}

func parseProperties(raw map[string]any) (Properties, error) {
	var p Properties
	var errs []error
	str := func(name string, dst *string) {
		switch v := raw[name].(type) {
		case nil:
		case string:
			*dst = v
		default:
			errs = append(errs, &Error{Property: name, Problem: fmt.Sprintf("want a string, got %T", v)})
		}
	}
	list := func(name string, dst *[]string) {
		switch v := raw[name].(type) {
		case nil:
		case string:
			*dst = splitList(v)
		case []any:
			var out []string
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					errs = append(errs, &Error{Property: name, Problem: fmt.Sprintf("want a list of strings, got an element of type %T", e)})
					return
				}
				out = append(out, s)
			}
			// CloudFormation passes an empty CommaDelimitedList as [""].
			if len(out) == 1 && strings.TrimSpace(out[0]) == "" {
				out = nil
			}
			*dst = out
		default:
			errs = append(errs, &Error{Property: name, Problem: fmt.Sprintf("want a list or a comma-separated string, got %T", v)})
		}
	}
	known := map[string]bool{PropServiceToken: true, PropServiceTimeout: true}
	for name, dst := range map[string]*string{
		PropSourceClusterArn: &p.SourceClusterArn, PropTargetClusterArn: &p.TargetClusterArn,
		PropTransforms: &p.Transforms, PropDeadLetterTopic: &p.DeadLetterTopic,
		PropCutoverDetailsTopic: &p.CutoverDetailsTopic, PropConsumerGroupIDPrefix: &p.ConsumerGroupIDPrefix,
	} {
		known[name] = true
		str(name, dst)
	}
	known[PropTopicPatterns], known[PropExcludedTopicPatterns] = true, true
	list(PropTopicPatterns, &p.Include)
	list(PropExcludedTopicPatterns, &p.Exclude)
	var unknown []string
	for k := range raw {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs = append(errs, &Error{Property: k, Problem: "unknown property"})
	}
	return p, errors.Join(errs...)
}

// splitList splits a comma-joined list; "" is the empty list.
func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// clusterARN matches arn:PARTITION:kafka:REGION:ACCOUNT:cluster/NAME/UUID.
var clusterARN = regexp.MustCompile(`^(arn:aws[a-z-]*:kafka:[a-z0-9-]+:\d{12}):cluster/([^/]+/[^/]+)$`)

// resourceBase returns "arn:…:kafka:REGION:ACCOUNT:" + kind + "/NAME/UUID/".
func resourceBase(prop, arn, kind string) (string, error) {
	m := clusterARN.FindStringSubmatch(arn)
	if m == nil {
		return "", &Error{Property: prop, Problem: fmt.Sprintf("%q is not an MSK cluster ARN (arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/UUID)", arn)}
	}
	return m[1] + ":" + kind + "/" + m[2] + "/", nil
}

// Compute returns the scope for p.
func Compute(p Properties) (Scope, error) {
	if p.TargetClusterArn == "" {
		return Scope{}, &Error{Property: PropTargetClusterArn, Problem: "required"}
	}
	sel, err := selection.Parse(p.Include, p.Exclude, []string{p.DeadLetterTopic, p.CutoverDetailsTopic})
	if err != nil {
		var pe *selection.PatternError
		if errors.As(err, &pe) {
			return Scope{}, pe
		}
		return Scope{}, err
	}
	renames, err := transform.ParseTopicMap([]byte(p.Transforms))
	if err != nil {
		return Scope{}, &Error{Property: PropTransforms, Problem: "invalid transforms", Err: err}
	}
	names := Names(p.Include)
	var renamed []string
	for src, dst := range renames {
		if renames.Renamed(src) && sel.Match(src) {
			renamed = append(renamed, dst)
		}
	}
	// Target names: the selection's (topics that keep their name) and
	// each selected renamed topic's target name, exactly.
	targetNames := covering(append(append([]Name(nil), names...), exact(renamed)...))

	base := func(prop, arn, kind string) string {
		b, e := resourceBase(prop, arn, kind)
		if e != nil && err == nil {
			err = e
		}
		return b
	}
	tTopic := base(PropTargetClusterArn, p.TargetClusterArn, "topic")
	tTxn := base(PropTargetClusterArn, p.TargetClusterArn, "transactional-id")
	var sTopic, sGroup string
	if p.SourceClusterArn != "" {
		sTopic = base(PropSourceClusterArn, p.SourceClusterArn, "topic")
		sGroup = base(PropSourceClusterArn, p.SourceClusterArn, "group")
	}
	if err != nil {
		return Scope{}, err
	}

	prefixed := func(n []Name, pre, suffixExact string) []Name {
		out := make([]Name, len(n))
		for i, x := range n {
			out[i] = Name{Text: pre + x.Text, Exact: x.Exact}
			if x.Exact && suffixExact != "" {
				out[i] = Name{Text: pre + x.Text + suffixExact}
			}
		}
		return covering(out)
	}
	cg := p.ConsumerGroupIDPrefix
	build := func(topicNames, targetTopicNames []Name, narrowGroups bool, scope string) Scope {
		s := Scope{Scope: scope}
		groups := []Name{{Text: cg}}
		txns := []Name{{Text: cg}}
		if narrowGroups {
			groups = prefixed(topicNames, cg, "")
			// A transactional ID is group + "-" + partition.
			txns = prefixed(topicNames, cg, "-")
		}
		s.TargetTopics = arns(tTopic, targetTopicNames)
		s.TargetTransactionIDs = arns(tTxn, txns)
		if sTopic != "" {
			s.SourceTopics = arns(sTopic, topicNames)
			s.SourceGroups = arns(sGroup, groups)
		}
		return s
	}
	s := build(covering(names), targetNames, true, ScopePrefixes)
	if s.size() <= ListBudget {
		return s, nil
	}
	if s = build(covering(names), targetNames, false, ScopeTopics); s.size() <= ListBudget {
		return s, nil
	}
	all := []Name{{Text: ""}}
	return build(all, all, false, ScopeClusters), nil
}

// size is the characters the lists take as JSON arrays in a policy.
func (s Scope) size() int {
	n := 0
	for _, l := range [][]string{s.SourceTopics, s.SourceGroups, s.TargetTopics, s.TargetTransactionIDs} {
		for _, a := range l {
			n += len(a) + 3 // quotes and a comma (or a bracket)
		}
	}
	return n
}

// Name is one granted name: an exact name, or a prefix (granted as
// prefix + "*"; "" is every name).
type Name struct {
	Text  string
	Exact bool
}

// Names returns what the include patterns can match: for each pattern
// (and each top-level alternative of it) its literal prefix, exact when the
// pattern is a plain name. A prefix is cut at the first character Kafka
// does not allow in a topic name (no legal topic can contain it). Patterns
// that do not parse give "" (every name); Compute refuses them before.
func Names(include []string) []Name {
	var out []Name
	for _, p := range include {
		out = append(out, names(strings.TrimSpace(p))...)
	}
	return covering(out)
}

func names(p string) []Name {
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return []Name{{}}
	}
	re = re.Simplify()
	alts := []*syntax.Regexp{re}
	if re.Op == syntax.OpAlternate {
		alts = re.Sub
	}
	var out []Name
	for _, a := range alts {
		c, err := regexp.Compile(`^(?:` + a.String() + `)$`)
		if err != nil {
			return []Name{{}}
		}
		pre, complete := c.LiteralPrefix()
		if i := strings.IndexFunc(pre, func(r rune) bool { return !legalTopicRune(r) }); i >= 0 {
			pre, complete = pre[:i], false
		}
		out = append(out, Name{Text: pre, Exact: complete && pre != ""})
	}
	return out
}

func legalTopicRune(r rune) bool {
	return r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

func exact(names []string) []Name {
	out := make([]Name, 0, len(names))
	for _, n := range names {
		out = append(out, Name{Text: n, Exact: true})
	}
	return out
}

// covering sorts names, removes repeats and drops every name another
// (prefix) one already covers.
func covering(in []Name) []Name {
	ns := append([]Name(nil), in...)
	sort.Slice(ns, func(i, j int) bool {
		if ns[i].Text != ns[j].Text {
			return ns[i].Text < ns[j].Text
		}
		return !ns[i].Exact && ns[j].Exact // a prefix before the same exact name
	})
	var out []Name
	for _, n := range ns {
		covered := false
		for _, o := range out {
			if !o.Exact && strings.HasPrefix(n.Text, o.Text) || o.Exact && n.Exact && o.Text == n.Text {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, n)
		}
	}
	return out
}

func arns(base string, names []Name) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n.Exact {
			out = append(out, base+n.Text)
		} else {
			out = append(out, base+n.Text+"*")
		}
	}
	return out
}
