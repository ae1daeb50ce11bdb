package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/produceguard"
)

const caARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kmig-ca-AbCdEf"

// tlsCluster starts a kfake cluster whose TLS listener presents a
// certificate for 127.0.0.1 signed by a private CA made for the test, and
// returns it with the CA's PEM.
func tlsCluster(t *testing.T) (*kfake.Cluster, string) {
	t.Helper()
	c, ca := authCluster(t, nil)
	return c, ca.PEM
}

func caSecret(t *testing.T, pemText string) string {
	t.Helper()
	return secretJSON(t, map[string]string{"certificate": pemText})
}

// roundTrip produces one record to topic t and reads it back (until ctx
// ends).
func roundTrip(ctx context.Context, opts []kgo.Opt) error {
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequestRetries(0), kgo.RetryTimeout(2*time.Second))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	r := &kgo.Record{Topic: "t", Value: []byte("over private-CA TLS")}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		return err
	}
	// Earlier round trips left records before it: read up to its offset.
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return err
		}
		for _, got := range fs.Records() {
			if got.Partition == r.Partition && got.Offset == r.Offset {
				if string(got.Value) != string(r.Value) {
					return errors.New("read back a different value")
				}
				return nil
			}
		}
	}
}

// ping asks the brokers for metadata once; its error is the dial's.
func ping(ctx context.Context, opts []kgo.Opt) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.Ping(ctx)
}

// A client whose config names the CA secret verifies brokers whose
// certificate the private CA signed, and produces and consumes; the same
// client without it fails with a certificate verification error.
func TestPrivateCASecretTrustsTheBrokers(t *testing.T) {
	c, caPEM := tlsCluster(t)
	secrets := SecretsMap{caARN: caSecret(t, caPEM)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, wrap := range []bool{false, true} { // DialTLSConfig, and the WrapConn dialer
		cfg := Config{Prefix: "SOURCE", Bootstrap: c.ListenAddrs(), Auth: AuthTLS, CASecretARN: caARN}
		if wrap {
			cfg.WrapConn = produceguard.New().Wrap
		}
		opts, err := cfg.Options(ctx, secrets)
		if err != nil {
			t.Fatal(err)
		}
		if err := roundTrip(ctx, opts); err != nil {
			t.Fatalf("with the CA (wrapped dialer %v): %v", wrap, err)
		}

		cfg.CASecretARN = ""
		opts, err = cfg.Options(ctx, secrets)
		if err != nil {
			t.Fatal(err)
		}
		err = ping(ctx, opts)
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) {
			t.Fatalf("without the CA (wrapped dialer %v): err = %v, want a *tls.CertificateVerificationError", wrap, err)
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("without the CA: err = %v, want x509.UnknownAuthorityError", err)
		}
	}
}

