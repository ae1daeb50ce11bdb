package reconcilerun

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/topicsync/topicsynctest"
)

func TestNewTopicArrivesComplete(t *testing.T) { scenarioNewTopic(t, kfakePair(t), "t1") }

func TestPartitionsAddedSeededBeforeMappingNotices(t *testing.T) {
	for _, late := range []bool{false, true} {
		name := map[bool]string{false: "from-start", true: "from-end"}[late]
		t.Run(name, func(t *testing.T) { scenarioPartitions(t, kfakePair(t), "t2", late, true) })
	}
}

func TestPartitionsAddedMappingNoticesFirst(t *testing.T) {
	t.Run("from-start", func(t *testing.T) { scenarioPartitions(t, kfakePair(t), "t3", false, false) })
	t.Run("from-end-gap-reported", func(t *testing.T) { scenarioPartitions(t, kfakePair(t), "t3", true, false) })
}

func TestPatternChangeAddsTopics(t *testing.T) { scenarioPatternChange(t, kfakePair(t), "t4") }

func TestDeletedSourceTopicReported(t *testing.T) { scenarioDeleted(t, kfakePair(t), "t5") }

func TestSteadyState(t *testing.T) { scenarioSteady(t, kfakePair(t), "t6") }

func TestDisabledMappingNeverEnabled(t *testing.T) { scenarioDisabled(t, kfakePair(t), "t7") }

// Under Lambda's control plane rate (TooManyRequestsException above it),
// a run creating many mappings backs off and still creates every one.
func TestThrottledRunCreatesEveryMapping(t *testing.T) {
	pair := kfakePair(t)
	var topics []string
	for i := range 12 {
		tp := fmt.Sprintf("t8.rate.%02d", i)
		topics = append(topics, tp)
		createTopic(t, pair.Source, tp, 1)
	}
	r := startRig(t, Options{Pair: pair, Env: env("t8", ".*"), ControlPlaneRate: 4})
	rep := run(t, r)
	if !slices.Equal(rep.MappingsCreated, topics) {
		t.Fatalf("created %v, want %v", rep.MappingsCreated, topics)
	}
	if n := r.Endpoint.Errors("TooManyRequestsException"); n == 0 {
		t.Fatal("no call was throttled: the test does not exercise the backoff")
	}
}

// A topic whose consumer group ID Lambda would refuse (over 200
// characters) is reported and skipped; the others proceed.
func TestLongGroupIDSkippedOthersProceed(t *testing.T) {
	pair := kfakePair(t)
	long := "t9." + strings.Repeat("x", 200)
	createTopic(t, pair.Source, long, 1)
	createTopic(t, pair.Source, "t9.short", 1)
	r := startRig(t, Options{Pair: pair, Env: env("t9", ".*")})
	rep := run(t, r)
	if !slices.Equal(rep.MappingsCreated, []string{"t9.short"}) {
		t.Fatalf("created %v", rep.MappingsCreated)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].Topic != long || !strings.Contains(rep.Skipped[0].Reason, "over Lambda's ConsumerGroupId limit of 200") {
		t.Fatalf("skipped %+v", rep.Skipped)
	}
	if n := topicsynctest.Partitions(t, admin(t, pair.Target), long); n != 0 {
		t.Errorf("the skipped topic was created on the target")
	}
}

// AT_TIMESTAMP seeds a new group at the first offsets at the timestamp:
// records before it are not copied, the rest are, exactly.
func TestAtTimestampSeedsFromTheTimestamp(t *testing.T) {
	pair := kfakePair(t)
	topic := "t10.ts"
	createTopic(t, pair.Source, topic, 2)
	produce(t, pair.Source, topic, parts(2), 0, 10) // timestamps 1_700_000_000_000 + i ms
	e := env("t10", ".*")
	e[reconcile.EnvStartingPosition] = reconcile.AtTimestamp
	e[reconcile.EnvStartingPositionTime] = "1700000001" // after every record: offsets at the end
	r := startRig(t, Options{Pair: pair, Env: e})
	rep := run(t, r)
	want := []reconcile.PartitionOffset{{Topic: topic, Partition: 0, Offset: 10}, {Topic: topic, Partition: 1, Offset: 10}}
	if !slices.Equal(rep.PartitionsSeeded, want) {
		t.Fatalf("seeded %+v, want %+v", rep.PartitionsSeeded, want)
	}
}

