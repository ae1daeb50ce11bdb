package cutoverrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaendpoint"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/replicate"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

// The rig's names on embedded clusters. On real brokers (newRealRig) each
// rig gets unique ones instead: the brokers are shared and outlive the run.
const (
	defaultTopic = "orders"
	defaultIdle  = "payments" // an empty topic whose mapping the operator left Disabled
	defaultGroup = "billing"
)

// requireTools skips (or, with KMIG_REQUIRE_TOOLS=1, fails) when Node 22
// and the npm packages are not installed.
func requireTools(t *testing.T) string {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Tools(root); err != nil {
		if os.Getenv("KMIG_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%v", err)
		}
		t.Skipf("%v", err)
	}
	return root
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every few milliseconds until it holds or bound
// has passed, and returns whether it held. bound only guards against a
// condition that never comes.
func eventually(bound time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// waitFor is eventually, failing the test, saying what it waited for,
// when cond never held.
func waitFor(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	if !eventually(bound, cond) {
		t.Fatalf("waited %v for %s", bound, what)
	}
}

// waitFlowing waits until the numbered apps' traffic flows through
// replication: the replicator's mapping has delivered at least n records,
// and the source consumer has read at least n numbers and committed on
// every one of partitions.
func (r *rig) waitFlowing(ctx context.Context, l *ledger, n int, partitions int32) {
	r.t.Helper()
	waitFor(r.t, time.Minute, fmt.Sprintf("the mapping to deliver and the source consumer to read and commit %d numbers on %d partitions", n, partitions), func() bool {
		if r.mapping.Stats().RecordsDelivered < int64(n) || l.Distinct() < n {
			return false
		}
		fr, err := r.srcAdm.FetchOffsets(ctx, r.group)
		if err != nil {
			return false
		}
		for p := range partitions {
			if o, ok := fr.Lookup(r.topic, p); !ok || o.At <= 0 {
				return false
			}
		}
		return true
	})
}

// rig is a source and target cluster with the replicator running through
// the ESM emulator.
type rig struct {
	t    *testing.T
	root string
	real bool // real brokers (newRealRig), shared with other tests
	// input holds cutover input fields the source needs (its profile's
	// fence kind and the like); baseInput carries them.
	input map[string]any
	// isolation is the emulated poller's isolation level (default
	// read_uncommitted).
	isolation esm.Isolation
	// transition and idleTransition are how long the mappings of topic
	// and idle take to stop or restart polling after an update
	// (esm.Config.Transition); zero means defaultTransition.
	transition, idleTransition time.Duration
	// idleEnabled starts the mapping of idle Enabled.
	idleEnabled bool
	topic       string
	idle        string
	group       string
	// target is topic's name on the target when the replicator renames
	// it (withRename); "" when it keeps its name.
	target string
	// transforms is the replicator's TRANSFORMS; renames its renames, as
	// the cutover function reads them.
	transforms string
	renames    transform.TopicMap
	pair       *kafkalocal.Pair
	reg        *esm.Registry
	mapping    *esm.Mapping
	idleMap    *esm.Mapping
	repl       lambda.Handler
	handed     handed
	fail       *failSwitch
	srcAdm     *kadm.Client
	tgtAdm     *kadm.Client
	log        *slog.Logger
}

// handed records, once on, the last source offset of each partition
// the mappings have handed to the replicator (in an invocation, whatever
// its outcome).
type handed struct {
	on   atomic.Bool
	mu   sync.Mutex
	last map[string]int64 // "topic/partition"
}

func (h *handed) note(payload json.RawMessage) {
	if !h.on.Load() {
		return
	}
	var ev struct {
		Records map[string][]struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Offset    int64  `json:"offset"`
		} `json:"records"`
	}
	if json.Unmarshal(payload, &ev) != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		h.last = map[string]int64{}
	}
	for _, rs := range ev.Records {
		for _, rec := range rs {
			k := fmt.Sprintf("%s/%d", rec.Topic, rec.Partition)
			if o, ok := h.last[k]; !ok || rec.Offset > o {
				h.last[k] = rec.Offset
			}
		}
	}
}

// offset is the last offset of topic/partition handed over, or -1.
func (h *handed) offset(topic string, partition int32) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if o, ok := h.last[fmt.Sprintf("%s/%d", topic, partition)]; ok {
		return o
	}
	return -1
}

