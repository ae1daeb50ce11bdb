package cutover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/clock"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamfence"
)

// slowLambda delays every update and counts how many are in flight at
// once; throttle answers TooManyRequestsException to the first updates.
type slowLambda struct {
	*fakeLambda
	delay             time.Duration
	inflight, most    atomic.Int64
	throttleFirst     atomic.Int64
	throttled, served atomic.Int64
}

func (s *slowLambda) UpdateEventSourceMapping(ctx context.Context, in *lambda.UpdateEventSourceMappingInput, o ...func(*lambda.Options)) (*lambda.UpdateEventSourceMappingOutput, error) {
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for m := s.most.Load(); n > m && !s.most.CompareAndSwap(m, n); m = s.most.Load() {
	}
	if err := s.clk.Sleep(ctx, s.delay); err != nil { // ends with ctx, as the SDK does
		return nil, err
	}
	if s.throttleFirst.Add(-1) >= 0 {
		s.throttled.Add(1)
		return nil, &types.TooManyRequestsException{Message: aws.String("Rate exceeded")}
	}
	s.served.Add(1)
	return s.fakeLambda.UpdateEventSourceMapping(ctx, in, o...)
}

// TestPauseUpdatesConcurrently: one poll of PauseReplication sends its
// updates of 250 mappings (listed over three pages of 100) concurrently,
// never more than mappingParallelism at once, after recording every UUID
// in the poll before; updates answered TooManyRequestsException are sent
// again on a later poll, and every mapping ends Disabled.
func TestPauseUpdatesConcurrently(t *testing.T) {
	// In a synctest bubble the system clock is fake and moves only when
	// every goroutine waits, so ten updates of 20 ms in flight together
	// take 20 ms, exactly, and the poll's duration says how many ran at
	// once.
	synctest.Test(t, testPauseUpdatesConcurrently)
}