// A mapping still Creating after MappingStartTimeout is reported as stuck,
// and not before. The reconciler's clock is the test's: it moves past the
// timeout without waiting for it.
func TestMappingStuckCreatingReported(t *testing.T) {
	pair := kfakePair(t)
	createTopic(t, pair.Source, "t11.slow", 1)
	var skew atomic.Int64 // how far the reconciler's clock is ahead
	const timeout = 10 * time.Minute
	r := startRig(t, Options{Pair: pair, Env: env("t11", ".*"), StartDelay: time.Hour,
		Options: reconcile.Options{MappingStartTimeout: timeout,
			Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}})
	run(t, r)
	if m := r.Mapping("t11.slow"); m == nil || m.State() != esm.StateCreating {
		t.Fatalf("mapping %v, want one Creating", m)
	}
	rep := run(t, r)
	for _, s := range rep.MappingsNotPolling {
		if s.Stuck {
			t.Fatalf("not polling %+v: a mapping Creating for less than %v reported stuck", rep.MappingsNotPolling, timeout)
		}
	}
	skew.Store(int64(timeout + time.Minute))
	rep = run(t, r)
	if len(rep.MappingsNotPolling) != 1 || !rep.MappingsNotPolling[0].Stuck || rep.MappingsNotPolling[0].State != reconcile.StateCreating {
		t.Fatalf("not polling %+v, want the mapping stuck in Creating", rep.MappingsNotPolling)
	}
}

// A mapping that reads Disabling and then Enabling for a while (AWS: up
// to 90 s) is awaited Disabled before its group is seeded, and its new
// partitions arrive complete.
func TestPartitionsAddedSlowTransition(t *testing.T) {
	scenarioPartitions(t, kfakePair(t), "t12", true, true, func(o *Options) { o.Transition = 400 * time.Millisecond })
}

// A group coordinator that is not available yet (a real cluster creating
// __consumer_offsets for its first group, a coordinator still loading)
// answers the run's commit fetch with a retriable error for the new
// topic's group; the run asks again and goes on, instead of failing until
// the next schedule.
func TestCoordinatorNotAvailableRetried(t *testing.T) {
	pair := kfakePair(t)
	createTopic(t, pair.Source, "t11.orders", 2)
	produce(t, pair.Source, "t11.orders", parts(2), 0, 10)
	// More refusals than the Kafka client's own retries (20) absorb: the
	// new cluster's coordinator takes seconds to come up.
	const refusals = 30
	var refused atomic.Int32
	kc := pair.Source.Kfake()
	kc.ControlKey(int16(kmsg.OffsetFetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		r := req.(*kmsg.OffsetFetchRequest)
		if len(r.Groups) == 0 || refused.Load() >= refusals {
			return nil, nil, false
		}
		refused.Add(1)
		resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
		for _, g := range r.Groups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group = g.Group
			rg.ErrorCode = kerr.CoordinatorNotAvailable.Code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil, true
	})
	r := startRig(t, Options{Pair: pair, Env: env("t11", ".*")})
	rep := run(t, r)
	if refused.Load() != refusals {
		t.Fatalf("%d commit fetches refused, want %d: the test does not exercise the retry", refused.Load(), refusals)
	}
	if !slices.Equal(rep.MappingsCreated, []string{"t11.orders"}) {
		t.Fatalf("created %v, want [t11.orders]", rep.MappingsCreated)
	}
	requireReplicated(t, r, "t11.orders", map[int32]int{0: 10, 1: 10})
}
