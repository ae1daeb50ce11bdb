package lambdaendpoint

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	alambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

const mskArn = "arn:aws:kafka:us-east-1:000000000000:cluster/source/11111111-2222-3333-4444-555555555555-1"

// delivered records what the replicator stand-in received, per
// invocation, as topic/partition/offset triples.
type delivered struct {
	mu      sync.Mutex
	batches [][]string
}

func (d *delivered) handler() alambda.Handler {
	return alambda.NewHandler(func(_ context.Context, ev events.KafkaEvent) error {
		var b []string
		for _, recs := range ev.Records {
			for _, r := range recs {
				b = append(b, fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset))
			}
		}
		d.mu.Lock()
		d.batches = append(d.batches, b)
		d.mu.Unlock()
		return nil
	})
}

func (d *delivered) snapshot() [][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([][]string(nil), d.batches...)
}

type rig struct {
	src *kafkalocal.Cluster
	reg *esm.Registry
	s   *Server
	cl  *awslambda.Client
	url string
	got *delivered
}

// newRig starts a source with topics, a registry, the endpoint with the
// function "replicator" registered and a factory that connects as the app
// user (MSK mappings to the same source) with startDelay, and an SDK
// client with its default retryer.
func newRig(t *testing.T, startDelay time.Duration, topics ...kafkalocal.Topic) *rig {
	t.Helper()
	src, err := kafkalocal.StartSource(kafkalocal.ClusterOptions{Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	r := &rig{src: src, reg: esm.NewRegistry(), got: &delivered{}}
	t.Cleanup(r.reg.Close)
	r.s = New(r.reg)
	r.s.Register("replicator", r.got.handler())
	r.s.SetMappingFactory(func(_ context.Context, req CreateRequest) (esm.Config, error) {
		cfg := req.Config
		if cfg.EventSourceArn != "" {
			cfg.BootstrapServers = src.Bootstrap()
		}
		cfg.ClientOptions = src.ClientOpts(kafkalocal.App())
		cfg.StartDelay = startDelay
		cfg.MaximumBatchingWindow = 10 * time.Millisecond
		return cfg, nil
	})
	r.url, err = r.s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.s.Close() })
	r.cl = awslambda.New(awslambda.Options{Region: Region, BaseEndpoint: aws.String(r.url), Credentials: aws.AnonymousCredentials{}})
	return r
}

