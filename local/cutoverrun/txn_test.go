package cutoverrun

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/apps"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/offsets"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
)

// TestTransactionalSource: a topic written by a transactional producer
// (committed and aborted transactions, one held open across the mapping's
// batches) is cut over with the emulated poller at either isolation level.
// The application group, a read_committed consumer, ends past the last
// commit marker, so its committed offset is below the source end: the
// cutover must count it caught up and translate it to the target end, and
// every committed number is read exactly once across the switch.
func TestTransactionalSource(t *testing.T) {
	for _, iso := range []esm.Isolation{esm.ReadUncommitted, esm.ReadCommitted} {
		t.Run(string(iso), func(t *testing.T) {
			testTransactionalCutover(t, newRig(t, kafkalocal.SecuritySCRAMACL, 3, withIsolation(iso)), 3)
		})
	}
}

// testTransactionalCutover is TestTransactionalSource's body on r, whose
// topic has partitions partitions.
func testTransactionalCutover(t *testing.T, r *rig, partitions int32) {
	ctx := ctxFor(t, 3*time.Minute)
	l := newLedger()
	src := r.pair.Source
	// Seven numbers per transaction, every third transaction aborted. It
	// runs as the source's admin: the app user holds no transactional-ID
	// ACL.
	prod, err := apps.StartTxnProducer(src, src.AdminCredentials(), l, r.topic, partitions, r.topic+"-txn", 7, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Stop)
	cons := r.startConsumer(t, src, l)
	r.handed.on.Store(true)
	r.waitFlowing(ctx, l, 21, partitions)
	held, _, _ := l.Check()
	release, err := prod.Hold(ctx) // open while the mapping delivers batches
	if err != nil {
		t.Fatal(err)
	}
	r.waitDeliveredWhileOpen(ctx)
	release()
	// 14 more numbers committed: the held transaction ended, and another
	// committed after it.
	waitFor(t, time.Minute, "14 numbers to commit after the held transaction began", func() bool {
		n, _, _ := l.Check()
		return n >= held+14
	})

	sw := r.switchApps(t, l, partitions, func(context.Context) { cons.Stop() })
	funcs, in := sw.funcs, r.baseInput()
	in["hooks"] = sw.hooks()
	res := r.run(ctx, in, Options{Functions: funcs, Approve: func(context.Context, cutover.ApprovalMessage) error {
		prod.Stop() // aborts a transaction it has open
		return nil
	}})
	if res.Status != "SUCCEEDED" || res.Report == nil {
		t.Fatalf("status %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	if err := prod.Err(); err != nil {
		t.Fatalf("transactional producer failed before it was stopped: %v", err)
	}
	rep := res.Report
	ends := map[int32]cutover.PartitionReport{}
	for _, p := range rep.Partitions {
		ends[p.Partition] = p
		if p.TargetTailSource != p.SourceLast {
			t.Errorf("partition %d not drained: %+v", p.Partition, p)
		}
	}
	if len(rep.Groups) != 1 || rep.Groups[0].Status != cutover.GroupTranslated {
		t.Fatalf("groups in report: %+v", rep.Groups)
	}
	behindEnd := 0
	for _, gp := range rep.Groups[0].Partitions {
		if gp.SourceOffset < 0 {
			continue
		}
		if gp.SourceOffset < gp.SourceEnd {
			behindEnd++ // only markers (or aborted records) follow it
		}
		if gp.Method != string(offsets.CaughtUp) || gp.TargetOffset != ends[gp.Partition].TargetEnd {
			t.Errorf("partition %d: %+v, want caught-up at the target end %d", gp.Partition, gp, ends[gp.Partition].TargetEnd)
		}
	}
	if behindEnd == 0 {
		t.Error("no partition's committed offset was below its end: the test did not reach the case it is for")
	}
	produced, missing, dup := sw.finish(t, l)
	t.Logf("produced %d committed, consumed exactly once: missing %d, duplicated %d, uncommitted read %d", produced, missing, dup, l.Unproduced())
	if missing != 0 || dup != 0 || produced == 0 || l.Unproduced() != 0 {
		t.Errorf("produced %d, missing %d, duplicated %d, uncommitted numbers read %d", produced, missing, dup, l.Unproduced())
	}
	if errs := errors.Join(cons.Err()); errs != nil {
		t.Errorf("source consumer: %v", errs)
	}
}

// waitDeliveredWhileOpen waits, while a transaction is held open on the
// source, until the replicator's mapping has delivered every record it can
// read: at read_uncommitted, the open transaction's records are handed to
// the replicator (which holds them until the transaction ends); at
// read_committed, every committed record before the open transaction is
// delivered and committed.
func (r *rig) waitDeliveredWhileOpen(ctx context.Context) {
	r.t.Helper()
	cl, err := r.pair.Source.NewClient()
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	rd := peek.New(cl)
	var last esm.Lags
	ok := eventually(time.Minute, func() bool {
		lags, err := r.mapping.Lag(ctx)
		if err != nil {
			return false
		}
		last = lags
		open := false
		for _, p := range lags {
			open = open || p.Stable < p.End
			if r.isolation != esm.ReadCommitted {
				// The open transaction's last record handed over (the
				// batch stays in flight until the transaction ends).
				if p.Stable < p.End && r.handed.offset(p.Topic, p.Partition) < p.End-1 {
					return false
				}
				continue
			}
			// Every committed data record before the open transaction
			// delivered and committed (markers and aborted records may
			// follow the commit).
			sp := offsets.SourcePartition{Topic: p.Topic, Partition: p.Partition, Start: p.Start, End: p.Stable, Stable: p.Stable}
			if done, err := offsets.Consumed(ctx, rd, sp, p.Committed); err != nil || !done {
				return false
			}
		}
		if !open {
			r.t.Fatalf("no transaction is open on the source while one is held: %+v", lags)
		}
		return true
	})
	if !ok {
		r.t.Fatalf("waited a minute for the mapping to deliver every record it reads at %s while a transaction is open: %#v; stats %+v; last error %v", r.isolation, last, r.mapping.Stats(), r.mapping.LastError())
	}
	r.t.Logf("mapping lag while a transaction is open: %v", last)
}