func testPauseUpdatesConcurrently(t *testing.T) {
	f := newFakeLambdaOn(clock.System)
	f.pageSize = 100
	var uuids []string
	for i := range 250 {
		u := fmt.Sprintf("m%03d", i)
		uuids = append(uuids, u)
		f.add(u, "Enabled", 10*time.Second)
	}
	s := &slowLambda{fakeLambda: f, delay: 20 * time.Millisecond}
	s.throttleFirst.Store(30)
	h := New(Deps{Lambda: s, ReplicatorFunction: "replicator", Clock: f.clk})
	st := stateFor(uuids, 150)

	out, err := h.Handle(context.Background(), Request{Step: StepPauseReplication, State: roundTrip(t, st)})
	if err != nil {
		t.Fatal(err)
	}
	first := out.(*State)
	if s.served.Load()+s.throttled.Load() != 0 || len(first.Run.Disabled) != 250 {
		t.Fatalf("first poll: %d updates sent, %d recorded; want none sent, all 250 recorded (over 3 pages: %d lists)",
			s.served.Load()+s.throttled.Load(), len(first.Run.Disabled), f.lists)
	}
	began := f.clk.Now()
	out, err = h.Handle(context.Background(), Request{Step: StepPauseReplication, State: roundTrip(t, first)})
	if err != nil {
		t.Fatal(err)
	}
	took := f.clk.Now().Sub(began)
	if m := s.most.Load(); m != mappingParallelism {
		t.Errorf("at most %d updates in flight; want exactly %d", m, mappingParallelism)
	}
	if want := (250 + mappingParallelism - 1) / mappingParallelism * s.delay; took != want {
		t.Errorf("second poll took %v; 250 updates of %v, %d at a time, take %v (one after the other %v)", took, s.delay, mappingParallelism, want, 250*s.delay)
	}
	if s.throttled.Load() != 30 || s.served.Load() != 220 {
		t.Errorf("%d throttled, %d served; want 30 and 220", s.throttled.Load(), s.served.Load())
	}
	st, err, _ = drive(t, h, f, StepPauseReplication, out.(*State), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range uuids {
		if got := f.state(u); got != "Disabled" {
			t.Fatalf("mapping %s reads %s after the pause, want Disabled", u, got)
		}
	}
	if len(st.Run.Disabled) != 250 || s.served.Load() != 250 {
		t.Errorf("%d recorded, %d updates served; want 250 each", len(st.Run.Disabled), s.served.Load())
	}
}

// TestResolveTopics: the input's names and patterns choose among the
// topics the replicator's mappings read (listed over pages of 100); left
// out, every mapped topic; a name no mapping reads, a pattern selecting
// none, and nothing at all are refused with the field named.
func TestResolveTopics(t *testing.T) {
	f := newFakeLambda(t0)
	f.pageSize = 100
	f.topics = map[string][]string{}
	var all []string
	for i := range 230 {
		u := fmt.Sprintf("m%03d", i)
		tp := fmt.Sprintf("orders.%03d", i)
		if i >= 200 {
			tp = fmt.Sprintf("payments.%03d", i)
		}
		f.add(u, "Enabled", 0)
		f.topics[u] = []string{tp}
		all = append(all, tp)
	}
	h := New(Deps{Lambda: f, ReplicatorFunction: "replicator", DetailsTopic: "payments.229"})
	maps, err := h.listMappings(context.Background())
	if err != nil || len(maps) != 230 || f.lists != 3 {
		t.Fatalf("listed %d mappings in %d calls (%v); want 230 in 3 pages", len(maps), f.lists, err)
	}
	for _, tc := range []struct {
		name     string
		patterns []string
		want     []string
		err      error
		field    string
	}{
		{"omitted", nil, all, nil, ""},
		{"pattern", []string{`orders\.1[0-9]{2}`}, all[100:200], nil, ""},
		{"name and pattern", []string{"payments.200", `orders\.00[0-2]`}, []string{"orders.000", "orders.001", "orders.002", "payments.200"}, nil, ""},
		{"never the details topic", []string{`payments\..*`}, all[200:229], nil, ""},
		{"unmapped name", []string{"orders.001", "orders.999"}, nil, &ReplicationNotFoundError{}, ""},
		{"pattern selecting nothing", []string{"orders.001", `refunds\..*`}, nil, &NothingSelectedError{}, "topics[1]"},
		{"bad pattern", []string{"orders.001", `(`}, nil, &InvalidInputError{}, "topics[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{TopicPatterns: tc.patterns}
			err := h.resolveTopics(&cfg, maps)
			if tc.err == nil {
				if err != nil || !slices.Equal(cfg.Topics, tc.want) {
					t.Fatalf("topics %v (%v); want %v", cfg.Topics, err, tc.want)
				}
				return
			}
			target := reflectNew(tc.err)
			if !errors.As(err, target) {
				t.Fatalf("err %v, want %T", err, tc.err)
			}
			if tc.field != "" && !strings.Contains(err.Error(), tc.field) {
				t.Errorf("err %v does not name %s", err, tc.field)
			}
		})
	}
	empty := New(Deps{Lambda: newFakeLambda(t0), ReplicatorFunction: "replicator"})
	var ns *NothingSelectedError
	if err := empty.resolveTopics(&Config{}, nil); !errors.As(err, &ns) || ns.Field != "topics" {
		t.Errorf("no mapping at all: %v, want *NothingSelectedError on topics", err)
	}
}

// reflectNew returns a pointer to a new variable of e's type, for
// errors.As.
func reflectNew(e error) any {
	switch e.(type) {
	case *ReplicationNotFoundError:
		return new(*ReplicationNotFoundError)
	case *NothingSelectedError:
		return new(*NothingSelectedError)
	case *InvalidInputError:
		return new(*InvalidInputError)
	}
	panic(fmt.Sprintf("%T", e))
}

const testClusterARN = "arn:aws:kafka:us-east-1:123456789012:cluster/source/0b9b8c5e-1111-2222-3333-444455556666-7"

// iamCovers applies IAM's resource matching for the fence's resources: a
// trailing '*' matches any run of characters, topic names have no other
// wildcard.
func iamCovers(resources []string, topic string) bool {
	prefix := strings.Replace(testClusterARN, ":cluster/", ":topic/", 1) + "/"
	for _, r := range resources {
		if p, ok := strings.CutSuffix(r, "*"); ok && strings.HasPrefix(prefix+topic, p) || r == prefix+topic {
			return true
		}
	}
	return false
}

