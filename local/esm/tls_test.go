package esm

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/privateca"
)

func testCA(t *testing.T) *privateca.CA {
	t.Helper()
	ca, err := privateca.New("kmig esm test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// A mapping with ServerRootCACertificate, as a self-managed mapping with a
// SERVER_ROOT_CA_CERTIFICATE access configuration, reaches brokers whose
// TLS certificate the private CA signed and delivers every record. With
// another CA, or none (no TLS then), it delivers nothing.
func TestServerRootCACertificate(t *testing.T) {
	ca := testCA(t)
	srv, err := ca.Issue([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := srv.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	src := startSource(t, []kafkalocal.Topic{{Name: "orders", Partitions: 2}},
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(ca.PEM))
	prod, err := kgo.NewClient(append(src.ClientOpts(), kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx := testCtx(t, 30*time.Second)
	var rs []*kgo.Record
	for i := range 50 {
		rs = append(rs, &kgo.Record{Topic: "orders", Partition: int32(i % 2), Value: fmt.Appendf(nil, "%d", i)})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	for name, rootCA := range map[string]string{"another CA": testCA(t).PEM, "no CA": ""} {
		rec := &recorder{}
		refused := &refusals{}
		m := newMapping(t, src, "orders", rec, func(c *Config) {
			c.ServerRootCACertificate = rootCA
			c.ClientOptions = append(c.ClientOptions, kgo.WithHooks(refused))
		})
		// Every connection fails alike: once the mapping has tried and
		// been refused, it never reads.
		waitFor(t, 20*time.Second, name+": the mapping to try the broker and be refused", func() bool { return refused.n.Load() > 0 })
		m.Close()
		if n := len(rec.snapshot()); n != 0 {
			t.Fatalf("%s: %d invocations, want none", name, n)
		}
	}

	rec := &recorder{}
	m := newMapping(t, src, "orders", rec, func(c *Config) { c.ServerRootCACertificate = ca.PEM })
	if err := m.WaitCaughtUp(ctx); err != nil {
		t.Fatalf("with the CA: %v (last error %v)", err, m.LastError())
	}
	got := 0
	for _, a := range rec.snapshot() {
		if a.ok {
			for _, offs := range a.records {
				got += len(offs)
			}
		}
	}
	if got != len(rs) {
		t.Fatalf("with the CA: %d records delivered, want %d", got, len(rs))
	}
}

// refusals counts a client's failed connections and requests (a TLS
// handshake that fails verification, a request the broker never answers).
type refusals struct{ n atomic.Int64 }

func (r *refusals) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		r.n.Add(1)
	}
}

func (r *refusals) OnBrokerE2E(_ kgo.BrokerMetadata, _ int16, e kgo.BrokerE2E) {
	if e.Err() != nil {
		r.n.Add(1)
	}
}
