package replicate

// The real-Kafka tier of the replicator suites: the same test bodies as on
// kfake, on real Apache Kafka brokers (realkafka/). They run whenever Java
// (and, until the jars are cached, Maven) is present, skip otherwise, and
// fail instead with KMIG_REQUIRE_REAL_KAFKA=1. -run RealKafka selects them.

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka"
)

// realEnv runs on the shared real SOURCE (SCRAM, standard authorizer; the
// replicator's mapping reads as the super user) and TARGET, with topic
// names unique to the run. With spare, the target is the spare broker
// instead, which the fault test stops and restarts (the shared TARGET is
// never stopped: other test binaries use it concurrently).
func realEnv(t *testing.T, spare bool) *env {
	t.Helper()
	pair := realkafka.Pair(t)
	if spare {
		realkafka.LockSpare(t)
		tgt, err := realkafka.Target(t, realkafka.Spare(t))
		if err != nil {
			t.Fatal(err)
		}
		pair = &kafkalocal.Pair{Source: pair.Source, Target: tgt}
		t.Cleanup(tgt.Close)
	}
	prefix := "kmig-" + strings.ToLower(strings.TrimPrefix(t.Name(), "TestRealKafka"))
	return &env{
		real:   true,
		unique: func(name string) string { return realkafka.UniqueName(prefix + "." + name) },
		// Real writes are slower than kfake's; no invocation of the
		// fidelity suites should time out (their counts assume none
		// does).
		invokeTimeout: 30 * time.Second,
		clusters: func(t *testing.T, src, tgt []kafkalocal.Topic) *kafkalocal.Pair {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := pair.Source.CreateTopics(ctx, src...); err != nil {
				t.Fatal(err)
			}
			if err := pair.Target.CreateTopics(ctx, tgt...); err != nil {
				t.Fatal(err)
			}
			// The brokers outlive the run: drop the topics of a passed test
			// (a failed test's stay, for a look).
			t.Cleanup(func() {
				if !t.Failed() {
					deleteTopics(pair.Source, src)
					deleteTopics(pair.Target, tgt)
				}
			})
			return pair
		},
	}
}

func TestRealKafkaFidelity(t *testing.T)     { testFidelity(t, realEnv(t, false)) }
func TestRealKafkaRenamedTopic(t *testing.T) { testRenamedTopic(t, realEnv(t, false)) }
func TestRealKafkaRetryAfterPartialWrite(t *testing.T) {
	testRetryAfterPartialWrite(t, realEnv(t, false))
}
func TestRealKafkaTransformsAndDeadLetters(t *testing.T) {
	testTransformsAndDeadLetters(t, realEnv(t, false))
}
func TestRealKafkaFailBatchPolicy(t *testing.T) { testFailBatchPolicy(t, realEnv(t, false)) }

// TestRealKafkaTargetRestarts is the fault suite with real faults: the
// target broker is stopped (once cleanly, once with SIGKILL) and restarted
// with the same config and data while the replicator runs. Invocations
// fail while it is down (their writes and dedup reads cannot complete
// within the invocation timeout) and the ESM emulator retries them; every
// record must land exactly once, in order, by provenance.
//
// The records carry CreateTime from 2023, as a migration's backfill does:
// older than the broker's producer.id.expiration.ms, so a restarted broker
// forgets the replicator's producer sequence state. Before the target
// client sent a partition's next batch only after the previous one was
// acknowledged (produceguard.Guard), that let a later batch land before
// a retried earlier one in about half the runs.
func TestRealKafkaTargetRestarts(t *testing.T) {
	e := realEnv(t, true)
	// Shorter than the outage, so the invocations caught in it fail and
	// are retried rather than wait it out.
	e.invokeTimeout = 2 * time.Second
	testFaultsExactlyOnce(t, e, 8, 12500, 2, restartTarget, 4*time.Minute) // 100,000 records
}

// restartTarget stops and restarts the spare target broker n times, each
// time once the replicator has written another 1/(n+1) of the records,
// keeping it down for outage.
func restartTarget(t *testing.T, r *rig, n int64) *atomic.Int64 {
	const outage = 3 * time.Second
	var fired atomic.Int64
	total := int64(0)
	// The records to replicate: the source topic's end offsets.
	for _, recs := range readAll(t, r.pair.Source, r.env.tn("events")) {
		total += int64(len(recs))
	}
	done := make(chan struct{})
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		<-done
		// Whatever happened, leave the spare running for the next test.
		if err := realkafka.StartBroker(realkafka.BrokerSpare); err != nil {
			t.Errorf("restarting the spare broker at cleanup: %v", err)
		}
	})
	go func() {
		defer close(done)
		for i := int64(1); i <= n; i++ {
			mark := total * i / (n + 1)
			for r.totals().RecordsWritten < mark {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
			kill := i%2 == 0
			start := time.Now()
			if err := realkafka.StopBroker(realkafka.BrokerSpare, kill); err != nil {
				t.Errorf("stopping the target: %v", err)
				return
			}
			fired.Add(1)
			stopped := time.Since(start)
			select {
			case <-stop:
				return
			case <-time.After(outage):
			}
			if err := realkafka.StartBroker(realkafka.BrokerSpare); err != nil {
				t.Errorf("restarting the target: %v", err)
				return
			}
			t.Logf("target restart %d (SIGKILL %v) at %d/%d records written: stop took %v, down %v in all",
				i, kill, r.totals().RecordsWritten, total, stopped.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		}
	}()
	return &fired
}

func deleteTopics(c *kafkalocal.Cluster, topics []kafkalocal.Topic) {
	adm, err := c.AdminClient()
	if err != nil {
		return
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var names []string
	for _, tp := range topics {
		names = append(names, tp.Name)
	}
	_, _ = adm.DeleteTopics(ctx, names...)
}

func TestRealKafkaTransactions(t *testing.T) { testTransactions(t, realEnv(t, false)) }

// Overlapping delivery on real brokers: the fence relies on Kafka's own
// InitProducerID semantics (older epochs fenced, their open transaction
// aborted before the call returns).
func TestRealKafkaOverlappingDelivery(t *testing.T) { testOverlappingDelivery(t, realEnv(t, false)) }
func TestRealKafkaOverlappingDeliveryZombieCommitsLate(t *testing.T) {
	testOverlappingDeliveryZombieCommitsLate(t, realEnv(t, false))
}
func TestRealKafkaOverlappingDeliveryUnfenced(t *testing.T) {
	testOverlappingDeliveryUnfenced(t, realEnv(t, false))
}