func fenceResources(t *testing.T, doc string) []string {
	t.Helper()
	var d struct{ Statement []struct{ Resource []string } }
	if err := json.Unmarshal([]byte(doc), &d); err != nil || len(d.Statement) != 1 {
		t.Fatalf("policy %s: %v", doc, err)
	}
	return d.Statement[0].Resource
}

func kfakeSource(t *testing.T, topics []string) *kgo.Client {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestIAMFenceCompressesExactly: the deny policy for 400 of 500 topics
// does not fit IAM's 10,240 characters with one ARN per topic; compressed
// it denies every selected topic and no other topic of the source, and
// it fits. Fewer topics keep one exact ARN each.
func TestIAMFenceCompressesExactly(t *testing.T) {
	var existing, selected []string
	for i := range 500 {
		n := fmt.Sprintf("orders.%03d", i)
		existing = append(existing, n)
		if i < 400 && i != 137 {
			selected = append(selected, n)
		}
	}
	// Topics sharing prefixes with selected ones, never selected.
	existing = append(existing, "orders.0", "orders.13", "orders", "orders.2000", "payments")
	selected = append(selected, "orders.2000x")
	existing = append(existing, "orders.2000x")
	h := New(Deps{Source: kfakeSource(t, existing), SourceClusterArn: testClusterARN})

	if _, err := iamfence.TopicARNs(testClusterARN, selected); err != nil {
		t.Fatal(err)
	}
	doc, err := h.iamFenceDocument(context.Background(), selected)
	if err != nil {
		t.Fatal(err)
	}
	res := fenceResources(t, doc)
	t.Logf("%d topics → %d resources, %d characters", len(selected), len(res), len(doc))
	if len(doc) > iamfence.MaxDocumentChars {
		t.Fatalf("policy is %d characters", len(doc))
	}
	if !slices.ContainsFunc(res, func(r string) bool { return strings.HasSuffix(r, "*") }) {
		t.Fatalf("no prefix wildcard in %v", res)
	}
	isSel := map[string]bool{}
	for _, s := range selected {
		isSel[s] = true
	}
	for _, e := range append(existing, "__consumer_offsets") {
		if got := iamCovers(res, e); got != isSel[e] {
			t.Errorf("topic %s: denied %v, selected %v", e, got, isSel[e])
		}
	}

	few := selected[:50]
	doc, err = h.iamFenceDocument(context.Background(), few)
	if err != nil {
		t.Fatal(err)
	}
	if res := fenceResources(t, doc); len(res) != 50 || slices.ContainsFunc(res, func(r string) bool { return strings.Contains(r, "*") }) {
		t.Errorf("50 topics fit exactly, but the policy names %v", res)
	}
}

// TestIAMFenceTooLarge: when every selected topic shares its name's
// prefixes with a topic that is not selected, no wildcard is exact, and
// the policy that does not fit is refused with its size and the advice to
// cut over in subsets.
func TestIAMFenceTooLarge(t *testing.T) {
	var existing, selected []string
	for i := range 300 {
		existing = append(existing, fmt.Sprintf("t%03d-a", i), fmt.Sprintf("t%03d-b", i))
		selected = append(selected, fmt.Sprintf("t%03d-a", i))
	}
	existing = append(existing, "t000-ab")
	h := New(Deps{Source: kfakeSource(t, existing), SourceClusterArn: testClusterARN})
	_, err := h.iamFenceDocument(context.Background(), selected)
	var tl *FencePolicyTooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("err %v, want *FencePolicyTooLargeError", err)
	}
	if tl.Topics != 300 || tl.Resources != 300 || tl.Chars <= iamfence.MaxDocumentChars || tl.Limit != iamfence.MaxDocumentChars ||
		!strings.Contains(err.Error(), "subsets") || !strings.Contains(err.Error(), fmt.Sprint(tl.Chars)) {
		t.Errorf("error %+v: %v", tl, err)
	}
}

