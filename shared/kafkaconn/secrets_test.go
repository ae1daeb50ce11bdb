package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/privateca"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
)

const credsARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kmig-creds-AbCdEf"

// secretJSON renders a credentials secret as Secrets Manager holds it.
func secretJSON(t *testing.T, fields map[string]string) string {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// authCluster starts a kfake cluster on TLS (a private CA's certificate for
// 127.0.0.1) with extra options, and returns it with the CA.
func authCluster(t *testing.T, tlsCfg func(*tls.Config, *privateca.CA), opts ...kfake.Opt) (*kfake.Cluster, *privateca.CA) {
	t.Helper()
	ca := testCA(t)
	cert, err := issue(t, ca, "127.0.0.1", "localhost").TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if tlsCfg != nil {
		tlsCfg(tc, ca)
	}
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, "t"), kfake.TLS(tc)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, ca
}

// The username and password of a SCRAM secret are the ones the client
// authenticates with: the broker accepts them, and refuses a secret with
// another password.
func TestSCRAMSecretAuthenticates(t *testing.T) {
	const user, pass = "migrator", "a-long-password-only-the-broker-knows"
	c, ca := authCluster(t, nil, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, pass))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := Config{Prefix: "SOURCE", Bootstrap: c.ListenAddrs(), Auth: AuthSCRAM512, SecretARN: credsARN, CAPEM: ca.PEM}
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{{"right password", pass, true}, {"wrong password", pass + "-not", false}} {
		opts, err := cfg.Options(ctx, SecretsMap{credsARN: secretJSON(t, map[string]string{"username": user, "password": tc.password})})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		err = ping(pctx, opts)
		pcancel()
		if (err == nil) != tc.ok {
			t.Fatalf("%s: ping err = %v, want success %v", tc.name, err, tc.ok)
		}
	}
}

