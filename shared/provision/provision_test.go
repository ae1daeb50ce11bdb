package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/topicsync/topicsynctest"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
)

// responses stands in for CloudFormation's pre-signed response URL: it
// records every PUT body.
type responses struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []cfn.Response
	errs []string
}

func newResponses(t *testing.T) *responses {
	t.Helper()
	r := &responses{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var resp cfn.Response
		r.mu.Lock()
		defer r.mu.Unlock()
		if req.Method != http.MethodPut {
			r.errs = append(r.errs, "method "+req.Method)
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			r.errs = append(r.errs, "body: "+err.Error())
		}
		if len(body) > 4096 {
			r.errs = append(r.errs, "response body over CloudFormation's 4096 bytes")
		}
		r.got = append(r.got, resp)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *responses) last(t *testing.T) cfn.Response {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) > 0 {
		t.Fatalf("bad responses: %v", r.errs)
	}
	if len(r.got) == 0 {
		t.Fatal("no response was sent to the ResponseURL")
	}
	return r.got[len(r.got)-1]
}

// startCluster starts a one-broker kfake cluster and an admin client.
func startCluster(t *testing.T) (*kfake.Cluster, *kadm.Client) {
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

type rig struct {
	src, tgt   *kadm.Client
	handler    lambda.Handler
	responses  *responses
	provisions *Provisioner
}

// newRig wires the real handler (Provisioner.Handler, i.e. cfn.LambdaWrap)
// to two kfake clusters through the real environment loading and
// connection code, as main does.
func newRig(t *testing.T) *rig { return newRigWithTransforms(t, "") }

// newRigWithTransforms is newRig with TRANSFORMS set to transforms.
func newRigWithTransforms(t *testing.T, transforms string) *rig {
	t.Helper()
	sc, src := startCluster(t)
	tc, tgt := startCluster(t)
	cfg, err := LoadConfig(config.Map(map[string]string{
		"SOURCE_BOOTSTRAP_SERVERS": strings.Join(sc.ListenAddrs(), ","),
		"SOURCE_AUTH":              "plaintext",
		"TARGET_BOOTSTRAP_SERVERS": strings.Join(tc.ListenAddrs(), ","),
		"TARGET_AUTH":              "plaintext",
		"TRANSFORMS":               transforms,
	}))
	if err != nil {
		t.Fatal(err)
	}
	p := &Provisioner{Connect: Connect(cfg, nil), Renames: cfg.Renames}
	return &rig{src: src, tgt: tgt, handler: lambda.NewHandler(p.Handler()), responses: newResponses(t), provisions: p}
}

// event loads a sample event from events/, points its ResponseURL at the
// local server and applies edit to its properties.
func (r *rig) event(t *testing.T, name string, edit func(props map[string]any)) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	ev["ResponseURL"] = r.responses.srv.URL + "/response?X-Amz-Signature=test"
	if edit != nil {
		edit(ev["ResourceProperties"].(map[string]any))
	}
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (r *rig) invoke(t *testing.T, payload []byte) cfn.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.handler.Invoke(ctx, payload); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	return r.responses.last(t)
}

