package cutover

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/clock"
)

// TestPreflightWithoutClients: a function that could not build its Kafka
// clients (a secret it could not read at start-up) still answers the
// preflight, with the failure and its fix, and refuses every other step
// with a ClusterError naming the cause.
func TestPreflightWithoutClients(t *testing.T) {
	cause := errors.New("reading SOURCE_SECRET_ARN: operation error Secrets Manager: GetSecretValue: context deadline exceeded")
	h := New(Deps{ReplicatorFunction: "kmig-replicator", Preflight: PreflightDeps{ClientsErr: cause, SourceBootstrap: []string{"b-1.src:9096"}}})
	out, err := h.Handle(context.Background(), Request{Step: StepPreflight, Input: json.RawMessage(`{"topics":["orders"],"groups":["billing"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	rep := out.(*PreflightReport)
	if rep.Passed {
		t.Fatal("passed without clients")
	}
	want := map[string]string{"kafka clients": CheckFail, "source cluster reachable": CheckFail, "target cluster reachable": CheckFail, "input": CheckPass}
	for _, c := range rep.Checks {
		if w, ok := want[c.Name]; ok {
			if c.Status != w {
				t.Errorf("%s: %s, want %s", c.Name, c.Status, w)
			}
			delete(want, c.Name)
		}
		if c.Name == "kafka clients" && (!strings.Contains(c.Detail, "SOURCE_SECRET_ARN") || !strings.Contains(c.Fix, "Secrets Manager")) {
			t.Errorf("kafka clients check: %+v", c)
		}
	}
	if len(want) > 0 {
		t.Errorf("checks missing: %v", want)
	}
	_, err = h.Handle(context.Background(), Request{Step: StepValidate, Input: json.RawMessage(`{"topics":["orders"],"groups":["billing"]}`)})
	var ce *ClusterError
	if !errors.As(err, &ce) || !errors.Is(err, cause) {
		t.Errorf("Validate without clients: %v (%T), want a ClusterError wrapping the start-up error", err, err)
	}
}

// TestPreflightReportBounds: however many checks fail, and however long
// their texts, the report stays far below Step Functions' 256 KiB payload
// limit and the Fail cause below its 32,768 characters, and the omitted
// failures still fail the preflight.
func TestPreflightReportBounds(t *testing.T) {
	p := &preflight{}
	long := strings.Repeat("é", 5000)
	for i := range 3 * maxPreflightChecks {
		p.fail(fmt.Sprintf("check %d %s", i, long[:100]), long, long)
	}
	p.finish()
	b, err := json.Marshal(p.rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 160<<10 {
		t.Errorf("report is %d bytes", len(b))
	}
	if len(p.rep.Checks) != maxPreflightChecks || p.rep.OmittedFailed != 2*maxPreflightChecks || p.rep.Passed {
		t.Errorf("checks %d, omitted failures %d, passed %v", len(p.rep.Checks), p.rep.OmittedFailed, p.rep.Passed)
	}
	if n := utf8.RuneCountInString(p.rep.Cause); n > 32768 || !utf8.ValidString(p.rep.Cause) || !strings.HasPrefix(p.rep.Cause, fmt.Sprintf("%d preflight check(s) failed", 3*maxPreflightChecks)) {
		t.Errorf("cause: %d characters, valid UTF-8 %v, starts %q", n, utf8.ValidString(p.rep.Cause), p.rep.Cause[:60])
	}
	for _, c := range p.rep.Checks {
		if !utf8.ValidString(c.Detail) || !utf8.ValidString(c.Fix) || len(c.Detail) > maxCheckDetail || len(c.Fix) > maxCheckFix {
			t.Fatalf("check texts not bounded: %d/%d bytes", len(c.Detail), len(c.Fix))
		}
	}
}

type stubSTS struct{ calls int }

func (s *stubSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	s.calls++
	return &sts.GetCallerIdentityOutput{Arn: aws.String("arn:aws:sts::123456789012:assumed-role/cutover/fn")}, nil
}

// TestPreflightBudget: the step ends inside its invocation's deadline: a
// check that could not finish in the time left is not started, and is
// reported as skipped, not as failed.
func TestPreflightBudget(t *testing.T) {
	st := &stubSTS{}
	h := New(Deps{ReplicatorFunction: "kmig-replicator", Preflight: PreflightDeps{STS: st}})
	for _, tc := range []struct {
		left   time.Duration
		status string
	}{{time.Minute, CheckPass}, {3 * time.Second, CheckSkip}} {
		ctx, cancel := context.WithTimeout(context.Background(), tc.left)
		out, err := h.Handle(ctx, Request{Step: StepPreflight, Input: json.RawMessage(`{"topics":["orders"],"groups":["billing"]}`)})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range out.(*PreflightReport).Checks {
			if c.Name == "sts" && (c.Status != tc.status || tc.status == CheckSkip && !strings.Contains(c.Detail, "budget")) {
				t.Errorf("%v left: sts check %+v, want %s", tc.left, c, tc.status)
			}
		}
	}
	if st.calls != 1 {
		t.Errorf("GetCallerIdentity called %d times, want once (not when no time was left)", st.calls)
	}
}

// tlsServer listens with a certificate of its own, self-signed CA, as a
// cluster whose certificates a private CA issued; it answers nothing after
// the handshake. It returns its host:port.
func tlsServer(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "private-ca-broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// The handshake fails on the client's side; the server
			// holds the connection until the client drops it.
			go func() { _ = c.(*tls.Conn).Handshake(); _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// TestPreflightUntrustedCA: a target whose TLS certificate a private CA
// issued, reached without that CA, fails the reachability check with the
// parameter that supplies the CA.
func TestPreflightUntrustedCA(t *testing.T) {
	addr := tlsServer(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	h := New(Deps{Target: cl, ReplicatorFunction: "kmig-replicator", Preflight: PreflightDeps{TargetBootstrap: []string{addr}, CheckTimeout: 3 * time.Second}})
	out, err := h.Handle(context.Background(), Request{Step: StepPreflight, Input: json.RawMessage(`{"topics":["orders"],"groups":["billing"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range out.(*PreflightReport).Checks {
		if c.Name == "target cluster reachable" {
			if c.Status != CheckFail || !strings.Contains(c.Detail, "not trusted") || !strings.Contains(c.Fix, "TargetCaSecretArn") || !strings.Contains(c.Fix, "TARGET_CA_SECRET_ARN") {
				t.Errorf("check %+v, want a failure naming TargetCaSecretArn", c)
			}
			return
		}
	}
	t.Error("no target cluster reachable check")
}

// TestPreflightRetriesRetriableAnswers: a Kafka answer the broker marks
// retriable (a group coordinator still loading after a restart) is asked
// again within the check's deadline and passes; a refusal fails at once.
func TestPreflightRetriesRetriableAnswers(t *testing.T) {
	clk := clock.NewFake(t0)
	p := &preflight{h: New(Deps{Clock: clk}), timeout: 5 * time.Second}
	calls := 0
	p.kafkaCheck(context.Background(), "target", "describe groups", []string{"g"}, func(context.Context) (string, error) {
		if calls++; calls < 3 {
			return "", fmt.Errorf("group g: %w", kerr.CoordinatorNotAvailable)
		}
		return "g (Empty, 0 members)", nil
	})
	denied := 0
	p.kafkaCheck(context.Background(), "source", "describe groups", []string{"g"}, func(context.Context) (string, error) {
		denied++
		return "", fmt.Errorf("group g: %w", kerr.GroupAuthorizationFailed)
	})
	if len(p.rep.Checks) != 2 || p.rep.Checks[0].Status != CheckPass || calls != 3 {
		t.Fatalf("retriable answers: %d calls, checks %+v", calls, p.rep.Checks)
	}
	if p.rep.Checks[1].Status != CheckFail || denied != 1 {
		t.Fatalf("a refusal: %d calls, check %+v", denied, p.rep.Checks[1])
	}
	if slept, n := clk.Slept(); slept != 500*time.Millisecond || n != 2 {
		t.Errorf("waited %v in %d pauses between the three asks, want 2 pauses of 250ms", slept, n)
	}
}
