package kafkalocal

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConnect wraps a running (here embedded) SCRAM+ACL cluster with
// Connect and uses every helper on it: it is not embedded, Close leaves the
// brokers running, and the app user is subject to ACLs.
func TestConnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	emb, err := StartSource(ClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	if _, err := Connect(ctx, "source", emb.Bootstrap(), ConnectOptions{
		Security: SecuritySCRAMACL, Admin: Credentials{User: AdminUser, Password: "wrong"}, Ping: 3 * time.Second,
	}); err == nil {
		t.Fatal("Connect with a wrong password succeeded")
	}
	c, err := Connect(ctx, "source", emb.Bootstrap(), ConnectOptions{Security: SecuritySCRAMACL})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kfake() != nil || c.Embedded() || !emb.Embedded() || !c.ACLsEnforced() || c.SessionTimeout() != 6*time.Second {
		t.Fatalf("connected cluster: kfake %v embedded %v acls %v session %v", c.Kfake(), c.Embedded(), c.ACLsEnforced(), c.SessionTimeout())
	}
	if err := c.CreateTopics(ctx, Topic{Name: "a", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	if err := c.ProduceSync(ctx, &kgo.Record{Topic: "a", Partition: 1, Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	app, err := c.NewAppClient(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if err := app.ProduceSync(ctx, &kgo.Record{Topic: "a", Value: []byte("y")}).FirstErr(); err != nil {
		t.Fatalf("app write: %v", err)
	}
	c.Close()
	// The brokers still run: a new connection works.
	c2, err := Connect(ctx, "source", emb.Bootstrap(), ConnectOptions{Security: SecuritySCRAMACL})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	adm, err := c2.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := adm.ListEndOffsets(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("a", 1); o.Offset != 1 {
		t.Fatalf("end offset of a/1 = %d, want 1", o.Offset)
	}
	if _, err := Connect(ctx, "x", emb.Bootstrap(), ConnectOptions{Mechanism: "PLAIN"}); err == nil || errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("unknown mechanism: %v", err)
	}
}