// TestCompressTopics checks the compression on small cases by hand.
func TestCompressTopics(t *testing.T) {
	for _, tc := range []struct {
		selected, existing, names, prefixes []string
	}{
		{[]string{"a.1", "a.2"}, []string{"a.1", "a.2", "b"}, nil, []string{"a."}},
		{[]string{"a.1", "a.2"}, []string{"a.1", "a.2", "a.3"}, []string{"a.1", "a.2"}, nil},
		{[]string{"a", "ab"}, []string{"a", "ab", "b"}, nil, []string{"a"}},
		{[]string{"a"}, []string{"a", "ab"}, []string{"a"}, nil},
		{[]string{"x.10", "x.11", "x.2"}, []string{"x.10", "x.11", "x.2", "x.3"}, []string{"x.2"}, []string{"x.1"}},
	} {
		names, prefixes := compressTopics(tc.selected, tc.existing)
		if !slices.Equal(names, tc.names) || !slices.Equal(prefixes, tc.prefixes) {
			t.Errorf("compress(%v of %v) = %v %v; want %v %v", tc.selected, tc.existing, names, prefixes, tc.names, tc.prefixes)
		}
	}
}

// TestMappingGroupPrefix infers the reconciler's CONSUMER_GROUP_ID_PREFIX
// from the mappings only where every mapping's group is that prefix and
// its one topic.
func TestMappingGroupPrefix(t *testing.T) {
	m := func(group string, topics ...string) Mapping { return Mapping{ConsumerGroup: group, Topics: topics} }
	for _, tc := range []struct {
		maps []Mapping
		want string
	}{
		{[]Mapping{m("kmig-a", "a"), m("kmig-orders.1", "orders.1")}, "kmig-"},
		{[]Mapping{m("kmig-a", "a"), m("other-b", "b")}, ""},
		{[]Mapping{m("a", "a")}, ""},
		{[]Mapping{m("kmig-a", "a"), m("0b9b8c5e-uuid", "b")}, ""},
		{[]Mapping{m("kmig-a", "a", "b")}, ""},
		{nil, ""},
	} {
		if got := mappingGroupPrefix(tc.maps); got != tc.want {
			t.Errorf("mappingGroupPrefix(%v) = %q, want %q", tc.maps, got, tc.want)
		}
	}
}

// TestPauseStopsSendingBeforeItsDeadline: a poll whose updates would run
// past the step's deadline sends none within the last part of its budget
// and ends in time; the next polls send the rest, and the pause completes
// without a StepDeadlineError.
func TestPauseStopsSendingBeforeItsDeadline(t *testing.T) {
	// On the bubble's fake clock the step's 1.5 s deadline and the
	// updates' 200 ms are exact, whatever the machine's load.
	synctest.Test(t, testPauseStopsSendingBeforeItsDeadline)
}

func testPauseStopsSendingBeforeItsDeadline(t *testing.T) {
	f := newFakeLambdaOn(clock.System)
	var uuids []string
	for i := range 100 {
		u := fmt.Sprintf("m%03d", i)
		uuids = append(uuids, u)
		f.add(u, "Enabled", time.Second)
	}
	s := &slowLambda{fakeLambda: f, delay: 200 * time.Millisecond}
	timeouts := maps.Clone(TaskTimeouts)
	timeouts[StepPauseReplication] = 2 * time.Second
	h := New(Deps{Lambda: s, ReplicatorFunction: "replicator", Clock: f.clk, TaskTimeouts: timeouts, DeadlineMargin: 500 * time.Millisecond})
	st, err, polls := drive(t, h, f, StepPauseReplication, stateFor(uuids, 150), 100)
	if err != nil {
		t.Fatalf("pause: %v after %d polls", err, polls)
	}
	if s.served.Load() != 100 || polls < 4 {
		t.Errorf("%d updates served over %d polls; want 100, over at least two polls that send (10 at a time, 200 ms each, in 1.5 s budgets)", s.served.Load(), polls)
	}
	for _, u := range uuids {
		if got := f.state(u); got != "Disabled" {
			t.Fatalf("mapping %s reads %s, want Disabled", u, got)
		}
	}
	if len(st.Run.Disabled) != 100 {
		t.Errorf("%d recorded, want 100", len(st.Run.Disabled))
	}
}