func TestProvisionerLifecycle(t *testing.T) {
	r := newRig(t)
	topicsynctest.CreateTopic(t, r.src, "orders", 6, map[string]string{"retention.ms": "3600000", "cleanup.policy": "compact", "min.insync.replicas": "2", "compression.type": "lz4"})
	topicsynctest.CreateTopic(t, r.src, "payments", 3, map[string]string{"retention.bytes": "1073741824"})

	// Create: topics with the source's partitions and configs, and the
	// dead-letter topic.
	resp := r.invoke(t, r.event(t, "custom-resource-create.json", nil))
	if resp.Status != cfn.StatusSuccess {
		t.Fatalf("create: %s %s", resp.Status, resp.Reason)
	}
	const physical = "kmig-target-topics/kmig/TargetTopics"
	if resp.PhysicalResourceID != physical || resp.LogicalResourceID != "TargetTopics" || resp.RequestID == "" || resp.StackID == "" {
		t.Errorf("response ids: %+v", resp)
	}
	if got := resp.Data["TopicsCreated"]; got != "orders,payments,kmig.dead-letter" {
		t.Errorf("TopicsCreated = %v", got)
	}
	for topic, want := range map[string]int{"orders": 6, "payments": 3, "kmig.dead-letter": 6} {
		if got := topicsynctest.Partitions(t, r.tgt, topic); got != want {
			t.Errorf("%s has %d partitions, want %d", topic, got, want)
		}
	}
	for _, c := range []struct{ topic, key, want string }{
		{"orders", "retention.ms", "3600000"},
		{"orders", "cleanup.policy", "compact"},
		{"orders", "compression.type", "lz4"},
		{"orders", "min.insync.replicas", "1"}, // capped by the one-broker target
		{"payments", "retention.bytes", "1073741824"},
	} {
		if got := topicsynctest.Config(t, r.tgt, c.topic, c.key); got != c.want {
			t.Errorf("%s %s = %q, want %q", c.topic, c.key, got, c.want)
		}
	}

	// Re-run (an Update with the same properties) is a no-op.
	resp = r.invoke(t, r.event(t, "custom-resource-update.json", nil))
	if resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != physical {
		t.Fatalf("re-run: %s %s %s", resp.Status, resp.PhysicalResourceID, resp.Reason)
	}
	if resp.Data["Summary"] != "in sync, nothing changed" || resp.Data["TopicsCreated"] != "" {
		t.Errorf("re-run changed something: %v", resp.Data)
	}

	// The source grew: Update adds partitions on the target.
	if _, err := r.src.CreatePartitions(context.Background(), 2, "orders"); err != nil {
		t.Fatal(err)
	}
	resp = r.invoke(t, r.event(t, "custom-resource-update.json", nil))
	if resp.Status != cfn.StatusSuccess {
		t.Fatalf("add partitions: %s", resp.Reason)
	}
	if got := topicsynctest.Partitions(t, r.tgt, "orders"); got != 8 {
		t.Errorf("orders has %d partitions after update, want 8", got)
	}
	if resp.Data["PartitionsAdded"] != "orders+2" {
		t.Errorf("PartitionsAdded = %v", resp.Data["PartitionsAdded"])
	}

	// A target topic with more partitions than its source is refused, the
	// reason names it and both counts, and nothing else changes.
	topicsynctest.CreateTopic(t, r.src, "refunds", 2, nil)
	topicsynctest.CreateTopic(t, r.tgt, "refunds", 4, nil)
	resp = r.invoke(t, r.event(t, "custom-resource-update.json", func(p map[string]any) {
		p["Topics"] = []any{"orders", "payments", "refunds", "audit"}
	}))
	if resp.Status != cfn.StatusFailed {
		t.Fatalf("more partitions: status %s", resp.Status)
	}
	if !strings.Contains(resp.Reason, `topic "refunds": target has 4 partitions but source has 2`) {
		t.Errorf("reason %q", resp.Reason)
	}
	if resp.PhysicalResourceID != physical {
		t.Errorf("physical id changed on failure: %s", resp.PhysicalResourceID)
	}

	// Delete answers SUCCESS and leaves every target topic in place.
	resp = r.invoke(t, r.event(t, "custom-resource-delete.json", nil))
	if resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != physical {
		t.Fatalf("delete: %s %s", resp.Status, resp.Reason)
	}
	for topic, want := range map[string]int{"orders": 8, "payments": 3, "kmig.dead-letter": 6, "refunds": 4} {
		if got := topicsynctest.Partitions(t, r.tgt, topic); got != want {
			t.Errorf("after delete %s has %d partitions, want %d", topic, got, want)
		}
	}
}