// failSwitch makes the replicator fail while on.
type failSwitch struct {
	mu sync.Mutex
	on bool
}

func (f *failSwitch) set(on bool) { f.mu.Lock(); f.on = on; f.mu.Unlock() }
func (f *failSwitch) get() bool   { f.mu.Lock(); defer f.mu.Unlock(); return f.on }

type replicatorDown struct{}

func (replicatorDown) Error() string { return "replicator made to fail by the test" }

// rigOption adjusts a rig before its replication starts.
type rigOption func(*rig)

// withIsolation makes the emulated poller read at isolation level iso.
func withIsolation(iso esm.Isolation) rigOption { return func(r *rig) { r.isolation = iso } }

// withRename makes the migrated topic legacy.<topic> on the source, which
// the replicator's rename transform writes to <topic> on the target.
func withRename() rigOption {
	return func(r *rig) {
		r.target, r.topic = r.topic, "legacy."+r.topic
		r.transforms = fmt.Sprintf(`[{"type":"rename","topics":{%q:%q}}]`, r.topic, r.target)
	}
}

// tgtTopic is the migrated topic's name on the target.
func (r *rig) tgtTopic() string {
	if r.target != "" {
		return r.target
	}
	return r.topic
}

// defaultTransition is the rig mappings' lag between an update and its
// effect: short, so tests stay fast, but never zero, so every cutover
// test meets mappings that read Disabling and Enabling for a while.
const defaultTransition = time.Second

// withIdleEnabled starts the mapping of r.idle Enabled, as a second
// replicated topic's.
func withIdleEnabled() rigOption { return func(r *rig) { r.idleEnabled = true } }

// withTransitions sets the transitions of the mappings of r.topic and
// r.idle.
func withTransitions(topic, idle time.Duration) rigOption {
	return func(r *rig) { r.transition, r.idleTransition = topic, idle }
}

