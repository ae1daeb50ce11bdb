package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/blackhole"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamscope"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/topicsync/topicsynctest"
)

// responses stands in for CloudFormation's pre-signed response URL.
type responses struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []cfn.Response
	// invocation is the context of the invocation under way (rig.invoke);
	// late counts responses that arrived after it had ended.
	invocation context.Context
	late       int
}

func newResponses(t *testing.T) *responses {
	r := &responses{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var resp cfn.Response
		if err := json.Unmarshal(body, &resp); err != nil || req.Method != http.MethodPut || len(body) > 4096 {
			t.Errorf("bad response %s %d bytes: %v", req.Method, len(body), err)
		}
		r.mu.Lock()
		if r.invocation != nil && r.invocation.Err() != nil {
			r.late++
		}
		r.got = append(r.got, resp)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *responses) last(t *testing.T) cfn.Response {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		t.Fatal("no response was sent to the ResponseURL")
	}
	return r.got[len(r.got)-1]
}

// fakeLambda keeps mappings in memory: enough of the Lambda API for the
// custom resource's flows (the reconciler's own behaviour is tested on
// the emulated endpoint in local/reconcilerun).
type fakeLambda struct {
	mu   sync.Mutex
	maps []types.EventSourceMappingConfiguration
	tags map[string]map[string]string
	n    int
}

func (f *fakeLambda) add(topic string, tags map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	uuid := fmt.Sprintf("uuid-%d", f.n)
	arn := "arn:aws:lambda:eu-west-1:123456789012:event-source-mapping:" + uuid
	f.maps = append(f.maps, types.EventSourceMappingConfiguration{UUID: aws.String(uuid), EventSourceMappingArn: aws.String(arn),
		Topics: []string{topic}, State: aws.String(reconcile.StateEnabled), LastModified: aws.Time(time.Now())})
	if f.tags == nil {
		f.tags = map[string]map[string]string{}
	}
	f.tags[arn] = tags
}

func (f *fakeLambda) topics() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.maps {
		out = append(out, m.Topics[0])
	}
	return out
}

func (f *fakeLambda) ListEventSourceMappings(_ context.Context, in *lambda.ListEventSourceMappingsInput, _ ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &lambda.ListEventSourceMappingsOutput{EventSourceMappings: slices.Clone(f.maps)}, nil
}

func (f *fakeLambda) GetEventSourceMapping(context.Context, *lambda.GetEventSourceMappingInput, ...func(*lambda.Options)) (*lambda.GetEventSourceMappingOutput, error) {
	return nil, errors.New("not used")
}

func (f *fakeLambda) UpdateEventSourceMapping(context.Context, *lambda.UpdateEventSourceMappingInput, ...func(*lambda.Options)) (*lambda.UpdateEventSourceMappingOutput, error) {
	return nil, errors.New("not used")
}

func (f *fakeLambda) CreateEventSourceMapping(_ context.Context, in *lambda.CreateEventSourceMappingInput, _ ...func(*lambda.Options)) (*lambda.CreateEventSourceMappingOutput, error) {
	f.add(in.Topics[0], in.Tags)
	return &lambda.CreateEventSourceMappingOutput{UUID: aws.String("created")}, nil
}

func (f *fakeLambda) DeleteEventSourceMapping(_ context.Context, in *lambda.DeleteEventSourceMappingInput, _ ...func(*lambda.Options)) (*lambda.DeleteEventSourceMappingOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maps = slices.DeleteFunc(f.maps, func(m types.EventSourceMappingConfiguration) bool {
		return aws.ToString(m.UUID) == aws.ToString(in.UUID)
	})
	return &lambda.DeleteEventSourceMappingOutput{}, nil
}

func (f *fakeLambda) ListTags(_ context.Context, in *lambda.ListTagsInput, _ ...func(*lambda.Options)) (*lambda.ListTagsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &lambda.ListTagsOutput{Tags: f.tags[aws.ToString(in.Resource)]}, nil
}

type rig struct {
	p         *Provisioner
	lambda    *fakeLambda
	responses *responses
	src, tgt  *kadm.Client
}

func cluster(t *testing.T) (*kfake.Cluster, *kadm.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, kadm.NewClient(cl)
}

// newRig wires the real handler to two kfake clusters through the real
// environment loading and connection code, as main does.
func newRig(t *testing.T, env map[string]string) *rig {
	t.Helper()
	sc, src := cluster(t)
	tc, tgt := cluster(t)
	e := map[string]string{
		"SOURCE_BOOTSTRAP_SERVERS": strings.Join(sc.ListenAddrs(), ","), "SOURCE_AUTH": "plaintext",
		"TARGET_BOOTSTRAP_SERVERS": strings.Join(tc.ListenAddrs(), ","), "TARGET_AUTH": "plaintext",
		"TOPIC_PATTERNS": "orders.*", "REPLICATOR_FUNCTION_NAME": "kmig-replicator", "STACK_NAME": "kmig",
	}
	for k, v := range env {
		e[k] = v
	}
	cfg, err := LoadConfig(config.Map(e))
	fl := &fakeLambda{}
	p := &Provisioner{Config: cfg, ConfigErr: err, Connect: Connect(cfg, nil), Lambda: fl, TopicScope: iamscope.Handle,
		Logger: nil, FunctionName: "kmig-provisioner"}
	return &rig{p: p, lambda: fl, responses: newResponses(t), src: src, tgt: tgt}
}

// event loads a sample event from events/ with its ResponseURL pointed
// at the local server.
func (r *rig) event(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if _, ok := ev["ResponseURL"]; ok {
		ev["ResponseURL"] = r.responses.srv.URL + "/response?X-Amz-Signature=test"
	}
	out, _ := json.Marshal(ev)
	return out
}

