package realkafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/privateca"
)

// The private-ca source: a broker next to SOURCE and TARGET (`brokers.sh start-profile private-ca`)
// whose SASL_SSL listener presents a certificate for 127.0.0.1 signed by a private CA made at run
// time, standing in for a self-managed cluster with private-CA certificates. SCRAM users as on
// SOURCE; no authorizer.
const (
	// EnvSourcePrivateCABootstrap names the private-ca source (printed by `brokers.sh env` while it
	// runs; with user-given brokers, set it to use one).
	EnvSourcePrivateCABootstrap = "KMIG_REAL_SOURCE_PRIVATE_CA_BOOTSTRAP"
	// EnvSourcePrivateCAFile is the PEM file of the CA that signed its certificate.
	EnvSourcePrivateCAFile = "KMIG_REAL_SOURCE_PRIVATE_CA_FILE"
)

// PrivateCASource is where the private-ca source listens and the CA that signed its certificate.
type PrivateCASource struct {
	Bootstrap string
	// CAPEM is the CA certificate, PEM: what a client must trust to verify the broker.
	CAPEM string
	// Endpoints are the tier's, for the SCRAM credentials (the same users as on SOURCE).
	Endpoints Endpoints
}

// caValidity is how long a CA and broker certificate made here are valid; one that would expire
// within caRenewBefore is replaced (and the broker restarted with the new one).
const (
	caValidity    = 30 * 24 * time.Hour
	caRenewBefore = 24 * time.Hour
)

// StartPrivateCA starts (or reuses) the private-ca source, after Start, and leaves it running. For
// local brokers it first makes the CA and the broker's key and certificate in the run dir's
// private-ca.tls (once: later calls reuse them while they stay valid), under a lock shared by every
// process. With user-given brokers it reads EnvSourcePrivateCABootstrap and EnvSourcePrivateCAFile,
// or fails with ErrProfileNotGiven.
func StartPrivateCA() (PrivateCASource, error) {
	ep, err := Start()
	if err != nil {
		return PrivateCASource{}, err
	}
	if !ep.Local {
		b, f := os.Getenv(EnvSourcePrivateCABootstrap), os.Getenv(EnvSourcePrivateCAFile)
		if b == "" || f == "" {
			return PrivateCASource{}, fmt.Errorf("%w: set %s and %s for the private-ca source", ErrProfileNotGiven, EnvSourcePrivateCABootstrap, EnvSourcePrivateCAFile)
		}
		ca, err := os.ReadFile(f)
		if err != nil {
			return PrivateCASource{}, fmt.Errorf("private-ca source: %w", err)
		}
		return PrivateCASource{Bootstrap: b, CAPEM: string(ca), Endpoints: ep}, nil
	}
	unlock, err := lockFile(filepath.Join(ep.RunDir, "private-ca.lock"))
	if err != nil {
		return PrivateCASource{}, err
	}
	defer unlock()
	dir := filepath.Join(ep.RunDir, "private-ca.tls")
	ca, err := ensureCertificates(dir)
	if err != nil {
		return PrivateCASource{}, err
	}
	out, err := script("start-profile", "private-ca")
	if err != nil {
		return PrivateCASource{}, err
	}
	b := strings.TrimSpace(out)
	if b == "" {
		return PrivateCASource{}, errors.New("brokers.sh start-profile private-ca printed no address")
	}
	return PrivateCASource{Bootstrap: b, CAPEM: ca, Endpoints: ep}, nil
}

// ensureCertificates returns the CA of dir/ca.pem while it and dir/broker.pem stay valid for
// caRenewBefore; otherwise it makes a new CA and broker certificate there and returns the new CA.
// The CA's private key is never written: nothing else can be signed with it.
func ensureCertificates(dir string) (string, error) {
	if ca, err := os.ReadFile(filepath.Join(dir, "ca.pem")); err == nil {
		if chain, err := os.ReadFile(filepath.Join(dir, "broker.pem")); err == nil && validFor(ca, caRenewBefore) && validFor(chain, caRenewBefore) {
			return string(ca), nil
		}
	}
	ca, err := privateca.New("kmig private-ca source CA", caValidity)
	if err != nil {
		return "", err
	}
	srv, err := ca.Issue([]string{"127.0.0.1", "localhost"}, caValidity)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("private-ca source: %w", err)
	}
	// broker.pem first: brokers.sh restarts a running broker older than it.
	if err := writeFile(filepath.Join(dir, "broker.pem"), srv.KeyPEM+srv.CertPEM); err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(dir, "ca.pem"), ca.PEM); err != nil {
		return "", err
	}
	return ca.PEM, nil
}

// validFor reports whether the first certificate of pemText parses and stays valid for d.
func validFor(pemText []byte, d time.Duration) bool {
	for rest := pemText; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return false
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		return err == nil && time.Now().Add(d).Before(c.NotAfter)
	}
}

// writeFile replaces path with data (mode 0600) by a rename, so a broker never reads half a file.
func writeFile(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return fmt.Errorf("private-ca source: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("private-ca source: %w", err)
	}
	return nil
}

// lockFile takes an exclusive flock on path, waiting for other holders; the func releases it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("real Kafka tier: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("real Kafka tier: locking %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// PrivateCA is StartPrivateCA for tests: it skips like Brokers, and also when the brokers are
// user-given and the private-ca source is not (unless KMIG_REQUIRE_REAL_KAFKA=1, then it fails).
func PrivateCA(t testing.TB) PrivateCASource {
	t.Helper()
	Brokers(t)
	s, err := StartPrivateCA()
	if errors.Is(err, ErrProfileNotGiven) && os.Getenv(EnvRequire) != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("real Kafka tier: %v", err)
	}
	return s
}

// TLSConfig is a client TLS config that trusts the private CA (and nothing else).
func (s PrivateCASource) TLSConfig() (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(s.CAPEM)) {
		return nil, errors.New("private-ca source: the CA is not PEM")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// PrivateCAPair is Pair for the private-ca source: the source (as the super user over SASL_SSL,
// trusting the CA; SecuritySCRAMNoACL, as it has no authorizer) and the shared TARGET, closed at
// cleanup, with the source's endpoint.
func PrivateCAPair(t testing.TB) (*kafkalocal.Pair, PrivateCASource) {
	t.Helper()
	s := PrivateCA(t)
	tc, err := s.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ep := s.Endpoints
	src, err := kafkalocal.Connect(ctx, "source", strings.Split(s.Bootstrap, ","), kafkalocal.ConnectOptions{
		Security:     kafkalocal.SecuritySCRAMNoACL,
		Admin:        kafkalocal.Credentials{User: ep.SourceUser, Password: ep.SourcePassword},
		App:          kafkalocal.Credentials{User: ep.AppUser, Password: ep.AppPassword},
		Mechanism:    ep.SourceMechanism,
		TopicConfigs: TopicConfigs,
		TLS:          tc,
	})
	if err != nil {
		t.Fatalf("real Kafka tier: private-ca source: %v", err)
	}
	tgt, err := connectTarget(ctx, ep.TargetBootstrap)
	if err != nil {
		src.Close()
		t.Fatalf("real Kafka tier: %v", err)
	}
	pair := &kafkalocal.Pair{Source: src, Target: tgt}
	t.Cleanup(pair.Close)
	return pair, s
}