// CAPEM, given by code, is trusted as the secret's CA is.
func TestCAPEMTrustsTheBrokers(t *testing.T) {
	c, caPEM := tlsCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts, err := Config{Prefix: "TARGET", Bootstrap: c.ListenAddrs(), Auth: AuthTLS, CAPEM: caPEM}.Options(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(ctx, opts); err != nil {
		t.Fatal(err)
	}
}

// The CA is added to the system roots, not put in their place: a target
// whose certificates a public CA issued (MSK) still verifies.
func TestRootCAsKeepsTheSystemRoots(t *testing.T) {
	ca := testCA(t)
	got, err := RootCAs(ca.PEM)
	if err != nil {
		t.Fatal(err)
	}
	want, err := x509.SystemCertPool()
	if err != nil {
		t.Fatal(err)
	}
	caOnly := x509.NewCertPool()
	if !caOnly.AppendCertsFromPEM([]byte(ca.PEM)) || !want.AppendCertsFromPEM([]byte(ca.PEM)) {
		t.Fatal("test CA does not parse")
	}
	if !got.Equal(want) {
		t.Fatal("RootCAs is not the system roots plus the CA")
	}
	if got.Equal(caOnly) {
		t.Fatal("RootCAs holds the CA alone: the system roots were replaced")
	}
}

// A CA secret that is not {"certificate": PEM of certificates} fails
// before any connection with a *config.Error naming the variable, and the
// secret's content appears nowhere in the error.
func TestBadCASecretIsATypedConfigError(t *testing.T) {
	ca := testCA(t)
	srv := issue(t, ca, "127.0.0.1")
	const marker = "ZmFrZS1zZWNyZXQtY29udGVudA"
	cases := map[string]string{
		"not JSON":               "-----BEGIN CERTIFICATE-----\n" + marker + "\n-----END CERTIFICATE-----\n",
		"no certificate field":   `{"ca": "` + marker + `"}`,
		"empty certificate":      `{"certificate": ""}`,
		"not PEM":                caSecret(t, marker),
		"bad DER":                caSecret(t, "-----BEGIN CERTIFICATE-----\n"+marker+"\n-----END CERTIFICATE-----\n"),
		"a private key":          caSecret(t, ca.PEM+srv.KeyPEM),
		"text after the PEM":     caSecret(t, ca.PEM+marker),
		"JSON number":            `{"certificate": 7}`,
		"only whitespace in PEM": caSecret(t, " \n\t "),
	}
	for name, secret := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Prefix: "TARGET", Bootstrap: []string{"127.0.0.1:9092"}, Auth: AuthTLS, CASecretARN: caARN}
			wantSecretConfigError(t, cfg, caARN, secret, "TARGET_CA_SECRET_ARN")
		})
	}
}

// A secret that cannot be read fails Options with the variable named.
func TestUnreadableCASecret(t *testing.T) {
	cfg := Config{Prefix: "SOURCE", Bootstrap: []string{"127.0.0.1:9092"}, Auth: AuthSCRAM512, Username: "u", Password: "p", CASecretARN: caARN}
	_, err := cfg.Options(context.Background(), SecretsMap{})
	if !errors.Is(err, ErrSecretNotFound) || !strings.Contains(err.Error(), "SOURCE_CA_SECRET_ARN") {
		t.Fatalf("err = %v, want ErrSecretNotFound naming SOURCE_CA_SECRET_ARN", err)
	}
	if _, err := cfg.Options(context.Background(), nil); !errors.Is(err, ErrNoSecrets) {
		t.Fatalf("no secrets source: err = %v, want ErrNoSecrets", err)
	}
}

// FromEnv reads <prefix>_CA_SECRET_ARN, and refuses a CA without TLS.
func TestFromEnvCASecret(t *testing.T) {
	env := config.Map(map[string]string{
		"SOURCE_BOOTSTRAP_SERVERS": "kafka-1.example.internal:9094", "SOURCE_AUTH": "tls", "SOURCE_CA_SECRET_ARN": caARN,
	})
	c, err := FromEnv(env, "SOURCE")
	if err != nil {
		t.Fatal(err)
	}
	if c.CASecretARN != caARN {
		t.Fatalf("CASecretARN = %q", c.CASecretARN)
	}
	env = config.Map(map[string]string{
		"TARGET_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "TARGET_AUTH": "plaintext", "TARGET_CA_SECRET_ARN": caARN,
	})
	_, err = FromEnv(env, "TARGET")
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Variable != "TARGET_CA_SECRET_ARN" {
		t.Fatalf("plaintext with a CA: err = %v, want a *config.Error for TARGET_CA_SECRET_ARN", err)
	}
	if _, err := (Config{Prefix: "TARGET", Bootstrap: []string{"127.0.0.1:9092"}, Auth: AuthPlaintext, CAPEM: "x"}).Options(context.Background(), nil); !errors.As(err, &ce) {
		t.Fatalf("plaintext with CAPEM: err = %v, want a *config.Error", err)
	}
}
