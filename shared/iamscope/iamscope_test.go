package iamscope

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/selection"
)

const (
	srcCluster = "arn:aws:kafka:eu-west-1:123456789012:cluster/source/abcd1234-ab12-cd34-ef56-abcdef123456-1"
	tgtCluster = "arn:aws:kafka:eu-west-1:123456789012:cluster/target/0123abcd-ab12-cd34-ef56-abcdef123456-2"
	srcTopic   = "arn:aws:kafka:eu-west-1:123456789012:topic/source/abcd1234-ab12-cd34-ef56-abcdef123456-1/"
	srcGroup   = "arn:aws:kafka:eu-west-1:123456789012:group/source/abcd1234-ab12-cd34-ef56-abcdef123456-1/"
	tgtTopic   = "arn:aws:kafka:eu-west-1:123456789012:topic/target/0123abcd-ab12-cd34-ef56-abcdef123456-2/"
	tgtTxn     = "arn:aws:kafka:eu-west-1:123456789012:transactional-id/target/0123abcd-ab12-cd34-ef56-abcdef123456-2/"
)

func event(rt cfn.RequestType, props map[string]any) cfn.Event {
	p := map[string]any{
		PropServiceToken:          "arn:aws:lambda:eu-west-1:123456789012:function:kmig-ProvisionerFunction",
		PropSourceClusterArn:      srcCluster,
		PropTargetClusterArn:      tgtCluster,
		PropTopicPatterns:         []any{`orders\..*`, "payments"},
		PropExcludedTopicPatterns: []any{""},
		PropTransforms:            "[]",
		PropDeadLetterTopic:       "kmig.dead-letter",
		PropCutoverDetailsTopic:   "kmig.cutover-details",
		PropConsumerGroupIDPrefix: "kmig-",
	}
	for k, v := range props {
		if v == nil {
			delete(p, k)
			continue
		}
		p[k] = v
	}
	return cfn.Event{
		RequestType:        rt,
		StackID:            "arn:aws:cloudformation:eu-west-1:123456789012:stack/kmig/5d1e0b70-0000-0000-0000-000000000000",
		LogicalResourceID:  "TopicScope",
		ResourceType:       ResourceType,
		ResourceProperties: p,
	}
}

func handle(t *testing.T, props map[string]any) map[string]any {
	t.Helper()
	_, data, err := Handle(context.Background(), event(cfn.RequestCreate, props))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return data
}