func TestProvisionerBadProperties(t *testing.T) {
	r := newRig(t)
	topicsynctest.CreateTopic(t, r.src, "orders", 1, nil)
	for _, tc := range []struct {
		name   string
		edit   func(map[string]any)
		reason string
	}{
		{"no topics", func(p map[string]any) { delete(p, "Topics") }, "invalid property Topics: is required"},
		{"empty topics", func(p map[string]any) { p["Topics"] = []any{} }, "invalid property Topics: lists no topic"},
		{"bad topic name", func(p map[string]any) { p["Topics"] = []any{"orders", "bad topic"} }, `"bad topic" is not a legal Kafka topic name`},
		{"topic not a string", func(p map[string]any) { p["Topics"] = []any{1.0} }, "item 0 is float64"},
		{"unknown property", func(p map[string]any) { p["Topic"] = "orders" }, "invalid property Topic: unknown property"},
		{"bad CopyAcls", func(p map[string]any) { p["CopyAcls"] = "maybe" }, `invalid property CopyAcls: "maybe" is not true or false`},
		{"bad overrides JSON", func(p map[string]any) { p["TopicConfigOverrides"] = "{retention" }, "invalid property TopicConfigOverrides: is not a JSON object"},
		{"unknown override", func(p map[string]any) { p["TopicConfigOverrides"] = `{"unclean.leader.election.enable":"true"}` }, `"unclean.leader.election.enable" cannot be overridden`},
		{"bad replication factor", func(p map[string]any) { p["ReplicationFactor"] = "0" }, `invalid property ReplicationFactor: "0" is not -1 or a positive integer`},
		{"dead letter is a migrated topic", func(p map[string]any) { p["DeadLetterTopic"] = "orders" }, `"orders" is listed twice`},
		{"source topic missing", func(p map[string]any) { p["Topics"] = []any{"orders", "ghost"} }, `topic "ghost" on the source: UNKNOWN_TOPIC_OR_PARTITION`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.invoke(t, r.event(t, "custom-resource-create.json", tc.edit))
			if resp.Status != cfn.StatusFailed {
				t.Fatalf("status %s, want FAILED", resp.Status)
			}
			if !strings.Contains(resp.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", resp.Reason, tc.reason)
			}
			if resp.PhysicalResourceID != "kmig-target-topics/kmig/TargetTopics" {
				t.Errorf("physical id %q", resp.PhysicalResourceID)
			}
		})
	}
	if n := topicsynctest.Partitions(t, r.tgt, "orders"); n != 0 {
		t.Errorf("a failed create changed the target: orders has %d partitions", n)
	}
}

func TestProvisionerConfigErrorStillAnswers(t *testing.T) {
	_, cfgErr := LoadConfig(config.Map(map[string]string{"SOURCE_AUTH": "kerberos"}))
	var ce *config.Error
	if !errors.As(cfgErr, &ce) {
		t.Fatalf("LoadConfig error %v is not a *config.Error", cfgErr)
	}
	r := newRig(t)
	r.provisions.ConfigErr = cfgErr
	resp := r.invoke(t, r.event(t, "custom-resource-create.json", nil))
	if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, "SOURCE_BOOTSTRAP_SERVERS") || !strings.Contains(resp.Reason, "TARGET_BOOTSTRAP_SERVERS") {
		t.Errorf("create with bad config: %s %q", resp.Status, resp.Reason)
	}
	resp = r.invoke(t, r.event(t, "custom-resource-delete.json", nil))
	if resp.Status != cfn.StatusSuccess {
		t.Errorf("delete with bad config: %s %q", resp.Status, resp.Reason)
	}
}

func TestProvisionerUnreachableTargetFailsBeforeDeadline(t *testing.T) {
	r := newRig(t)
	topicsynctest.CreateTopic(t, r.src, "orders", 1, nil)
	cfg, err := LoadConfig(config.Map(map[string]string{
		"SOURCE_BOOTSTRAP_SERVERS": "127.0.0.1:1", "SOURCE_AUTH": "plaintext",
		"TARGET_BOOTSTRAP_SERVERS": "127.0.0.1:1", "TARGET_AUTH": "plaintext",
	}))
	if err != nil {
		t.Fatal(err)
	}
	r.provisions.Connect = Connect(cfg, nil)
	r.provisions.Margin = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := r.handler.Invoke(ctx, r.event(t, "custom-resource-create.json", nil)); err != nil {
		t.Fatal(err)
	}
	if resp := r.responses.last(t); resp.Status != cfn.StatusFailed || resp.Reason == "" {
		t.Errorf("unreachable: %s %q", resp.Status, resp.Reason)
	}
}

