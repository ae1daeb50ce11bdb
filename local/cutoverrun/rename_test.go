package cutoverrun

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/verify"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
)

// TestRenamedTopic: the replicator renames legacy.orders to orders; the
// target holds every source record once, equal, under the new name, and
// the cutover (real ASL) translates the group's offsets exactly onto
// orders, where a consumer resumes at exactly the records it had not read.
func TestRenamedTopic(t *testing.T) {
	const partitions = 3
	testRenamedTopic(t, newRig(t, kafkalocal.SecuritySCRAMACL, partitions, withRename()), partitions)
}

// TestRealKafkaRenamedTopic is TestRenamedTopic on real brokers.
func TestRealKafkaRenamedTopic(t *testing.T) {
	const partitions = 3
	testRenamedTopic(t, newRealProfileRig(t, realkafka.ProfileDenyByDefault, partitions, withRename()), partitions)
}

func testRenamedTopic(t *testing.T, r *rig, partitions int32) {
	ctx := ctxFor(t, 120*time.Second)
	const records = 120 // record i goes to partition i % partitions

	// Source offsets and target offsets differ on partition 0: its first
	// 10 records are deleted on the source before they are replicated.
	// (An update waits until the mapping is created, as on AWS.)
	if err := r.mapping.WaitState(ctx, esm.StateEnabled); err != nil {
		t.Fatal(err)
	}
	if err := r.mapping.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	if err := r.mapping.WaitState(ctx, esm.StateDisabled); err != nil {
		t.Fatal(err)
	}
	r.produce(ctx, 0, records, partitions)
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: r.topic, Partition: 0, At: 10, LeaderEpoch: -1})
	if resp, err := r.srcAdm.DeleteRecords(ctx, del); err != nil || resp.Error() != nil {
		t.Fatalf("DeleteRecords: %v %v", err, resp.Error())
	}
	if err := r.mapping.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	perPartition := int64(records / partitions)
	wantEnd := map[int32]int64{0: perPartition - 10}
	for p := int32(1); p < partitions; p++ {
		wantEnd[p] = perPartition
	}
	r.waitTargetEnds(ctx, wantEnd)
	if err := r.mapping.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}

	// Every source record is on the renamed target topic once, equal.
	src, err := verify.ReadAll(ctx, r.pair.Source, r.topic)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := verify.ReadAll(ctx, r.pair.Target, r.tgtTopic())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, pr := range verify.Compare(src, dst, r.topic) {
		total += pr.Target
		if !pr.OK() {
			t.Errorf("partition %d: %+v", pr.Partition, pr)
		}
	}
	if total != records-10 {
		t.Errorf("target %s holds %d records, want %d", r.tgtTopic(), total, records-10)
	}

	// The group read partition 0 up to source offset 25, everything of
	// partition 1, and nothing of partition 2 yet.
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: r.topic, Partition: 0, At: 25, LeaderEpoch: -1})
	commit.Add(kadm.Offset{Topic: r.topic, Partition: 1, At: perPartition, LeaderEpoch: -1})
	commit.Add(kadm.Offset{Topic: r.topic, Partition: 2, At: 0, LeaderEpoch: -1})
	if resp, err := r.srcAdm.CommitOffsets(ctx, r.group, commit); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}

	l := newLedger()
	funcs := map[string]lambda.Handler{"start-consumers": hookFunc(func(context.Context) error {
		r.startConsumer(t, r.pair.Target, l)
		return nil
	})}
	in := r.baseInput()
	in["allowLaggingGroups"] = true
	in["hooks"] = map[string]any{"startConsumers": lambdaHook("start-consumers")}
	res := r.run(ctx, in, Options{Functions: funcs})
	if res.Status != "SUCCEEDED" || res.Report == nil {
		t.Fatalf("status %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	rep := res.Report
	if want := map[string]string{r.topic: r.tgtTopic()}; !maps.Equal(rep.Renames, want) {
		t.Errorf("report renames %v, want %v", rep.Renames, want)
	}
	for _, pr := range rep.Partitions {
		if pr.Topic != r.topic || pr.TargetTopic != r.tgtTopic() || pr.TargetEnd != wantEnd[pr.Partition] || pr.TargetTailSource != pr.SourceLast {
			t.Errorf("partition report %+v", pr)
		}
	}
	// Exact: source 25 is target 15 on partition 0 (10 deleted before
	// replication), the end on partition 1, and the first record on 2.
	want := map[int32][2]int64{0: {25, 15}, 1: {perPartition, perPartition}, 2: {0, 0}}
	if len(rep.Groups) != 1 || rep.Groups[0].Status != cutover.GroupTranslated || !rep.Groups[0].Verified || len(rep.Groups[0].Partitions) != int(partitions) {
		t.Fatalf("groups in report: %+v", rep.Groups)
	}
	for _, gp := range rep.Groups[0].Partitions {
		w := want[gp.Partition]
		if gp.Topic != r.topic || gp.TargetTopic != r.tgtTopic() || gp.SourceOffset != w[0] || gp.TargetOffset != w[1] {
			t.Errorf("translation %+v, want %s/%d source %d → %s target %d", gp, r.topic, gp.Partition, w[0], r.tgtTopic(), w[1])
		}
	}

	// The consumer on the target read exactly the records the group had
	// not read on the source, once each: zero lost, zero duplicated.
	unread := func(i int) bool {
		p, off := int32(i)%partitions, int64(i/int(partitions))
		return off >= want[p][0]
	}
	wantRead := 0
	for i := 0; i < records; i++ {
		if unread(i) {
			wantRead++
		}
	}
	eventually(30*time.Second, func() bool { return l.Distinct() >= wantRead }) // the checks below say what is missing
	for i := 0; i < records; i++ {
		w := 0
		if unread(i) {
			w = 1
		}
		if got := l.Times(i); got != w {
			t.Errorf("record %d (%s/%d) read %d times on %s, want %d", i, r.topic, int32(i)%partitions, got, r.tgtTopic(), w)
		}
	}
	// Nothing was committed for the source name on the target.
	o, err := r.tgtAdm.FetchOffsets(ctx, r.group)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o[r.topic]; ok {
		t.Errorf("offsets committed on the target for the source name %s: %v", r.topic, o[r.topic])
	}
	t.Logf("%d records replicated %s → %s; group translated %v", total, r.topic, r.tgtTopic(), rep.Groups[0].Partitions)
}

// waitTargetEnds waits until every partition of the target topic reaches
// its end offset in want.
func (r *rig) waitTargetEnds(ctx context.Context, want map[int32]int64) {
	r.t.Helper()
	for {
		l, err := r.tgtAdm.ListEndOffsets(ctx, r.tgtTopic())
		if err == nil {
			done := true
			for p, w := range want {
				if o, ok := l.Lookup(r.tgtTopic(), p); !ok || o.Offset < w {
					done = false
				}
			}
			if done {
				return
			}
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("target %s did not reach %v: %v", r.tgtTopic(), want, l)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