func newRig(t *testing.T, sec kafkalocal.Security, partitions int32, opts ...rigOption) *rig {
	t.Helper()
	root := requireTools(t)
	r := &rig{t: t, root: root, topic: defaultTopic, idle: defaultIdle, group: defaultGroup}
	for _, o := range opts {
		o(r)
	}
	pair, err := kafkalocal.StartPair(kafkalocal.PairOptions{
		Source: kafkalocal.ClusterOptions{Security: sec, Topics: []kafkalocal.Topic{{Name: r.topic, Partitions: partitions}, {Name: r.idle, Partitions: 1}}},
		Target: kafkalocal.ClusterOptions{Topics: []kafkalocal.Topic{{Name: r.tgtTopic(), Partitions: partitions}, {Name: r.idle, Partitions: 1}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pair.Close)
	r.pair = pair
	r.setup()
	return r
}

// setup starts the replicator, its mappings (the one for r.idle Disabled
// unless withIdleEnabled) and the admin clients on r.pair.
func (r *rig) setup() {
	t, pair := r.t, r.pair
	t.Helper()
	var err error
	r.reg, r.fail = esm.NewRegistry(), &failSwitch{}
	r.log = slog.New(slog.DiscardHandler)
	if os.Getenv("KMIG_TEST_LOG") == "1" {
		r.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	t.Cleanup(r.reg.Close)
	rcfg := replicate.Config{
		Target:      kafkaconn.Config{Prefix: "TARGET", Bootstrap: pair.Target.Bootstrap(), Auth: kafkaconn.AuthPlaintext},
		Compression: "none", MaxMessageBytes: replicate.DefaultMaxMessageBytes,
		OnRecordError: replicate.FailBatch, Provenance: true,
	}
	if rcfg.Transforms, err = transform.Parse([]byte(r.transforms)); err != nil {
		t.Fatal(err)
	}
	r.renames = rcfg.Transforms.TopicMap()
	tcl, err := replicate.NewTargetClient(context.Background(), rcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tcl.Close)
	// The replicator reads transaction outcomes as the mappings' user.
	scl, err := pair.Source.NewAppClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(scl.Close)
	rep, err := replicate.New(rcfg, tcl, scl, replicate.WithLogger(r.log), replicate.WithMetricsWriter(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	r.repl = lambda.NewHandler(func(ctx context.Context, payload json.RawMessage) (json.RawMessage, error) {
		r.handed.note(payload)
		if r.fail.get() {
			return nil, replicatorDown{}
		}
		return rep.Invoke(ctx, payload)
	})
	// The cutover handles mappings in UUID order; fixed UUIDs put the
	// replicated topic's first.
	r.mapping = r.newMapping("a0000000-0000-4000-8000-000000000001", r.topic, false, r.transition)
	r.idleMap = r.newMapping("a0000000-0000-4000-8000-000000000002", r.idle, !r.idleEnabled, r.idleTransition)
	if r.srcAdm, err = pair.Source.AdminClient(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.srcAdm.Close)
	if r.tgtAdm, err = pair.Target.AdminClient(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.tgtAdm.Close)
}

// addMapping creates the replicator's mapping for topic tp, Disabled if
// disabled, with the default transition.
func (r *rig) addMapping(tp string, disabled bool) *esm.Mapping {
	r.t.Helper()
	return r.newMapping("", tp, disabled, 0)
}

// newMapping is addMapping with a UUID (empty: a random one) and a
// transition (esm.Config.Transition; 0 means defaultTransition).
func (r *rig) newMapping(uuid, tp string, disabled bool, transition time.Duration) *esm.Mapping {
	r.t.Helper()
	if transition == 0 {
		transition = defaultTransition
	}
	m, err := r.reg.Create(esm.Config{
		UUID:                  uuid,
		Transition:            transition,
		FunctionName:          DefaultReplicatorFunction,
		Topics:                []string{tp},
		ConsumerGroupID:       "kmig-replicator-" + tp,
		BootstrapServers:      r.pair.Source.Bootstrap(),
		ClientOptions:         r.pair.Source.ClientOpts(r.pair.Source.AppCredentials()),
		MaximumBatchingWindow: 20 * time.Millisecond,
		RetryBackoff:          20 * time.Millisecond,
		StartDisabled:         disabled,
		Isolation:             r.isolation,
	}, r.repl)
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

// run executes the state machine with input.
func (r *rig) run(ctx context.Context, input map[string]any, o Options) *Result {
	r.t.Helper()
	b, _ := json.Marshal(input)
	o.Source, o.Target, o.Mappings, o.Root, o.Input = r.pair.Source, r.pair.Target, r.reg, r.root, b
	o.Replicator = r.repl
	if o.Renames == nil {
		o.Renames = r.renames
	}
	if o.Log == nil {
		o.Log = r.log
	}
	res, err := Run(ctx, o)
	if err != nil {
		r.t.Fatalf("Run: %v", err)
	}
	r.t.Logf("execution %s in %v: %s %s; states: %s", res.Status, res.Duration.Round(time.Millisecond), res.Error, res.Cause, strings.Join(res.Entered(), " → "))
	return res
}

// baseInput is a fast input for tests.
func (r *rig) baseInput() map[string]any {
	in := map[string]any{
		"topics": []string{r.topic}, "groups": []string{r.group}, "fence": "acl",
		"quietSeconds": 1, "drainTimeoutSeconds": 20, "consumersTimeoutSeconds": 15, "verifySeconds": 20, "pollSeconds": 1,
	}
	for k, v := range r.input {
		in[k] = v
	}
	return in
}

// produce writes numbered records n from..to-1 to the source as the
// superuser, spread over partitions by number.
func (r *rig) produce(ctx context.Context, from, to int, partitions int32) {
	r.t.Helper()
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		rs = append(rs, &kgo.Record{Topic: r.topic, Partition: int32(i) % partitions, Value: []byte(strconv.Itoa(i))})
	}
	if err := r.pair.Source.ProduceSync(ctx, rs...); err != nil {
		r.t.Fatal(err)
	}
}

// waitReplicated waits until the target's end offsets equal the source's
// and the replicator's mapping has committed up to them, so that the
// mapping's own commits do not land during a test's snapshots.
func (r *rig) waitReplicated(ctx context.Context) {
	r.t.Helper()
	defer func() {
		if err := r.mapping.WaitCaughtUp(ctx); err != nil {
			r.t.Fatalf("replicator mapping did not commit up to the source end: %v", err)
		}
	}()
	for {
		s, err1 := r.srcAdm.ListEndOffsets(ctx, r.topic)
		d, err2 := r.tgtAdm.ListEndOffsets(ctx, r.tgtTopic())
		if err1 == nil && err2 == nil {
			same := true
			s.Each(func(o kadm.ListedOffset) {
				if x, ok := d.Lookup(r.tgtTopic(), o.Partition); !ok || x.Offset != o.Offset {
					same = false
				}
			})
			if same {
				return
			}
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("replication did not catch up: %v %v", s, d)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// snapshot is everything a dry run or a refused run must leave unchanged.
type snapshot struct {
	ACLs     []string
	Mappings []string
	Offsets  []string
}

func (r *rig) snapshot(ctx context.Context) snapshot {
	r.t.Helper()
	var s snapshot
	res, err := r.srcAdm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).
		Allow().Deny().AllowHosts().DenyHosts().Operations())
	if err == nil {
		for _, x := range res {
			for _, d := range x.Described {
				if r.real && d.Name != r.topic && d.Name != r.idle {
					continue // shared brokers: only this rig's topics
				}
				s.ACLs = append(s.ACLs, fmt.Sprintf("%v %s %v %s %s %v", d.Type, d.Name, d.Pattern, d.Principal, d.Host, d.Operation)+" "+d.Permission.String())
			}
		}
	} else {
		s.ACLs = []string{"describe: " + err.Error()}
	}
	sort.Strings(s.ACLs)
	for _, m := range r.reg.List() {
		s.Mappings = append(s.Mappings, m.UUID()+"="+string(m.State()))
	}
	for side, adm := range map[string]*kadm.Client{"source": r.srcAdm, "target": r.tgtAdm} {
		gs, err := adm.ListGroups(ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, g := range gs.Groups() {
			if r.real && !r.ownsGroup(g) {
				continue // shared brokers: only this rig's groups
			}
			o, err := adm.FetchOffsets(ctx, g)
			if err != nil {
				r.t.Fatal(err)
			}
			o.Each(func(x kadm.OffsetResponse) {
				s.Offsets = append(s.Offsets, fmt.Sprintf("%s %s %s/%d=%d", side, g, x.Topic, x.Partition, x.At))
			})
		}
	}
	sort.Strings(s.Offsets)
	return s
}

// appWrite writes one record to the source as the application user and
// returns the broker's answer.
func (r *rig) appWrite(ctx context.Context) error {
	// A plain producer: the probe needs no producer ID, and a slow shared
	// machine gets 15 s before a timeout hides the broker's answer.
	cl, err := r.pair.Source.NewAppClient(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(1),
		kgo.RecordDeliveryTimeout(15*time.Second), kgo.DisableIdempotentWrite())
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: r.topic, Value: []byte("probe")}).FirstErr()
}

// appRead reads the topic's first record and commits an offset for it as
// the application user, as a consumer does: the fence must never stop it.
func (r *rig) appRead(ctx context.Context) error {
	cl, err := r.pair.Source.NewAppClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return err
	}
	defer cl.Close()
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fs := cl.PollRecords(fctx, 1)
	if errs := fs.Errors(); len(errs) > 0 {
		return fmt.Errorf("reading %s: %w", r.topic, errs[0].Err)
	}
	recs := fs.Records()
	if len(recs) == 0 {
		return fmt.Errorf("reading %s: no record within 10s", r.topic)
	}
	resp, err := kadm.NewClient(cl).CommitOffsets(ctx, r.group+"-reader", kadm.OffsetsFromRecords(*recs[0]))
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("committing for %s: %w", r.group+"-reader", err)
	}
	return nil
}

// hookFunc adapts a Go func to a lambda.Handler for the endpoint.
func hookFunc(f func(ctx context.Context) error) lambda.Handler {
	return lambda.NewHandler(func(ctx context.Context, ev json.RawMessage) (map[string]string, error) {
		if err := f(ctx); err != nil {
			return nil, err
		}
		return map[string]string{"ok": "true"}, nil
	})
}

func lambdaHook(name string) map[string]any {
	return map[string]any{"type": "lambda", "functionArn": lambdaendpoint.FunctionArn(name)}
}

// HookRefusedError is a hook function's failure in tests.
type HookRefusedError struct{ Msg string }

func (e *HookRefusedError) Error() string { return e.Msg }

var errRejected = errors.New("operator rejected the approval")