func list(data map[string]any, attr string) []string {
	s, _ := data[attr].(string)
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// The example of the package doc: a regex with a literal prefix gives a
// prefix wildcard, a plain name gives exactly that topic, and nothing
// broader is granted on either cluster.
func TestPrefixAndExactName(t *testing.T) {
	data := handle(t, nil)
	for attr, want := range map[string][]string{
		AttrSourceTopicArns:           {srcTopic + "orders.*", srcTopic + "payments"},
		AttrTargetTopicArns:           {tgtTopic + "orders.*", tgtTopic + "payments"},
		AttrSourceGroupArns:           {srcGroup + "kmig-orders.*", srcGroup + "kmig-payments"},
		AttrTargetTransactionalIDArns: {tgtTxn + "kmig-orders.*", tgtTxn + "kmig-payments-*"},
	} {
		if got := list(data, attr); !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
	if data[AttrScope] != ScopePrefixes {
		t.Errorf("Scope %v, want %s", data[AttrScope], ScopePrefixes)
	}
}

// A prefix covered by a shorter one is dropped, as are repeats and exact
// names a prefix covers.
func TestPrefixDedup(t *testing.T) {
	data := handle(t, map[string]any{PropTopicPatterns: []any{"orders.eu.*", "orders", `orders\..*`, "ord.*", "ord.*", "payments", "payments"}})
	want := []string{srcTopic + "ord*", srcTopic + "payments"}
	if got := list(data, AttrSourceTopicArns); !slices.Equal(got, want) {
		t.Errorf("source topics %q, want %q", got, want)
	}
}

// Top-level alternatives each give their own prefix; a pattern without a
// literal prefix falls back to the cluster.
func TestAlternativesAndNoPrefix(t *testing.T) {
	data := handle(t, map[string]any{PropTopicPatterns: "billing|payments.*"})
	if got, want := list(data, AttrTargetTopicArns), []string{tgtTopic + "billing", tgtTopic + "payments*"}; !slices.Equal(got, want) {
		t.Errorf("alternatives: %q, want %q", got, want)
	}
	for _, p := range []string{".*", "[a-z]+", "(?i)orders", "orders,.*"} {
		data := handle(t, map[string]any{PropTopicPatterns: p})
		if got, want := list(data, AttrTargetTopicArns), []string{tgtTopic + "*"}; !slices.Equal(got, want) {
			t.Errorf("%q: %q, want the cluster wildcard %q", p, got, want)
		}
		if got, want := list(data, AttrSourceGroupArns), []string{srcGroup + "kmig-*"}; !slices.Equal(got, want) {
			t.Errorf("%q: groups %q, want %q", p, got, want)
		}
	}
}

// A literal prefix is cut at a character no topic name can contain, so an
// IAM wildcard character in a pattern is never passed on.
func TestPrefixStopsAtIllegalCharacter(t *testing.T) {
	data := handle(t, map[string]any{PropTopicPatterns: []any{`a\*b.*`, `x\?y`}})
	if got, want := list(data, AttrTargetTopicArns), []string{tgtTopic + "a*", tgtTopic + "x*"}; !slices.Equal(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
}

// Renamed topics: each selected topic's target name is granted exactly on
// the target; renames of topics the selection does not select grant
// nothing; the source keeps the source names.
func TestRenames(t *testing.T) {
	data := handle(t, map[string]any{
		PropTopicPatterns: []any{`orders\..*`, "payments"},
		PropTransforms:    `[{"type":"rename","topics":{"payments":"billing.payments","orders.eu":"orders-eu","audit":"audit.v2"}}]`,
	})
	if got, want := list(data, AttrTargetTopicArns), []string{tgtTopic + "billing.payments", tgtTopic + "orders-eu", tgtTopic + "orders.*", tgtTopic + "payments"}; !slices.Equal(got, want) {
		t.Errorf("target topics %q, want %q", got, want)
	}
	if got, want := list(data, AttrSourceTopicArns), []string{srcTopic + "orders.*", srcTopic + "payments"}; !slices.Equal(got, want) {
		t.Errorf("source topics %q, want %q", got, want)
	}
}

// A rename whose target a prefix already covers adds nothing.
func TestRenameCoveredByPrefix(t *testing.T) {
	data := handle(t, map[string]any{
		PropTopicPatterns: []any{`orders.*`},
		PropTransforms:    `[{"type":"rename","topics":{"orders.eu":"orders-eu"}}]`,
	})
	if got, want := list(data, AttrTargetTopicArns), []string{tgtTopic + "orders*"}; !slices.Equal(got, want) {
		t.Errorf("target topics %q, want %q", got, want)
	}
}

// Lists too long for a role's policies fall back: first groups and
// transactional IDs to the consumer group prefix, then topics to the
// clusters. Whatever the input, the lists stay within ListBudget.
func TestSizeBudgetFallback(t *testing.T) {
	var names []any
	for i := range 500 {
		names = append(names, fmt.Sprintf("t%03d", i))
	}
	data := handle(t, map[string]any{PropTopicPatterns: names})
	if data[AttrScope] != ScopeClusters {
		t.Errorf("500 names: Scope %v, want %s", data[AttrScope], ScopeClusters)
	}
	if got, want := list(data, AttrSourceTopicArns), []string{srcTopic + "*"}; !slices.Equal(got, want) {
		t.Errorf("500 names: source topics %q, want %q", got, want)
	}
	if got, want := list(data, AttrTargetTransactionalIDArns), []string{tgtTxn + "kmig-*"}; !slices.Equal(got, want) {
		t.Errorf("500 names: transactional IDs %q, want %q", got, want)
	}

	// Few enough for topics, too many for topics, groups and IDs.
	names = nil
	for i := range 12 {
		names = append(names, fmt.Sprintf("team%02d.orders.events.v1", i))
	}
	data = handle(t, map[string]any{PropTopicPatterns: names})
	if data[AttrScope] != ScopeTopics {
		t.Fatalf("12 names: Scope %v, want %s", data[AttrScope], ScopeTopics)
	}
	if got := list(data, AttrTargetTopicArns); len(got) != 12 {
		t.Errorf("12 names: %d target topic ARNs, want 12", len(got))
	}
	if got, want := list(data, AttrSourceGroupArns), []string{srcGroup + "kmig-*"}; !slices.Equal(got, want) {
		t.Errorf("12 names: groups %q, want %q", got, want)
	}

	seen := map[string]bool{}
	for n := 1; n <= 60; n++ {
		var ps []string
		for i := range n {
			ps = append(ps, fmt.Sprintf(`some\.rather-long\.topic\.prefix\.%02d\..*`, i))
		}
		s, err := Compute(Properties{SourceClusterArn: srcCluster, TargetClusterArn: tgtCluster, Include: ps, ConsumerGroupIDPrefix: "kmig-"})
		if err != nil {
			t.Fatal(err)
		}
		if s.size() > ListBudget {
			t.Fatalf("%d patterns: lists take %d characters, over ListBudget %d", n, s.size(), ListBudget)
		}
		seen[s.Scope] = true
	}
	if !seen[ScopePrefixes] || !seen[ScopeTopics] || !seen[ScopeClusters] {
		t.Errorf("1 to 60 patterns reached scopes %v, want all three", seen)
	}
}

// Without a source cluster ARN (self-managed source) the source lists are
// empty; the target ones are not.
func TestSelfManagedSource(t *testing.T) {
	data := handle(t, map[string]any{PropSourceClusterArn: ""})
	if data[AttrSourceTopicArns] != "" || data[AttrSourceGroupArns] != "" {
		t.Errorf("source lists %q, %q without a source cluster", data[AttrSourceTopicArns], data[AttrSourceGroupArns])
	}
	if len(list(data, AttrTargetTopicArns)) != 2 {
		t.Errorf("target topics %q", data[AttrTargetTopicArns])
	}
	for _, a := range []string{AttrSourceTopicArns, AttrSourceGroupArns, AttrTargetTopicArns, AttrTargetTransactionalIDArns, AttrScope} {
		if _, ok := data[a]; !ok {
			t.Errorf("attribute %s missing (GetAtt would fail)", a)
		}
	}
}

// Excluded patterns narrow nothing (they cannot shorten a prefix) but
// must parse, and the reserved topics are not granted by name.
func TestExcludes(t *testing.T) {
	data := handle(t, map[string]any{PropExcludedTopicPatterns: []any{`orders\.test.*`}})
	if got, want := list(data, AttrSourceTopicArns), []string{srcTopic + "orders.*", srcTopic + "payments"}; !slices.Equal(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
}

// A bad pattern fails the resource with the selection's *PatternError.
func TestBadPattern(t *testing.T) {
	for _, tc := range []struct {
		props map[string]any
		want  string
	}{
		{map[string]any{PropTopicPatterns: []any{"orders(", "payments"}}, `include[0] "orders(": not a regular expression`},
		{map[string]any{PropExcludedTopicPatterns: "x,[z"}, `exclude[1] "[z"`},
		{map[string]any{PropTopicPatterns: []any{""}}, `no pattern`},
		{map[string]any{PropTopicPatterns: "orders,,payments"}, `include[1] "": empty`},
	} {
		_, _, err := Handle(context.Background(), event(cfn.RequestCreate, tc.props))
		var pe *selection.PatternError
		if !errors.As(err, &pe) {
			t.Errorf("%v: error %v, want a *selection.PatternError", tc.props, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), pe.Error()) {
			t.Errorf("%v: %q lacks %q", tc.props, err, tc.want)
		}
	}
}

func TestBadProperties(t *testing.T) {
	for _, tc := range []struct {
		props map[string]any
		want  string
	}{
		{map[string]any{PropTargetClusterArn: nil}, "TargetClusterArn: required"},
		{map[string]any{PropTargetClusterArn: "arn:aws:kafka:eu-west-1:123456789012:topic/x/y/z"}, "is not an MSK cluster ARN"},
		{map[string]any{PropSourceClusterArn: "cluster"}, "SourceClusterArn"},
		{map[string]any{PropTransforms: `[{"type":"rename","topics":{"a":"b c"}}]`}, "Transforms: invalid transforms"},
		{map[string]any{"Topics": []any{"x"}}, "Topics: unknown property"},
		{map[string]any{PropTopicPatterns: 3}, "TopicPatterns: want a list"},
	} {
		_, _, err := Handle(context.Background(), event(cfn.RequestUpdate, tc.props))
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want an *Error with %q", tc.props, err, tc.want)
		}
	}
}

// Delete succeeds whatever the properties, and keeps the physical ID.
func TestDeleteAndPhysicalID(t *testing.T) {
	ev := event(cfn.RequestDelete, map[string]any{PropTopicPatterns: []any{"("}})
	ev.PhysicalResourceID = "kmig-topic-scope/kmig/TopicScope"
	id, data, err := Handle(context.Background(), ev)
	if err != nil || data != nil || id != ev.PhysicalResourceID {
		t.Errorf("Delete: %q, %v, %v", id, data, err)
	}
	id, _, _ = Handle(context.Background(), event(cfn.RequestCreate, nil))
	if id != "kmig-topic-scope/kmig/TopicScope" {
		t.Errorf("Create physical ID %q", id)
	}
}

// Every name the selection selects is covered by some granted ARN, on
// both clusters, with its group and transactional IDs.
func TestGrantsCoverSelection(t *testing.T) {
	include := []string{`orders\..*`, "payments", "billing|audit-.*", "ev[0-9]+", "x.y"}
	topics := []string{"orders.eu", "orders.", "payments", "billing", "audit-1", "ev12", "x.y", "xzy", "paymentsX", "other"}
	sel, err := selection.Parse(include, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compute(Properties{SourceClusterArn: srcCluster, TargetClusterArn: tgtCluster, Include: include, ConsumerGroupIDPrefix: "kmig-"})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		if !sel.Match(topic) {
			if covered(s.SourceTopics, srcTopic+topic) {
				t.Errorf("%s is not selected but granted", topic)
			}
			continue
		}
		for list, arn := range map[string]string{
			"source topics": srcTopic + topic, "target topics": tgtTopic + topic,
			"source groups": srcGroup + "kmig-" + topic, "transactional IDs": tgtTxn + "kmig-" + topic + "-0",
		} {
			l := map[string][]string{"source topics": s.SourceTopics, "target topics": s.TargetTopics, "source groups": s.SourceGroups, "transactional IDs": s.TargetTransactionIDs}[list]
			if !covered(l, arn) {
				t.Errorf("%s: %s not covered by %q", topic, arn, l)
			}
		}
	}
}

// covered is IAM's ARN matching for patterns whose only wildcard is a
// trailing "*".
func covered(patterns []string, arn string) bool {
	for _, p := range patterns {
		if p == arn || strings.HasSuffix(p, "*") && strings.HasPrefix(arn, strings.TrimSuffix(p, "*")) {
			return true
		}
	}
	return false
}

// CloudFormation refuses a custom resource response body over 4,096
// bytes. Whatever the selection, the answer (lists within ListBudget, a
// 128-character stack name in the IDs) stays under it.
func TestResponseFitsCloudFormationLimit(t *testing.T) {
	stack := strings.Repeat("s", 128)
	largest := 0
	for n := 1; n <= 80; n++ {
		var ps []any
		for i := range n {
			ps = append(ps, fmt.Sprintf("some-rather-long-topic-name-%03d", i))
		}
		ev := event(cfn.RequestCreate, map[string]any{PropTopicPatterns: ps})
		ev.StackID = "arn:aws-us-gov:cloudformation:us-gov-west-1:123456789012:stack/" + stack + "/5d1e0b70-0000-0000-0000-000000000000"
		ev.RequestID = "5d1e0b70-0000-0000-0000-000000000000"
		id, data, err := Handle(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		r := cfn.NewResponse(&ev)
		r.Status, r.PhysicalResourceID, r.Data = cfn.StatusSuccess, id, data
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 4096 {
			t.Fatalf("%d names (Scope %v): response body %d bytes, over CloudFormation's 4,096", n, data[AttrScope], len(b))
		}
		largest = max(largest, len(b))
	}
	t.Logf("largest response body: %d bytes", largest)
}