func TestLongReasonIsBounded(t *testing.T) {
	err := reason(errors.New(strings.Repeat("x", 10000)))
	if len(err.Error()) > MaxReasonBytes {
		t.Errorf("reason is %d bytes", len(err.Error()))
	}
}

// TestSampleEventsRoundTrip keeps events/custom-resource-*.json in the
// shape aws-lambda-go's cfn.Event reads, and valid for this resource.
func TestSampleEventsRoundTrip(t *testing.T) {
	for _, name := range []string{"custom-resource-create.json", "custom-resource-update.json", "custom-resource-delete.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
		if err != nil {
			t.Fatal(err)
		}
		var ev cfn.Event
		dec := json.NewDecoder(strings.NewReader(string(b)))
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var orig, back map[string]any
		_ = json.Unmarshal(b, &orig)
		out, _ := json.Marshal(ev)
		_ = json.Unmarshal(out, &back)
		delete(orig, "ServiceToken") // sent by CloudFormation, not in cfn.Event
		if !reflect.DeepEqual(orig, back) {
			t.Errorf("%s does not round-trip through cfn.Event:\n got %v\nwant %v", name, back, orig)
		}
		if _, err := ParseProperties(ev.ResourceProperties); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if ev.RequestType != cfn.RequestCreate && PhysicalID(ev) != "kmig-target-topics/kmig/TargetTopics" {
			t.Errorf("%s: physical id %q differs from what Create returns", name, PhysicalID(ev))
		}
	}
}

// TestConsumerGroupIDLimits: each mapping's consumer group is
// ConsumerGroupIdPrefix + topic, and Lambda refuses a ConsumerGroupId over
// 200 characters or outside [a-zA-Z0-9-\/*:_+=.@-]* (API reference,
// AmazonManagedKafkaEventSourceConfig and SelfManagedKafkaEventSourceConfig).
func TestConsumerGroupIDLimits(t *testing.T) {
	props := func(prefix string, topics ...string) map[string]any {
		l := make([]any, len(topics))
		for i, tp := range topics {
			l[i] = tp
		}
		return map[string]any{"Topics": l, "ConsumerGroupIdPrefix": prefix}
	}
	fits := strings.Repeat("t", 195) // "kmig-" + 195 = 200
	tooLong := strings.Repeat("u", 196)
	for _, tc := range []struct {
		name    string
		raw     map[string]any
		topic   string
		length  int
		badChar rune
	}{
		{name: "200 characters", raw: props("kmig-", "orders", fits)},
		{name: "every allowed character", raw: props("a-Z/0*9:_+=.@", "orders")},
		{name: "empty prefix", raw: props("", "orders")},
		{name: "no prefix property", raw: map[string]any{"Topics": []any{tooLong}}},
		{name: "201 characters", raw: props("kmig-", "orders", tooLong), topic: tooLong, length: 201},
		{name: "longest topic name", raw: props("k", strings.Repeat("v", 249)), topic: strings.Repeat("v", 249), length: 250},
		{name: "space", raw: props("kmig ", "orders"), topic: "orders", length: 11, badChar: ' '},
		{name: "hash", raw: props("kmig#", "orders"), topic: "orders", length: 11, badChar: '#'},
		{name: "non-ASCII", raw: props("kmig-é-", "orders"), topic: "orders", length: 13, badChar: 'é'},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseProperties(tc.raw)
			if tc.topic == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if want, _ := tc.raw["ConsumerGroupIdPrefix"].(string); p.ConsumerGroupIDPrefix != want {
					t.Errorf("prefix %q, want %q", p.ConsumerGroupIDPrefix, want)
				}
				return
			}
			var ge *ConsumerGroupIDError
			if !errors.As(err, &ge) {
				t.Fatalf("error %v (%T) is not a *ConsumerGroupIDError", err, err)
			}
			if ge.Topic != tc.topic || ge.Length != tc.length || ge.Limit != 200 || ge.BadChar != tc.badChar ||
				ge.GroupID != tc.raw["ConsumerGroupIdPrefix"].(string)+tc.topic {
				t.Errorf("got %+v, want topic %q, length %d, limit 200, bad char %q", *ge, tc.topic, tc.length, tc.badChar)
			}
			msg := err.Error()
			if !strings.Contains(msg, "ConsumerGroupIdPrefix") || !strings.Contains(msg, tc.topic) {
				t.Errorf("message does not name the property and the topic: %s", msg)
			}
			if tc.badChar == 0 && (!strings.Contains(msg, fmt.Sprintf("is %d characters", tc.length)) || !strings.Contains(msg, "limit of 200")) {
				t.Errorf("message does not give the length and the limit: %s", msg)
			}
			if tc.badChar != 0 && !strings.Contains(msg, fmt.Sprintf("%q", tc.badChar)) {
				t.Errorf("message does not name the character: %s", msg)
			}
		})
	}
	if _, err := ParseProperties(map[string]any{"Topics": []any{"orders"}, "ConsumerGroupIdPrefix": 5.0}); err == nil || !strings.Contains(err.Error(), "invalid property ConsumerGroupIdPrefix: is float64") {
		t.Errorf("numeric prefix: %v", err)
	}
}

