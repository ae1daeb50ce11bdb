package cutoverrun

// The real-Kafka tier of the cutover suites: the same test bodies as on
// kfake, through the ASL interpreter, on real Apache Kafka brokers
// (realkafka/): the fence is a real DENY WRITE ACL under the standard
// authorizer, and the numbered-message apps run on the real clusters. They
// run whenever Java (and, until the jars are cached, Maven) and the state
// machine tools are present; KMIG_REQUIRE_REAL_KAFKA=1 and
// KMIG_REQUIRE_TOOLS=1 make their absence a failure. -run RealKafka selects
// them.

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka"
)

// newRealRig is newRig on the shared real SOURCE (SCRAM, standard
// authorizer) and TARGET, with a topic, idle topic and group unique to the
// rig. Its topics are deleted at cleanup if the test passed.
func newRealRig(t *testing.T, partitions int32) *rig {
	t.Helper()
	return newRealProfileRig(t, realkafka.ProfileDenyByDefault, partitions)
}

// newRealProfileRig is newRealRig on source profile p, whose cutover input
// fields (fence kind and the like) baseInput carries.
func newRealProfileRig(t *testing.T, p realkafka.Profile, partitions int32, opts ...rigOption) *rig {
	t.Helper()
	root := requireTools(t)
	pair := realkafka.ProfilePair(t, p)
	prefix := "kmig-cut-" + strings.ToLower(strings.TrimPrefix(t.Name(), "TestRealKafka"))
	prefix = strings.NewReplacer("/", "-", "_", "-").Replace(prefix)
	r := &rig{t: t, root: root, pair: pair, real: true, input: p.CutoverInput(),
		topic: realkafka.UniqueName(prefix + ".orders"),
		idle:  realkafka.UniqueName(prefix + ".payments"),
		group: realkafka.UniqueName(prefix + ".billing"),
	}
	for _, o := range opts {
		o(r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pair.Source.CreateTopics(ctx, kafkalocal.Topic{Name: r.topic, Partitions: partitions}, kafkalocal.Topic{Name: r.idle, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if err := pair.Target.CreateTopics(ctx, kafkalocal.Topic{Name: r.tgtTopic(), Partitions: partitions}, kafkalocal.Topic{Name: r.idle, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			return // left for a look
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = r.srcAdm.DeleteTopics(ctx, r.topic, r.idle)
		_, _ = r.tgtAdm.DeleteTopics(ctx, r.tgtTopic(), r.idle)
	})
	r.setup()
	return r
}

// ownsGroup reports whether group g belongs to this rig: the application
// group or one of its mappings' groups.
func (r *rig) ownsGroup(g string) bool {
	return g == r.group || g == "kmig-replicator-"+r.topic || g == "kmig-replicator-"+r.idle
}

// TestRealKafkaHappyPath: the whole cutover through the interpreter on real
// brokers, with the numbered-message apps: the app user's write is denied
// with TOPIC_AUTHORIZATION_FAILED while fenced, and every number produced
// is consumed exactly once across the switch.
func TestRealKafkaHappyPath(t *testing.T) {
	const partitions = 3
	testHappyPath(t, newRealRig(t, partitions), partitions)
}

// TestRealKafkaDryRunChangesNothing: the plan, and no change to this rig's
// ACLs, mappings and offsets on the real brokers.
func TestRealKafkaDryRunChangesNothing(t *testing.T) {
	testDryRunChangesNothing(t, newRealRig(t, 2))
}

// TestRealKafkaLaggingGroup: exact translation of a lagging group after a
// real DeleteRecords moved the source's log start.
func TestRealKafkaLaggingGroup(t *testing.T) { testLaggingGroup(t, newRealRig(t, 2)) }

// TestRealKafkaRollbackFromEveryStep: every rollback path removes the real
// fence ACL, leaves the operator's ACLs, and the app user can write again.
func TestRealKafkaRollbackFromEveryStep(t *testing.T) {
	testRollbackFromEveryStep(t, newRealRig(t, 2))
}

// TestRealKafkaDrainTimeoutRollsBack: a drain that cannot finish rolls back.
func TestRealKafkaDrainTimeoutRollsBack(t *testing.T) {
	testDrainTimeoutRollsBack(t, newRealRig(t, 2))
}

// TestRealKafkaOpenSourceHappyPath: on an open source (authorizer on,
// allow.everyone.if.no.acl.found=true, an app user with no ACLs) the fence
// adds ALLOW ALL beside the DENY WRITE: while it stands the app user's
// writes are refused and its reads and offset commits go on, and the
// numbered messages are read exactly once across the switch.
func TestRealKafkaOpenSourceHappyPath(t *testing.T) {
	const partitions = 3
	testHappyPath(t, newRealProfileRig(t, realkafka.ProfileOpen, partitions), partitions)
}

// TestRealKafkaOpenSourceRollback: a run that fails after fencing an open
// source removes exactly the DENY and the ALLOW it added, and the app user
// (no ACLs) can write and read again.
func TestRealKafkaOpenSourceRollback(t *testing.T) {
	r := newRealProfileRig(t, realkafka.ProfileOpen, 2)
	ctx := ctxFor(t, 2*time.Minute)
	r.produce(ctx, 0, 20, 2)
	r.waitReplicated(ctx)
	before := r.snapshot(ctx)
	var readErr error
	res := r.run(ctx, r.baseInput(), Options{Fault: func(step string) bool {
		if step == "WaitForDrain" {
			readErr = r.appRead(ctx) // fenced: reads must still work
			return true
		}
		return false
	}})
	if res.Status != "FAILED" || res.Error != "InjectedFaultError" {
		t.Fatalf("status %s %s: %s", res.Status, res.Error, res.Cause)
	}
	if readErr != nil {
		t.Errorf("app user read while fenced: %v", readErr)
	}
	for _, want := range []string{"removed DENY WRITE User:* on topic " + r.topic, "removed ALLOW ALL User:* on topic " + r.topic} {
		if !strings.Contains(res.Cause, want) {
			t.Errorf("cause lacks %q: %s", want, res.Cause)
		}
	}
	// KRaft applies ACL changes asynchronously; the rollback read them
	// back, so the snapshot and the app user must see the source as before.
	if after := r.snapshot(ctx); !reflect.DeepEqual(before.ACLs, after.ACLs) {
		t.Errorf("ACLs changed:\nbefore %v\nafter  %v", before.ACLs, after.ACLs)
	}
	if err := r.appWrite(ctx); err != nil {
		t.Errorf("app user write after rollback: %v", err)
	}
	if err := r.appRead(ctx); err != nil {
		t.Errorf("app user read after rollback: %v", err)
	}
}

// TestRealKafkaNoAuthorizer: on a source without an authorizer fence acl
// stops in Validate, and fence none migrates with the report saying the
// source was not fenced.
func TestRealKafkaNoAuthorizer(t *testing.T) {
	testSourceWithoutAuthorizer(t, newRealProfileRig(t, realkafka.ProfileNoAuthorizer, 2))
}

// TestRealKafkaTransactionalSource: TestTransactionalSource on real brokers,
// whose transaction coordinator writes the markers and whose read_committed
// fetches stop at the last stable offset.
func TestRealKafkaTransactionalSource(t *testing.T) {
	for _, iso := range []esm.Isolation{esm.ReadUncommitted, esm.ReadCommitted} {
		t.Run(string(iso), func(t *testing.T) {
			testTransactionalCutover(t, newRealProfileRig(t, realkafka.ProfileDenyByDefault, 3, withIsolation(iso)), 3)
		})
	}
}