func (r *rig) invoke(t *testing.T, payload []byte, timeout time.Duration) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r.responses.mu.Lock()
	r.responses.invocation = ctx
	r.responses.mu.Unlock()
	return r.p.Invoke(ctx, payload)
}

func TestTargetTopicsLifecycle(t *testing.T) {
	r := newRig(t, nil)
	topicsynctest.CreateTopic(t, r.src, "orders", 3, nil)
	topicsynctest.CreateTopic(t, r.src, "payments", 1, nil)

	if _, err := r.invoke(t, r.event(t, "custom-resource-create.json"), time.Minute); err != nil {
		t.Fatal(err)
	}
	resp := r.responses.last(t)
	if resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != "kmig-target-topics/kmig/TargetTopics" || resp.Data["MappingsCreated"] != "1" {
		t.Fatalf("create: %+v", resp)
	}
	if got := topicsynctest.Partitions(t, r.tgt, "orders"); got != 3 {
		t.Fatalf("target orders has %d partitions", got)
	}
	if got := r.lambda.topics(); !slices.Equal(got, []string{"orders"}) {
		t.Fatalf("mappings %v", got)
	}

	// A mapping made by hand on the replicator is kept on Delete; the
	// stack's own are deleted; target topics stay.
	r.lambda.add("manual", nil)
	if _, err := r.invoke(t, r.event(t, "custom-resource-delete.json"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if resp := r.responses.last(t); resp.Status != cfn.StatusSuccess {
		t.Fatalf("delete: %+v", resp)
	}
	if got := r.lambda.topics(); !slices.Equal(got, []string{"manual"}) {
		t.Fatalf("after delete, mappings %v, want only the hand-made one", got)
	}
	if got := topicsynctest.Partitions(t, r.tgt, "orders"); got != 3 {
		t.Fatalf("delete removed or changed the target topic: %d partitions", got)
	}
}

// Mappings tagged by another stack on the same function are kept.
func TestDeleteKeepsOtherStacksMappings(t *testing.T) {
	r := newRig(t, nil)
	r.lambda.add("a", map[string]string{reconcile.TagTopic: "a", reconcile.TagStack: "kmig"})
	r.lambda.add("b", map[string]string{reconcile.TagTopic: "b", reconcile.TagStack: "other"})
	deleted, kept, err := DeleteMappings(context.Background(), r.lambda, r.p.Config)
	if err != nil || len(deleted) != 1 || len(kept) != 1 || !slices.Equal(r.lambda.topics(), []string{"b"}) {
		t.Fatalf("deleted %v kept %v err %v; left %v", deleted, kept, err, r.lambda.topics())
	}
}

func TestConfigErrorAnswersFailedNamingTheVariable(t *testing.T) {
	r := newRig(t, map[string]string{"TOPIC_PATTERNS": "orders(["})
	var ce *config.Error
	if !errors.As(r.p.ConfigErr, &ce) {
		t.Fatalf("config error %v", r.p.ConfigErr)
	}
	if _, err := r.invoke(t, r.event(t, "custom-resource-create.json"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if resp := r.responses.last(t); resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, "TOPIC_PATTERNS") {
		t.Fatalf("create with a bad selection: %s %q", resp.Status, resp.Reason)
	}
	if _, err := r.invoke(t, r.event(t, "custom-resource-delete.json"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if resp := r.responses.last(t); resp.Status != cfn.StatusSuccess {
		t.Fatalf("delete with a bad configuration: %s %q", resp.Status, resp.Reason)
	}
}

// TestUnreachableClusterFailsBeforeDeadline: a source that accepts
// connections and never answers (a broker behind a route that drops its
// replies) holds every request until the deadline; the provisioner still
// answers CloudFormation FAILED before the invocation ends.
func TestUnreachableClusterFailsBeforeDeadline(t *testing.T) {
	r := newRig(t, map[string]string{"SOURCE_BOOTSTRAP_SERVERS": blackhole.Addr(t)})
	r.p.Margin = 200 * time.Millisecond
	if _, err := r.invoke(t, r.event(t, "custom-resource-create.json"), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if resp := r.responses.last(t); resp.Status != cfn.StatusFailed || resp.Reason == "" {
		t.Fatalf("unreachable source: %s %q", resp.Status, resp.Reason)
	}
	// CloudFormation must have its answer while the invocation lives: the
	// response reached the ResponseURL before the invocation's deadline.
	r.responses.mu.Lock()
	defer r.responses.mu.Unlock()
	if r.responses.late != 0 {
		t.Fatal("the FAILED response arrived after the invocation's deadline")
	}
}

func TestTopicScopeIsDispatched(t *testing.T) {
	r := newRig(t, nil)
	if _, err := r.invoke(t, r.event(t, "topic-scope-create.json"), time.Minute); err != nil {
		t.Fatal(err)
	}
	resp := r.responses.last(t)
	if resp.Status != cfn.StatusSuccess || resp.Data[iamscope.AttrSourceTopicArns] == nil {
		t.Fatalf("topic scope: %+v", resp)
	}
}

// The schedule's event (any event that is not a custom resource's) runs
// one reconciliation and returns its report.
func TestScheduledEventReconciles(t *testing.T) {
	r := newRig(t, nil)
	topicsynctest.CreateTopic(t, r.src, "orders.eu", 2, nil)
	out, err := r.invoke(t, r.event(t, "reconcile-scheduled.json"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var rep reconcile.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.TopicsSelected != 1 || !slices.Equal(rep.MappingsCreated, []string{"orders.eu"}) {
		t.Fatalf("report %s", out)
	}
	if len(r.responses.got) != 0 {
		t.Fatal("a scheduled run sent a custom resource response")
	}
}