func (r *rig) createInput(topic, group string, enabled bool) *awslambda.CreateEventSourceMappingInput {
	return &awslambda.CreateEventSourceMappingInput{
		FunctionName:                      aws.String("replicator"),
		Topics:                            []string{topic},
		SelfManagedEventSource:            &types.SelfManagedEventSource{Endpoints: map[string][]string{"KAFKA_BOOTSTRAP_SERVERS": r.src.Bootstrap()}},
		SelfManagedKafkaEventSourceConfig: &types.SelfManagedKafkaEventSourceConfig{ConsumerGroupId: aws.String(group)},
		StartingPosition:                  types.EventSourcePositionTrimHorizon,
		Enabled:                           aws.Bool(enabled),
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestCreateMapping: a mapping created through the SDK on a group seeded
// at the log start reads Creating for its start delay (updates refused
// with ResourceInUseException), then Enabled, and delivers every record,
// those written before the create first, in order, none lost, even with
// StartingPosition LATEST (the seeded group wins).
func TestCreateMapping(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const delay = time.Second
	r := newRig(t, delay, kafkalocal.Topic{Name: "orders", Partitions: 2})
	var rs []*kgo.Record
	for p := range int32(2) {
		for i := range 20 {
			rs = append(rs, &kgo.Record{Topic: "orders", Partition: p, Value: fmt.Appendf(nil, "%d", i)})
		}
	}
	if err := r.src.ProduceSync(ctx, rs...); err != nil {
		t.Fatal(err)
	}
	adm, err := r.src.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	var seed kadm.Offsets
	seed.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 0, LeaderEpoch: -1})
	seed.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 0, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, "kmig-orders", seed); err != nil || resp.Error() != nil {
		t.Fatalf("seeding: %v %v", err, resp.Error())
	}

	in := r.createInput("orders", "kmig-orders", true)
	in.StartingPosition = types.EventSourcePositionLatest
	in.BatchSize = aws.Int32(500)
	created := time.Now()
	out, err := r.cl.CreateEventSourceMapping(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	uuid := aws.ToString(out.UUID)
	if out.State == nil || *out.State != "Creating" {
		t.Fatalf("create answered State %v, want Creating", aws.ToString(out.State))
	}
	if got, want := aws.ToString(out.EventSourceMappingArn), MappingArn(uuid); got != want {
		t.Errorf("EventSourceMappingArn %q, want %q", got, want)
	}
	if got := aws.ToString(out.SelfManagedKafkaEventSourceConfig.ConsumerGroupId); got != "kmig-orders" {
		t.Errorf("ConsumerGroupId %q", got)
	}
	if got := aws.ToString(out.FunctionArn); got != FunctionArn("replicator") {
		t.Errorf("FunctionArn %q", got)
	}
	got, err := r.cl.GetEventSourceMapping(ctx, &awslambda.GetEventSourceMappingInput{UUID: aws.String(uuid)})
	if err != nil || aws.ToString(got.State) != "Creating" {
		t.Fatalf("get right after create: %v %v", aws.ToString(got.State), err)
	}
	_, err = r.cl.UpdateEventSourceMapping(ctx, &awslambda.UpdateEventSourceMappingInput{UUID: aws.String(uuid), Enabled: aws.Bool(false)})
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Fatalf("update while Creating: %T %v, want *types.ResourceInUseException", err, err)
	}
	waitFor(t, ctx, "Enabled", func() bool {
		got, err := r.cl.GetEventSourceMapping(ctx, &awslambda.GetEventSourceMappingInput{UUID: aws.String(uuid)})
		return err == nil && aws.ToString(got.State) == "Enabled"
	})
	if d := time.Since(created); d < delay {
		t.Fatalf("Enabled after %v, within the %v start delay", d, delay)
	}
	waitFor(t, ctx, "40 records", func() bool {
		n := 0
		for _, b := range r.got.snapshot() {
			n += len(b)
		}
		return n >= 40
	})
	batches := r.got.snapshot()
	if !strings.Contains(strings.Join(batches[0], " "), "orders/0/0") && !strings.Contains(strings.Join(batches[0], " "), "orders/1/0") {
		t.Fatalf("first batch %v does not start at the log start", batches[0])
	}
	next := map[string]int{}
	for _, b := range batches {
		for _, rec := range b {
			var p, o int
			if _, err := fmt.Sscanf(rec, "orders/%d/%d", &p, &o); err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprint(p)
			if o != next[key] {
				t.Fatalf("partition %d: offset %d delivered, want %d (lost, duplicated or out of order)", p, o, next[key])
			}
			next[key]++
		}
	}
	if next["0"] != 20 || next["1"] != 20 {
		t.Fatalf("delivered %v records per partition, want 20 each", next)
	}
}

