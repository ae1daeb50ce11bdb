package kafkalocal

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func startPair(t *testing.T, opts PairOptions) *Pair {
	t.Helper()
	p, err := StartPair(opts)
	if err != nil {
		t.Fatalf("StartPair: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func appClient(t *testing.T, c *Cluster) *kgo.Client {
	t.Helper()
	cl, err := c.NewAppClient(
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordRetries(2),
		kgo.RecordDeliveryTimeout(5*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func adminClient(t *testing.T, c *Cluster) *kadm.Client {
	t.Helper()
	adm, err := c.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adm.Close)
	return adm
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestFenceByDenyACL proves the source's authorizer is real: the app user
// produces, a DENY WRITE for User:* stops it with TOPIC_AUTHORIZATION_FAILED,
// and deleting exactly that ACL lets it produce again.
func TestFenceByDenyACL(t *testing.T) {
	const topic = "orders"
	p := startPair(t, PairOptions{Source: ClusterOptions{Topics: []Topic{{Name: topic, Partitions: 3}}}})
	ctx := ctxT(t)
	app := appClient(t, p.Source)
	adm := adminClient(t, p.Source)

	produce := func() error {
		return app.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 1, Value: []byte("v")}).FirstErr()
	}
	if err := produce(); err != nil {
		t.Fatalf("app produce before fence: %v", err)
	}

	deny := kadm.NewACLs().Allow().Deny("User:*").DenyHosts("*").
		Topics(topic).ResourcePatternType(kadm.ACLPatternLiteral).Operations(kadm.OpWrite)
	res, err := adm.CreateACLs(ctx, deny)
	if err != nil {
		t.Fatalf("CreateACLs: %v", err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("CreateACLs result: %v", r.Err)
		}
	}
	if err := produce(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("app produce while fenced: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	// The superuser (the migrator) is not fenced.
	if err := p.Source.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("admin")}); err != nil {
		t.Fatalf("superuser produce while fenced: %v", err)
	}

	delRes, err := adm.DeleteACLs(ctx, deny)
	if err != nil {
		t.Fatalf("DeleteACLs: %v", err)
	}
	var deleted int
	for _, r := range delRes {
		if r.Err != nil {
			t.Fatalf("DeleteACLs result: %v", r.Err)
		}
		deleted += len(r.Deleted)
	}
	if deleted != 1 {
		t.Fatalf("deleted %d ACLs, want exactly 1", deleted)
	}
	if err := produce(); err != nil {
		t.Fatalf("app produce after unfence: %v", err)
	}
}

// TestAppUserIsNotAdmin proves the app user is subject to the authorizer:
// it cannot administer ACLs.
func TestAppUserIsNotAdmin(t *testing.T) {
	p := startPair(t, PairOptions{})
	ctx := ctxT(t)
	cl := appClient(t, p.Source)
	adm := kadm.NewClient(cl)
	res, err := adm.CreateACLs(ctx, kadm.NewACLs().Deny("User:*").Topics("x").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	if err == nil {
		for _, r := range res {
			err = errors.Join(err, r.Err)
		}
	}
	if !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("app CreateACLs: got %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
}

// TestNoAuthorizer proves a source without authorizer behaves like a real
// broker without one: ACL calls fail with SECURITY_DISABLED, producing needs
// no credentials, and the SASL variant still requires them.
func TestNoAuthorizer(t *testing.T) {
	for _, tc := range []struct {
		name string
		sec  Security
		sasl bool
	}{
		{"plaintext", SecurityPlaintext, false},
		{"scram-no-acl", SecuritySCRAMNoACL, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPair(t, PairOptions{Source: ClusterOptions{Security: tc.sec, Topics: []Topic{{Name: "t", Partitions: 2}}}})
			if p.Source.SASL() != tc.sasl || p.Source.ACLsEnforced() {
				t.Fatalf("SASL()=%v ACLsEnforced()=%v", p.Source.SASL(), p.Source.ACLsEnforced())
			}
			ctx := ctxT(t)
			adm := adminClient(t, p.Source)
			acl := kadm.NewACLs().Deny("User:*").DenyHosts("*").Topics("t").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)
			res, err := adm.CreateACLs(ctx, acl)
			if err == nil {
				for _, r := range res {
					err = errors.Join(err, r.Err)
				}
			}
			if !errors.Is(err, kerr.SecurityDisabled) {
				t.Fatalf("CreateACLs: got %v, want SECURITY_DISABLED", err)
			}
			dres, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().Deny().AllowHosts().DenyHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
			if err == nil {
				for _, r := range dres {
					err = errors.Join(err, r.Err)
				}
			}
			if !errors.Is(err, kerr.SecurityDisabled) {
				t.Fatalf("DescribeACLs: got %v, want SECURITY_DISABLED", err)
			}
			// App produces even "after" the failed fence.
			app := appClient(t, p.Source)
			if err := app.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		})
	}
}

// TestTargetPlaintextAndSeeding proves the target needs no credentials and
// that seeded topics have the asked partition counts on both clusters.
func TestTargetPlaintextAndSeeding(t *testing.T) {
	p := startPair(t, PairOptions{
		Source: ClusterOptions{Topics: []Topic{{Name: "a", Partitions: 4}, {Name: "b"}}},
		Target: ClusterOptions{Topics: []Topic{{Name: "a", Partitions: 4}}},
	})
	ctx := ctxT(t)
	if p.Target.SASL() || p.Target.ACLsEnforced() {
		t.Fatal("target must be plaintext without authorizer")
	}
	for _, tc := range []struct {
		c    *Cluster
		want map[string]int
	}{
		{p.Source, map[string]int{"a": 4, "b": 1}},
		{p.Target, map[string]int{"a": 4}},
	} {
		adm := adminClient(t, tc.c)
		tds, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatalf("%s ListTopics: %v", tc.c.Name(), err)
		}
		for topic, n := range tc.want {
			td, ok := tds[topic]
			if !ok || len(td.Partitions) != n {
				t.Fatalf("%s topic %q: exists=%v partitions=%d, want %d", tc.c.Name(), topic, ok, len(td.Partitions), n)
			}
		}
	}
	if err := p.Target.CreateTopic(ctx, "c", 2); err != nil {
		t.Fatal(err)
	}
	if err := p.Target.ProduceSync(ctx, &kgo.Record{Topic: "c", Partition: 1, Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	// Unauthenticated clients are refused on a SASL source.
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Source.Bootstrap()...), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).ListTopics(short); err == nil {
		t.Fatal("unauthenticated client listed topics on the SASL source")
	}
}
