package cutoverrun

import (
	"reflect"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
)

// TestRealKafkaPreflight: the preflight's Kafka checks on real brokers
// (the deny-by-default SCRAM source under the standard authorizer): the
// superuser the cutover uses passes them all, including the right to
// create the fence's ACLs as the broker reports it (DescribeCluster's
// authorized operations); the application user, which holds topic and
// group ACLs but none on the cluster, fails DescribeAcls and the ACL
// creation check, each with its fix. Nothing changes.
func TestRealKafkaPreflight(t *testing.T) {
	r := newRealRig(t, 2)
	ctx := ctxFor(t, 3*time.Minute)
	r.produce(ctx, 0, 30, 2)
	r.waitReplicated(ctx)
	r.commitAppGroup(ctx)
	before := r.snapshot(ctx)

	rep := r.preflight(ctx, r.baseInput(), Options{})
	if !rep.Passed {
		t.Fatalf("healthy rig failed: %s", rep.Cause)
	}
	for _, name := range []string{"source cluster reachable", "source: list offsets", "source: describe configs", "source: describe groups",
		"source: describe ACLs", "source: create ACLs (fence acl)", "fence acl: plan", "group " + r.group + " on source",
		"mapping group kmig-replicator-" + r.topic + " on source"} {
		wantCheck(t, rep, name, cutover.CheckPass)
	}

	app := r.pair.Source.AppCredentials()
	rep = r.preflight(ctx, r.baseInput(), Options{SourceAs: &app})
	wantCheck(t, rep, "source: describe ACLs", cutover.CheckFail, "CLUSTER_AUTHORIZATION_FAILED", "--operation Describe --cluster")
	wantCheck(t, rep, "source: create ACLs (fence acl)", cutover.CheckFail, "ALTER", "--operation Alter --cluster")
	wantCheck(t, rep, "source: list offsets", cutover.CheckPass)

	wrong := kafkalocal.Credentials{User: r.pair.Source.AdminCredentials().User, Password: "not-the-password"}
	rep = r.preflight(ctx, r.baseInput(), Options{SourceAs: &wrong})
	wantCheck(t, rep, "source cluster reachable", cutover.CheckFail, "authentication failed", "SOURCE_SECRET_ARN")

	if after := r.snapshot(ctx); !reflect.DeepEqual(before, after) {
		t.Errorf("the preflight changed something:\nbefore %+v\nafter  %+v", before, after)
	}
}