// TestProvisionerRefusesLongConsumerGroupIDBeforeCreating: a Create whose
// prefix + topic is over Lambda's limit fails, names the topic, the
// length and the limit, and creates no target topic, not even for the
// topics whose IDs fit.
func TestProvisionerRefusesLongConsumerGroupIDBeforeCreating(t *testing.T) {
	r := newRig(t)
	long := strings.Repeat("x", 200)
	for _, tp := range []string{"orders", long} {
		topicsynctest.CreateTopic(t, r.src, tp, 2, nil)
	}
	resp := r.invoke(t, r.event(t, "custom-resource-create.json", func(p map[string]any) {
		p["Topics"] = []any{"orders", long}
	}))
	if resp.Status != cfn.StatusFailed {
		t.Fatalf("status %s, want FAILED", resp.Status)
	}
	for _, want := range []string{long, "is 205 characters", "limit of 200", "ConsumerGroupIdPrefix"} {
		if !strings.Contains(resp.Reason, want) {
			t.Errorf("reason %q does not contain %q", resp.Reason, want)
		}
	}
	for _, tp := range []string{"orders", long, "kmig.dead-letter"} {
		if n := topicsynctest.Partitions(t, r.tgt, tp); n != 0 {
			t.Errorf("the refused create made %s on the target (%d partitions)", tp, n)
		}
	}
	// The same topics with a prefix that fits are provisioned.
	resp = r.invoke(t, r.event(t, "custom-resource-create.json", func(p map[string]any) {
		p["Topics"] = []any{"orders", long}
		p["ConsumerGroupIdPrefix"] = ""
	}))
	if resp.Status != cfn.StatusSuccess {
		t.Fatalf("with an empty prefix: %s %q", resp.Status, resp.Reason)
	}
	if n := topicsynctest.Partitions(t, r.tgt, long); n != 2 {
		t.Errorf("%d partitions on the target, want 2", n)
	}
}

// TestServiceTimeoutPropertyIsAccepted: the template sets ServiceTimeout
// on the custom resource, and AWS does not document whether CloudFormation
// passes it to the function with the other properties. Either way the
// create must go through.
func TestServiceTimeoutPropertyIsAccepted(t *testing.T) {
	r := newRig(t)
	topicsynctest.CreateTopic(t, r.src, "orders", 1, nil)
	for _, timeout := range []any{nil, "900", 900.0} {
		resp := r.invoke(t, r.event(t, "custom-resource-create.json", func(p map[string]any) {
			p["Topics"] = []any{"orders"}
			if timeout != nil {
				p["ServiceTimeout"] = timeout
			}
		}))
		if resp.Status != cfn.StatusSuccess {
			t.Errorf("ServiceTimeout %v: %s %q", timeout, resp.Status, resp.Reason)
		}
	}
}

