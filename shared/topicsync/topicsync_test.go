package topicsync

import (
	"context"
	"errors"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/topicsync/topicsynctest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func init() { settle = 10 * time.Millisecond }

// cluster starts a kfake cluster and returns an admin client for it.
func cluster(t *testing.T, opts ...kfake.Opt) *kadm.Client {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return adminFor(t, c.ListenAddrs())
}

func adminFor(t *testing.T, addrs []string, extra ...kgo.Opt) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.MetadataMinAge(50 * time.Millisecond)}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func partitions(t *testing.T, cl *kadm.Client, topic string) int {
	t.Helper()
	td, err := cl.ListTopics(context.Background(), topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("listing %s: %v %v", topic, err, td[topic].Err)
	}
	return len(td[topic].Partitions)
}

func TestApplyCreatesTopicsWithPartitionsAndConfigs(t *testing.T) {
	ctx := context.Background()
	src, tgt := cluster(t), cluster(t)
	topicsynctest.CreateTopic(t, src, "orders", 6, map[string]string{
		"retention.ms": "3600000", "cleanup.policy": "compact,delete", "min.insync.replicas": "2",
		"compression.type": "zstd", "segment.ms": "600000", "max.message.bytes": "2000000",
		"delete.retention.ms": "1000",
	})
	topicsynctest.CreateTopic(t, src, "payments", 3, nil)

	res, err := Apply(ctx, src, tgt, Options{Topics: []string{"orders", "payments"}, TargetOnlyTopics: []string{"kmig.dead-letter"}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := strings.Join(res.TopicsCreated, ","); got != "orders,payments,kmig.dead-letter" {
		t.Errorf("created %q", got)
	}
	for topic, want := range map[string]int{"orders": 6, "payments": 3, "kmig.dead-letter": 6} {
		if got := partitions(t, tgt, topic); got != want {
			t.Errorf("%s: %d partitions, want %d", topic, got, want)
		}
	}
	for key, want := range map[string]string{
		"retention.ms": "3600000", "cleanup.policy": "compact,delete", "compression.type": "zstd",
		"segment.ms": "600000", "max.message.bytes": "2000000", "delete.retention.ms": "1000",
		// capped: the one-broker target gives replication factor 1
		"min.insync.replicas":    "1",
		"message.timestamp.type": "CreateTime",
	} {
		if got := topicsynctest.Config(t, tgt, "orders", key); got != want {
			t.Errorf("orders %s = %q, want %q", key, got, want)
		}
	}
	if !res.Final.InSync() {
		t.Errorf("final plan not in sync: %v", res.Final.Pending())
	}

	// Re-running is a no-op, and Check agrees without changing anything.
	again, err := Apply(ctx, src, tgt, Options{Topics: []string{"orders", "payments"}, TargetOnlyTopics: []string{"kmig.dead-letter"}})
	if err != nil || again.Changed() {
		t.Fatalf("re-run: changed=%v err=%v (%v)", again.Changed(), err, again.Planned.Pending())
	}
	plan, err := Check(ctx, src, tgt, Options{Topics: []string{"orders", "payments"}})
	if err != nil || plan.Verify() != nil {
		t.Fatalf("Check: %v / %v", err, plan.Verify())
	}
}

func TestCheckReportsDriftWithoutChanging(t *testing.T) {
	ctx := context.Background()
	src, tgt := cluster(t), cluster(t)
	topicsynctest.CreateTopic(t, src, "orders", 4, map[string]string{"retention.ms": "1000"})
	topicsynctest.CreateTopic(t, tgt, "orders", 2, map[string]string{"retention.ms": "5000"})

	plan, err := Check(ctx, src, tgt, Options{Topics: []string{"orders"}})
	if err != nil {
		t.Fatal(err)
	}
	var nis *NotInSyncError
	if err := plan.Verify(); !errors.As(err, &nis) {
		t.Fatalf("Verify = %v, want *NotInSyncError", err)
	}
	joined := strings.Join(nis.Pending, "\n")
	for _, want := range []string{`add 2 partitions to topic "orders" (2 -> 4)`, `set retention.ms=1000 on topic "orders" (now 5000)`} {
		if !strings.Contains(joined, want) {
			t.Errorf("pending %q lacks %q", joined, want)
		}
	}
	if partitions(t, tgt, "orders") != 2 || topicsynctest.Config(t, tgt, "orders", "retention.ms") != "5000" {
		t.Fatal("Check changed the target")
	}

	res, err := Apply(ctx, src, tgt, Options{Topics: []string{"orders"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.PartitionsAdded["orders"] != 2 || partitions(t, tgt, "orders") != 4 {
		t.Errorf("partitions added %v, now %d", res.PartitionsAdded, partitions(t, tgt, "orders"))
	}
	if got := topicsynctest.Config(t, tgt, "orders", "retention.ms"); got != "1000" {
		t.Errorf("retention.ms = %s", got)
	}
}

func TestApplyRefusesTargetWithMorePartitions(t *testing.T) {
	ctx := context.Background()
	src, tgt := cluster(t), cluster(t)
	topicsynctest.CreateTopic(t, src, "orders", 4, nil)
	topicsynctest.CreateTopic(t, src, "payments", 2, nil)
	topicsynctest.CreateTopic(t, tgt, "orders", 8, nil)

	res, err := Apply(ctx, src, tgt, Options{Topics: []string{"orders", "payments"}})
	var tm *TooManyPartitionsError
	if !errors.As(err, &tm) {
		t.Fatalf("err = %v, want *TooManyPartitionsError", err)
	}
	if tm.Topic != "orders" || tm.SourcePartitions != 4 || tm.TargetPartitions != 8 {
		t.Errorf("got %+v", tm)
	}
	if !strings.Contains(err.Error(), `topic "orders": target has 8 partitions but source has 4`) {
		t.Errorf("message %q", err)
	}
	if res.Changed() {
		t.Error("Apply changed the target although a topic was refused")
	}
	if td, _ := tgt.ListTopics(ctx, "payments"); td.Has("payments") && td["payments"].Err == nil {
		t.Error("payments was created although orders was refused")
	}
}

func TestCheckMissingSourceTopic(t *testing.T) {
	src, tgt := cluster(t), cluster(t)
	plan, err := Check(context.Background(), src, tgt, Options{Topics: []string{"nope"}})
	if err != nil {
		t.Fatal(err)
	}
	var se *SourceTopicError
	if !errors.As(plan.Err(), &se) || se.Topic != "nope" {
		t.Fatalf("Err = %v, want *SourceTopicError for nope", plan.Err())
	}
}

func TestLogAppendTimeSourceKeepsCreateTimeOnTarget(t *testing.T) {
	ctx := context.Background()
	src, tgt := cluster(t), cluster(t)
	topicsynctest.CreateTopic(t, src, "clicks", 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	res, err := Apply(ctx, src, tgt, Options{Topics: []string{"clicks"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := topicsynctest.Config(t, tgt, "clicks", "message.timestamp.type"); got != "CreateTime" {
		t.Errorf("target message.timestamp.type = %s", got)
	}
	if notes := strings.Join(res.Planned.Topics[0].Notes, " "); !strings.Contains(notes, "LogAppendTime") {
		t.Errorf("no note about LogAppendTime: %q", notes)
	}
}

func TestConfigOverridesWin(t *testing.T) {
	ctx := context.Background()
	src, tgt := cluster(t), cluster(t)
	topicsynctest.CreateTopic(t, src, "orders", 1, map[string]string{"retention.ms": "1000"})
	if _, err := Apply(ctx, src, tgt, Options{Topics: []string{"orders"}, ConfigOverrides: map[string]string{"retention.ms": "86400000"}}); err != nil {
		t.Fatal(err)
	}
	if got := topicsynctest.Config(t, tgt, "orders", "retention.ms"); got != "86400000" {
		t.Errorf("retention.ms = %s", got)
	}
}

func TestCopyACLsFollowsMirrorMakerRules(t *testing.T) {
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-256", "admin", "admin-pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	src := adminFor(t, c.ListenAddrs(), kgo.SASL(scram.Auth{User: "admin", Pass: "admin-pw"}.AsSha256Mechanism()))
	tgt := cluster(t)
	topicsynctest.CreateTopic(t, src, "orders", 1, nil)

	for _, b := range []*kadm.ACLBuilder{
		kadm.NewACLs().Topics("orders").Allow("User:alice").Operations(kadm.OpRead, kadm.OpDescribe),
		kadm.NewACLs().Topics("orders").Allow("User:bob").Operations(kadm.OpWrite),
		kadm.NewACLs().Topics("orders").Allow("User:carol").Operations(kadm.OpAll),
		kadm.NewACLs().Topics("orders").Deny("User:mallory").Operations(kadm.OpRead),
		kadm.NewACLs().Topics("ord").ResourcePatternType(kadm.ACLPatternPrefixed).Allow("User:dave").Operations(kadm.OpRead),
	} {
		if _, err := src.CreateACLs(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Apply(ctx, src, tgt, Options{Topics: []string{"orders"}, CopyACLs: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Planned.SkippedACLs != 1 {
		t.Errorf("skipped %d ACLs, want 1 (the WRITE)", res.Planned.SkippedACLs)
	}
	got, err := describeTopicACLs(ctx, tgt, []string{"orders", "ord"})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, a := range got {
		lines = append(lines, a.Permission.String()+" "+a.Principal+" "+a.Operation.String())
	}
	want := map[string]bool{
		"ALLOW User:alice READ": true, "ALLOW User:alice DESCRIBE": true,
		"ALLOW User:carol READ": true, "DENY User:mallory READ": true,
	}
	if len(lines) != len(want) {
		t.Fatalf("target ACLs %v, want %v", lines, want)
	}
	for _, l := range lines {
		if !want[l] {
			t.Errorf("unexpected target ACL %q", l)
		}
	}
	again, err := Apply(ctx, src, tgt, Options{Topics: []string{"orders"}, CopyACLs: true})
	if err != nil || again.Changed() {
		t.Fatalf("re-run changed=%v err=%v", again.Changed(), err)
	}
}

// TestCopyACLsLeavesTheFence: the cutover's fence on an open source (DENY
// WRITE and ALLOW ALL for User:*) is never copied; an operator's ALLOW ALL
// for User:* on an unfenced topic still is, as ALLOW READ.
func TestCopyACLsLeavesTheFence(t *testing.T) {
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-256", "admin", "admin-pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	src := adminFor(t, c.ListenAddrs(), kgo.SASL(scram.Auth{User: "admin", Pass: "admin-pw"}.AsSha256Mechanism()))
	tgt := cluster(t)
	topicsynctest.CreateTopic(t, src, "fenced", 1, nil)
	topicsynctest.CreateTopic(t, src, "open", 1, nil)
	for _, b := range []*kadm.ACLBuilder{
		kadm.NewACLs().Topics("fenced").Deny("User:*").DenyHosts("*").Operations(kadm.OpWrite),
		kadm.NewACLs().Topics("fenced").Allow("User:*").AllowHosts("*").Operations(kadm.OpAll),
		kadm.NewACLs().Topics("fenced").Allow("User:erin").AllowHosts("*").Operations(kadm.OpRead),
		kadm.NewACLs().Topics("open").Allow("User:*").AllowHosts("*").Operations(kadm.OpAll),
	} {
		if _, err := src.CreateACLs(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Apply(ctx, src, tgt, Options{Topics: []string{"fenced", "open"}, CopyACLs: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Planned.SkippedACLs != 2 {
		t.Errorf("skipped %d ACLs, want 2 (the fence pair)", res.Planned.SkippedACLs)
	}
	got, err := describeTopicACLs(ctx, tgt, []string{"fenced", "open"})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, a := range got {
		lines = append(lines, a.Topic+" "+a.Permission.String()+" "+a.Principal+" "+a.Operation.String())
	}
	sort.Strings(lines)
	if want := []string{"fenced ALLOW User:erin READ", "open ALLOW User:* READ"}; !slices.Equal(lines, want) {
		t.Errorf("target ACLs %v, want %v", lines, want)
	}
}

func TestTranslateACL(t *testing.T) {
	for _, tc := range []struct {
		in     ACL
		wantOp kadm.ACLOperation
		ok     bool
	}{
		{ACL{Operation: kadm.OpWrite, Permission: kmsg.ACLPermissionTypeAllow}, kadm.OpWrite, false},
		{ACL{Operation: kadm.OpWrite, Permission: kmsg.ACLPermissionTypeDeny}, kadm.OpWrite, false},
		{ACL{Operation: kadm.OpAll, Permission: kmsg.ACLPermissionTypeAllow}, kadm.OpRead, true},
		{ACL{Operation: kadm.OpAll, Permission: kmsg.ACLPermissionTypeDeny}, kadm.OpAll, true},
		{ACL{Operation: kadm.OpDescribe, Permission: kmsg.ACLPermissionTypeAllow}, kadm.OpDescribe, true},
	} {
		out, ok := TranslateACL(tc.in)
		if ok != tc.ok || (ok && out.Operation != tc.wantOp) {
			t.Errorf("TranslateACL(%v) = %v, %v", tc.in, out, ok)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  Options
		field string
	}{
		{"no topics", Options{}, "Topics"},
		{"bad name", Options{Topics: []string{"a b"}}, "Topics"},
		{"dot", Options{Topics: []string{".."}}, "Topics"},
		{"duplicate", Options{Topics: []string{"a", "a"}}, "Topics"},
		{"dead letter duplicates topic", Options{Topics: []string{"a"}, TargetOnlyTopics: []string{"a"}}, "Topics"},
		{"unknown override", Options{Topics: []string{"a"}, ConfigOverrides: map[string]string{"unclean.leader.election.enable": "true"}}, "ConfigOverrides"},
		{"empty override", Options{Topics: []string{"a"}, ConfigOverrides: map[string]string{"retention.ms": " "}}, "ConfigOverrides"},
		{"bad rf", Options{Topics: []string{"a"}, ReplicationFactor: -2}, "ReplicationFactor"},
		{"ok", Options{Topics: []string{"a.b_c-1"}, ConfigOverrides: map[string]string{"retention.ms": "1"}}, ""},
		{"rename onto another topic", Options{Topics: []string{"a", "b"}, Renames: map[string]string{"a": "b"}}, "Renames"},
		{"rename onto the dead-letter topic", Options{Topics: []string{"a"}, TargetOnlyTopics: []string{"dlq"}, Renames: map[string]string{"a": "dlq"}}, "Renames"},
		{"rename to an illegal name", Options{Topics: []string{"a"}, Renames: map[string]string{"a": "x/y"}}, "Renames"},
		{"rename swap", Options{Topics: []string{"a", "b"}, Renames: map[string]string{"a": "b", "b": "a"}}, ""},
		{"rename ok", Options{Topics: []string{"legacy.orders", "payments"}, Renames: map[string]string{"legacy.orders": "orders"}}, ""},
	} {
		err := tc.opts.Validate()
		var oe *OptionsError
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.As(err, &oe) || oe.Field != tc.field {
			t.Errorf("%s: err = %v, want *OptionsError on %s", tc.name, err, tc.field)
		}
	}
}

// TestApplyRenamedTopic: a renamed topic is created on the target under
// its target name, with the source topic's partition count and configs and
// its ACLs; no topic of the source name appears on the target, and Check
// then finds the pair in sync.
func TestApplyRenamedTopic(t *testing.T) {
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-256", "admin", "admin-pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	src := adminFor(t, c.ListenAddrs(), kgo.SASL(scram.Auth{User: "admin", Pass: "admin-pw"}.AsSha256Mechanism()))
	tgt := cluster(t)
	topicsynctest.CreateTopic(t, src, "legacy.orders", 5, map[string]string{"retention.ms": "3600000", "cleanup.policy": "compact"})
	topicsynctest.CreateTopic(t, src, "payments", 2, nil)
	if _, err := src.CreateACLs(ctx, kadm.NewACLs().Topics("legacy.orders").Allow("User:alice").Operations(kadm.OpRead)); err != nil {
		t.Fatal(err)
	}
	opts := Options{Topics: []string{"legacy.orders", "payments"}, CopyACLs: true, Renames: map[string]string{"legacy.orders": "orders"}}
	res, err := Apply(ctx, src, tgt, opts)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := strings.Join(res.TopicsCreated, ","); got != "orders,payments" {
		t.Errorf("created %q, want orders,payments", got)
	}
	if got := topicsynctest.Partitions(t, tgt, "orders"); got != 5 {
		t.Errorf("orders has %d partitions, want 5", got)
	}
	if got := topicsynctest.Partitions(t, tgt, "legacy.orders"); got != 0 {
		t.Errorf("the source name legacy.orders exists on the target with %d partitions", got)
	}
	for key, want := range map[string]string{"retention.ms": "3600000", "cleanup.policy": "compact", "message.timestamp.type": "CreateTime"} {
		if got := topicsynctest.Config(t, tgt, "orders", key); got != want {
			t.Errorf("orders %s = %q, want %q", key, got, want)
		}
	}
	acls, err := describeTopicACLs(ctx, tgt, []string{"orders", "legacy.orders"})
	if err != nil {
		t.Fatal(err)
	}
	if len(acls) != 1 || acls[0].Topic != "orders" || acls[0].Principal != "User:alice" || acls[0].Operation != kadm.OpRead {
		t.Errorf("target ACLs %v, want ALLOW User:alice READ on orders", acls)
	}
	if len(res.Planned.Topics) != 2 || res.Planned.Topics[0].Topic != "legacy.orders" || res.Planned.Topics[0].TargetTopic != "orders" {
		t.Errorf("plan topics %+v", res.Planned.Topics)
	}
	again, err := Apply(ctx, src, tgt, opts)
	if err != nil || again.Changed() {
		t.Fatalf("re-run changed=%v err=%v (%v)", again.Changed(), err, again.Planned.Pending())
	}

	// Drift on the renamed topic is reported by its target name.
	if _, err := tgt.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("1000")}}, "orders"); err != nil {
		t.Fatal(err)
	}
	plan, err := Check(ctx, src, tgt, opts)
	if err != nil {
		t.Fatal(err)
	}
	var nis *NotInSyncError
	if err := plan.Verify(); !errors.As(err, &nis) || len(nis.Pending) != 1 ||
		nis.Pending[0] != `set retention.ms=3600000 on topic "orders" (renamed from source topic "legacy.orders") (now 1000)` {
		t.Errorf("Verify = %v", err)
	}

	// A target topic of the target name with more partitions is refused,
	// naming both names.
	topicsynctest.CreateTopic(t, src, "legacy.audit", 1, nil)
	topicsynctest.CreateTopic(t, tgt, "audit", 3, nil)
	_, err = Apply(ctx, src, tgt, Options{Topics: []string{"legacy.audit"}, Renames: map[string]string{"legacy.audit": "audit"}})
	var tm *TooManyPartitionsError
	if !errors.As(err, &tm) || tm.TargetTopic != "audit" || !strings.Contains(err.Error(), `"legacy.audit" (target "audit")`) {
		t.Errorf("Apply = %v, want *TooManyPartitionsError naming both names", err)
	}
}