// TestCreateValidation: bad requests get the typed errors AWS documents.
func TestCreateValidation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := newRig(t, 0, kafkalocal.Topic{Name: "t", Partitions: 1})
	var (
		invalid  *types.InvalidParameterValueException
		notFound *types.ResourceNotFoundException
		conflict *types.ResourceConflictException
	)
	for _, tc := range []struct {
		name   string
		mod    func(*awslambda.CreateEventSourceMappingInput)
		target any
	}{
		{"no topic", func(in *awslambda.CreateEventSourceMappingInput) { in.Topics = nil }, &invalid},
		{"two topics", func(in *awslambda.CreateEventSourceMappingInput) { in.Topics = []string{"a", "b"} }, &invalid},
		{"group too long", func(in *awslambda.CreateEventSourceMappingInput) {
			in.SelfManagedKafkaEventSourceConfig.ConsumerGroupId = aws.String(strings.Repeat("g", 201))
		}, &invalid},
		{"group bad character", func(in *awslambda.CreateEventSourceMappingInput) {
			in.SelfManagedKafkaEventSourceConfig.ConsumerGroupId = aws.String("g#1")
		}, &invalid},
		{"no source", func(in *awslambda.CreateEventSourceMappingInput) { in.SelfManagedEventSource = nil }, &invalid},
		{"no starting position", func(in *awslambda.CreateEventSourceMappingInput) { in.StartingPosition = "" }, &invalid},
		{"AT_TIMESTAMP without timestamp", func(in *awslambda.CreateEventSourceMappingInput) {
			in.StartingPosition = types.EventSourcePositionAtTimestamp
		}, &invalid},
		{"batch too large", func(in *awslambda.CreateEventSourceMappingInput) { in.BatchSize = aws.Int32(10001) }, &invalid},
		{"unknown function", func(in *awslambda.CreateEventSourceMappingInput) { in.FunctionName = aws.String("nope") }, &notFound},
	} {
		in := r.createInput("t", "g-t", false)
		tc.mod(in)
		_, err := r.cl.CreateEventSourceMapping(ctx, in)
		if !errors.As(err, tc.target) {
			t.Errorf("%s: %T %v", tc.name, err, err)
		}
	}
	if n := len(r.reg.List()); n != 0 {
		t.Fatalf("%d mappings after refused creates", n)
	}
	// A 200-character group ID of every allowed character class is fine.
	okGroup := strings.Repeat("aZ0-/*:_+=.@", 17)[:200]
	if _, err := r.cl.CreateEventSourceMapping(ctx, r.createInput("t", okGroup, false)); err != nil {
		t.Fatalf("create with a valid 200-character group ID: %v", err)
	}
	// Same function, topic and source: conflict; same group elsewhere too.
	if _, err := r.cl.CreateEventSourceMapping(ctx, r.createInput("t", "other", false)); !errors.As(err, &conflict) {
		t.Errorf("duplicate function+topic+source: %T %v", err, err)
	}
	if _, err := r.cl.CreateEventSourceMapping(ctx, r.createInput("t2", okGroup, false)); !errors.As(err, &conflict) {
		t.Errorf("consumer group ID in use: %T %v", err, err)
	}
	// FunctionName missing: the SDK refuses it itself, so ask raw.
	resp, err := http.Post(r.url+"/2015-03-31/event-source-mappings/", "application/json", strings.NewReader(`{"Topics":["t"],"StartingPosition":"LATEST","SelfManagedEventSource":{"Endpoints":{"KAFKA_BOOTSTRAP_SERVERS":["x:9092"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Amzn-ErrorType") != "InvalidParameterValueException" {
		t.Fatalf("create without FunctionName: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
}

// TestListPaging: 250 mappings of one function come back exactly once, in
// creation order, over three pages of at most 100 even when MaxItems asks
// for more; the filters select by function (name or ARN) and source; a
// deletion between pages does not shift the rest.
func TestListPaging(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := newRig(t, 0)
	r.s.Register("other", r.got.handler())
	var want []string
	for i := range 250 {
		out, err := r.cl.CreateEventSourceMapping(ctx, r.createInput(fmt.Sprintf("topic-%03d", i), fmt.Sprintf("g-%03d", i), false))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, aws.ToString(out.UUID))
		if i%50 == 0 { // interleave mappings of another function and of MSK
			in := r.createInput(fmt.Sprintf("topic-%03d", i), fmt.Sprintf("o-%03d", i), false)
			in.FunctionName = aws.String("other")
			if _, err := r.cl.CreateEventSourceMapping(ctx, in); err != nil {
				t.Fatal(err)
			}
			in = r.createInput(fmt.Sprintf("topic-%03d", i), fmt.Sprintf("m-%03d", i), false)
			in.FunctionName = aws.String("other")
			in.SelfManagedEventSource, in.SelfManagedKafkaEventSourceConfig = nil, nil
			in.EventSourceArn = aws.String(mskArn)
			if _, err := r.cl.CreateEventSourceMapping(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, fn := range []string{"replicator", FunctionArn("replicator"), "000000000000:function:replicator"} {
		p := awslambda.NewListEventSourceMappingsPaginator(r.cl, &awslambda.ListEventSourceMappingsInput{FunctionName: aws.String(fn), MaxItems: aws.Int32(1000)})
		var got []string
		pages := 0
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(out.EventSourceMappings) > MaxListItems {
				t.Fatalf("page of %d mappings", len(out.EventSourceMappings))
			}
			for _, m := range out.EventSourceMappings {
				got = append(got, aws.ToString(m.UUID))
			}
		}
		if pages != 3 || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("FunctionName %s: %d pages, %d mappings; want 3 pages and the 250 in creation order, each once", fn, pages, len(got))
		}
	}
	out, err := r.cl.ListEventSourceMappings(ctx, &awslambda.ListEventSourceMappingsInput{EventSourceArn: aws.String(mskArn)})
	if err != nil || len(out.EventSourceMappings) != 5 || out.NextMarker != nil {
		t.Fatalf("EventSourceArn filter: %v, %d mappings", err, len(out.EventSourceMappings))
	}

	// A small page, a deletion of a listed mapping, then the rest.
	first, err := r.cl.ListEventSourceMappings(ctx, &awslambda.ListEventSourceMappingsInput{FunctionName: aws.String("replicator"), MaxItems: aws.Int32(10)})
	if err != nil || len(first.EventSourceMappings) != 10 || first.NextMarker == nil {
		t.Fatalf("first page of 10: %v", err)
	}
	if _, err := r.cl.DeleteEventSourceMapping(ctx, &awslambda.DeleteEventSourceMappingInput{UUID: first.EventSourceMappings[3].UUID}); err != nil {
		t.Fatal(err)
	}
	seen := 10
	marker := first.NextMarker
	for marker != nil {
		out, err := r.cl.ListEventSourceMappings(ctx, &awslambda.ListEventSourceMappingsInput{FunctionName: aws.String("replicator"), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.EventSourceMappings {
			if aws.ToString(m.UUID) != want[seen] {
				t.Fatalf("mapping %d is %s, want %s", seen, aws.ToString(m.UUID), want[seen])
			}
			seen++
		}
		marker = out.NextMarker
	}
	if seen != 250 {
		t.Fatalf("listed %d mappings after the first page's 10, want 250 in all", seen)
	}
	var invalid *types.InvalidParameterValueException
	if _, err := r.cl.ListEventSourceMappings(ctx, &awslambda.ListEventSourceMappingsInput{Marker: aws.String("bogus")}); !errors.As(err, &invalid) {
		t.Fatalf("bogus marker: %T %v", err, err)
	}
}

// TestDeleteMapping: delete answers Deleting; the mapping stops, leaves
// its group, and is gone (ResourceNotFoundException), with its tags.
func TestDeleteMapping(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := newRig(t, 0, kafkalocal.Topic{Name: "gone", Partitions: 1})
	out, err := r.cl.CreateEventSourceMapping(ctx, r.createInput("gone", "g-gone", true))
	if err != nil {
		t.Fatal(err)
	}
	uuid := out.UUID
	adm, err := r.src.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	members := func() int {
		gs, err := adm.DescribeGroups(ctx, "g-gone")
		if err != nil {
			return -1
		}
		return len(gs["g-gone"].Members)
	}
	waitFor(t, ctx, "the mapping to join its group", func() bool { return members() == 1 })
	del, err := r.cl.DeleteEventSourceMapping(ctx, &awslambda.DeleteEventSourceMappingInput{UUID: uuid})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(del.State) != "Deleting" {
		t.Fatalf("delete answered State %s, want Deleting", aws.ToString(del.State))
	}
	var notFound *types.ResourceNotFoundException
	waitFor(t, ctx, "the mapping to be gone", func() bool {
		_, err := r.cl.GetEventSourceMapping(ctx, &awslambda.GetEventSourceMappingInput{UUID: uuid})
		return errors.As(err, &notFound)
	})
	if n := members(); n != 0 {
		t.Fatalf("group has %d members after the delete, want 0", n)
	}
	if _, err := r.cl.ListTags(ctx, &awslambda.ListTagsInput{Resource: out.EventSourceMappingArn}); !errors.As(err, &notFound) {
		t.Fatalf("tags of a deleted mapping: %T %v", err, err)
	}
	if _, err := r.cl.DeleteEventSourceMapping(ctx, &awslambda.DeleteEventSourceMappingInput{UUID: uuid}); !errors.As(err, &notFound) {
		t.Fatalf("second delete: %T %v", err, err)
	}
}

// TestTags: tags given on create, added, removed and listed on the
// mapping's ARN.
func TestTags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := newRig(t, 0)
	in := r.createInput("tagged", "g-tagged", false)
	in.Tags = map[string]string{"kmig:topic": "tagged", "kmig:stack": "s1"}
	out, err := r.cl.CreateEventSourceMapping(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	arn := out.EventSourceMappingArn
	list := func() map[string]string {
		t.Helper()
		got, err := r.cl.ListTags(ctx, &awslambda.ListTagsInput{Resource: arn})
		if err != nil {
			t.Fatal(err)
		}
		return got.Tags
	}
	if got := list(); len(got) != 2 || got["kmig:topic"] != "tagged" || got["kmig:stack"] != "s1" {
		t.Fatalf("tags after create: %v", got)
	}
	if _, err := r.cl.TagResource(ctx, &awslambda.TagResourceInput{Resource: arn, Tags: map[string]string{"kmig:stack": "s2", "team": "data"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.cl.UntagResource(ctx, &awslambda.UntagResourceInput{Resource: arn, TagKeys: []string{"kmig:topic", "absent"}}); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 2 || got["kmig:stack"] != "s2" || got["team"] != "data" {
		t.Fatalf("tags after tag and untag: %v", got)
	}
	var notFound *types.ResourceNotFoundException
	if _, err := r.cl.ListTags(ctx, &awslambda.ListTagsInput{Resource: aws.String(MappingArn("00000000-0000-4000-8000-000000000000"))}); !errors.As(err, &notFound) {
		t.Fatalf("tags of an unknown mapping: %T %v", err, err)
	}
	var invalid *types.InvalidParameterValueException
	if _, err := r.cl.TagResource(ctx, &awslambda.TagResourceInput{Resource: arn, Tags: map[string]string{"aws:x": "y"}}); !errors.As(err, &invalid) {
		t.Fatalf("reserved tag key: %T %v", err, err)
	}
}

// TestControlPlaneRate: calls over the rate get HTTP 429, which the SDK
// returns as *types.TooManyRequestsException; invocations are not
// limited; the SDK's default retryer gets through once tokens refill.
func TestControlPlaneRate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := newRig(t, 0)
	r.s.SetControlPlaneRate(2)
	noRetry := awslambda.New(awslambda.Options{Region: Region, BaseEndpoint: aws.String(r.url), Credentials: aws.AnonymousCredentials{}, Retryer: aws.NopRetryer{}})
	list := func(cl *awslambda.Client) error {
		_, err := cl.ListEventSourceMappings(ctx, &awslambda.ListEventSourceMappingsInput{FunctionName: aws.String("replicator")})
		return err
	}
	for i := range 2 {
		if err := list(noRetry); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	err := list(noRetry)
	var tooMany *types.TooManyRequestsException
	if !errors.As(err, &tooMany) {
		t.Fatalf("third call: %T %v, want *types.TooManyRequestsException", err, err)
	}
	if n := r.s.Errors("TooManyRequestsException"); n != 1 {
		t.Fatalf("Errors(TooManyRequestsException) = %d, want 1", n)
	}
	if _, err := noRetry.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("replicator"), Payload: []byte(`{"records":{}}`)}); err != nil {
		t.Fatalf("invocation under the control plane limit: %v", err)
	}
	// The SDK's standard retryer treats the 429 as a throttle and
	// retries it; with a backoff longer than the refill it gets through.
	// (The default backoff is jittered from zero, so three default
	// attempts may all land before a token is back.)
	retrying := awslambda.New(awslambda.Options{Region: Region, BaseEndpoint: aws.String(r.url), Credentials: aws.AnonymousCredentials{},
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 5
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 600 * time.Millisecond, nil })
		})})
	if err := list(retrying); err != nil {
		t.Fatalf("with the standard retryer: %v", err)
	}
	r.s.SetControlPlaneRate(0)
	for range 10 {
		if err := list(noRetry); err != nil {
			t.Fatalf("limit removed: %v", err)
		}
	}
}