// TestProvisionerRenamedTopic: with a rename in TRANSFORMS the provisioner
// creates the target topic under its new name, with the source topic's
// partitions and configs, and refuses renames that cannot work.
func TestProvisionerRenamedTopic(t *testing.T) {
	r := newRigWithTransforms(t, `[{"type":"setHeader","key":"k","value":"v"},{"type":"rename","topics":{"legacy.orders":"orders"}}]`)
	topicsynctest.CreateTopic(t, r.src, "legacy.orders", 6, map[string]string{"retention.ms": "3600000"})
	topicsynctest.CreateTopic(t, r.src, "payments", 3, nil)
	renamed := func(p map[string]any) {
		p["Topics"] = []any{"legacy.orders", "payments"}
		p["RenamedTopics"] = "orders"
	}
	for _, tc := range []struct {
		name   string
		edit   func(map[string]any)
		reason string
	}{
		{"rename of a topic not migrated", func(p map[string]any) { p["Topics"] = []any{"payments"}; p["RenamedTopics"] = "" },
			`TRANSFORMS: rename "legacy.orders" -> "orders": the renamed topic is not one of the migrated topics`},
		{"rename onto a migrated topic", func(p map[string]any) { renamed(p); p["Topics"] = []any{"legacy.orders", "orders"} },
			`"orders" is also a migrated topic that keeps its name`},
		{"rename onto the dead-letter topic", func(p map[string]any) { renamed(p); p["DeadLetterTopic"] = "orders" },
			`"orders" is the target-only topic`},
		{"RenamedTopics differs", func(p map[string]any) { renamed(p); p["RenamedTopics"] = []any{"legacy.orders"} },
			`invalid property RenamedTopics: lists [legacy.orders] but the renames in TRANSFORMS give the target topics [orders]`},
		{"RenamedTopics empty", func(p map[string]any) { renamed(p); p["RenamedTopics"] = "" },
			`invalid property RenamedTopics: lists [] but the renames in TRANSFORMS give the target topics [orders]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.invoke(t, r.event(t, "custom-resource-create.json", tc.edit))
			if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, tc.reason) {
				t.Fatalf("status %s, reason %q; want FAILED with %q", resp.Status, resp.Reason, tc.reason)
			}
		})
	}
	for _, topic := range []string{"orders", "legacy.orders", "payments"} {
		if n := topicsynctest.Partitions(t, r.tgt, topic); n != 0 {
			t.Fatalf("a refused create changed the target: %s has %d partitions", topic, n)
		}
	}

	resp := r.invoke(t, r.event(t, "custom-resource-create.json", renamed))
	if resp.Status != cfn.StatusSuccess {
		t.Fatalf("create: %s %s", resp.Status, resp.Reason)
	}
	if got := resp.Data["TopicsCreated"]; got != "orders,payments,kmig.dead-letter" {
		t.Errorf("TopicsCreated = %v", got)
	}
	for topic, want := range map[string]int{"orders": 6, "payments": 3, "legacy.orders": 0} {
		if got := topicsynctest.Partitions(t, r.tgt, topic); got != want {
			t.Errorf("%s has %d partitions on the target, want %d", topic, got, want)
		}
	}
	if got := topicsynctest.Config(t, r.tgt, "orders", "retention.ms"); got != "3600000" {
		t.Errorf("orders retention.ms = %q, want the source's 3600000", got)
	}
	resp = r.invoke(t, r.event(t, "custom-resource-update.json", renamed))
	if resp.Status != cfn.StatusSuccess || resp.Data["Summary"] != "in sync, nothing changed" {
		t.Errorf("re-run: %s %s %v", resp.Status, resp.Reason, resp.Data)
	}
}

// TestProvisionerBadTransforms: a TRANSFORMS the provisioner cannot read
// is a configuration error naming the variable.
func TestProvisionerBadTransforms(t *testing.T) {
	_, err := LoadConfig(config.Map(map[string]string{
		"SOURCE_BOOTSTRAP_SERVERS": "127.0.0.1:1", "SOURCE_AUTH": "plaintext",
		"TARGET_BOOTSTRAP_SERVERS": "127.0.0.1:1", "TARGET_AUTH": "plaintext",
		"TRANSFORMS": `[{"type":"rename","topics":{"a":"x","b":"x"}}]`,
	}))
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Variable != "TRANSFORMS" || !strings.Contains(err.Error(), "many-to-one") {
		t.Fatalf("LoadConfig = %v, want a *config.Error on TRANSFORMS", err)
	}
}