// The certificate and key of an mTLS secret are what the client presents:
// a broker requiring a client certificate its CA signed accepts the
// client, and refuses one without a certificate.
func TestMTLSSecretPresentsTheCertificate(t *testing.T) {
	c, ca := authCluster(t, func(tc *tls.Config, ca *privateca.CA) {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(ca.PEM))
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	})
	client, err := ca.Issue([]string{"migrator.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := Config{Prefix: "TARGET", Bootstrap: c.ListenAddrs(), Auth: AuthMTLS, SecretARN: credsARN, CAPEM: ca.PEM}
	opts, err := cfg.Options(ctx, SecretsMap{credsARN: secretJSON(t, map[string]string{"certificate": client.CertPEM, "privateKey": client.KeyPEM})})
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(ctx, opts); err != nil {
		t.Fatalf("with the secret's certificate: %v", err)
	}
	// The same broker refuses a client that presents no certificate.
	tlsOnly := Config{Prefix: "TARGET", Bootstrap: c.ListenAddrs(), Auth: AuthTLS, CAPEM: ca.PEM}
	opts, err = tlsOnly.Options(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if err := ping(pctx, opts); err == nil {
		t.Fatal("the broker accepted a client without a certificate: the test proves nothing")
	}
}

// A SCRAM or mTLS secret that is not what the auth kind needs fails Options
// with a *config.Error naming the secret's variable, before any connection,
// and the error never shows the secret's content.
func TestBadCredentialSecretIsATypedConfigError(t *testing.T) {
	ca := testCA(t)
	one, other := issue(t, ca, "migrator.example"), issue(t, ca, "migrator.example")
	const marker = "c2VjcmV0LWNvbnRlbnQtbmV2ZXItc2hvd24"
	pemOf := func(typ string) string {
		return "-----BEGIN " + typ + "-----\n" + marker + "\n-----END " + typ + "-----\n"
	}
	for _, tc := range []struct {
		name   string
		auth   Auth
		secret string
	}{
		{"scram: not JSON", AuthSCRAM512, "username=migrator password=" + marker},
		{"scram: no password", AuthSCRAM512, secretJSON(t, map[string]string{"username": marker})},
		{"scram: no username", AuthSCRAM256, secretJSON(t, map[string]string{"password": marker})},
		{"scram: empty password", AuthSCRAM512, secretJSON(t, map[string]string{"username": "migrator", "password": "", "note": marker})},
		{"scram: password not a string", AuthSCRAM512, `{"username": "migrator", "password": 7, "note": "` + marker + `"}`},
		{"mtls: not JSON", AuthMTLS, one.CertPEM + one.KeyPEM},
		{"mtls: no privateKey", AuthMTLS, secretJSON(t, map[string]string{"certificate": one.CertPEM})},
		{"mtls: no certificate", AuthMTLS, secretJSON(t, map[string]string{"privateKey": one.KeyPEM})},
		{"mtls: certificate not PEM", AuthMTLS, secretJSON(t, map[string]string{"certificate": marker, "privateKey": one.KeyPEM})},
		{"mtls: bad DER", AuthMTLS, secretJSON(t, map[string]string{"certificate": pemOf("CERTIFICATE"), "privateKey": one.KeyPEM})},
		{"mtls: privateKey not PEM", AuthMTLS, secretJSON(t, map[string]string{"certificate": one.CertPEM, "privateKey": marker})},
		{"mtls: bad key DER", AuthMTLS, secretJSON(t, map[string]string{"certificate": one.CertPEM, "privateKey": pemOf("PRIVATE KEY")})},
		{"mtls: key of another certificate", AuthMTLS, secretJSON(t, map[string]string{"certificate": one.CertPEM, "privateKey": other.KeyPEM})},
		{"mtls: fields swapped", AuthMTLS, secretJSON(t, map[string]string{"certificate": one.KeyPEM, "privateKey": one.CertPEM})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Prefix: "TARGET", Bootstrap: []string{"127.0.0.1:9092"}, Auth: tc.auth, SecretARN: credsARN}
			wantSecretConfigError(t, cfg, credsARN, tc.secret, "TARGET_SECRET_ARN")
		})
	}
	// A secret that cannot be read is named by its variable; no Secrets
	// source at all is ErrNoSecrets.
	for _, auth := range []Auth{AuthSCRAM512, AuthMTLS} {
		cfg := Config{Prefix: "TARGET", Bootstrap: []string{"127.0.0.1:9092"}, Auth: auth, SecretARN: credsARN}
		if _, err := cfg.Options(context.Background(), SecretsMap{}); !errors.Is(err, ErrSecretNotFound) || !strings.Contains(err.Error(), "TARGET_SECRET_ARN") {
			t.Errorf("%s, secret not found: err = %v, want ErrSecretNotFound naming TARGET_SECRET_ARN", auth, err)
		}
		if _, err := cfg.Options(context.Background(), nil); !errors.Is(err, ErrNoSecrets) {
			t.Errorf("%s, no secrets source: err = %v, want ErrNoSecrets", auth, err)
		}
	}
}

// testCA is a private CA made for the test.
func testCA(t *testing.T) *privateca.CA {
	t.Helper()
	ca, err := privateca.New("kmig test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue is a certificate ca issues for hosts.
func issue(t *testing.T, ca *privateca.CA, hosts ...string) privateca.Server {
	t.Helper()
	srv, err := ca.Issue(hosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// wantSecretConfigError checks that Options, with secret stored at arn,
// fails with a *config.Error naming variable, and that the error shows no
// part of the secret.
func wantSecretConfigError(t *testing.T, cfg Config, arn, secret, variable string) {
	t.Helper()
	_, err := cfg.Options(context.Background(), SecretsMap{arn: secret})
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Variable != variable {
		t.Fatalf("err = %v, want a *config.Error for %s", err, variable)
	}
	if leak := secretPart(err.Error(), secret); leak != "" {
		t.Fatalf("the error shows %q of the secret: %v", leak, err)
	}
}

// secretPart returns a run of at least 12 letters, digits or base64
// characters of secret that msg contains (a password, a PEM line), or "".
func secretPart(msg, secret string) string {
	words := strings.FieldsFunc(secret, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '+' && r != '/' && r != '=' && r != '-'
	})
	for _, w := range words {
		if len(w) >= 12 && !strings.HasPrefix(w, "-----") && strings.Contains(msg, w) {
			return w
		}
	}
	return ""
}
