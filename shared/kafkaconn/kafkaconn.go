// Package kafkaconn builds franz-go clients for the source and target
// clusters from environment configuration.
//
// Guarantees: every auth kind except plaintext uses TLS, verified against
// the system roots plus, when one is configured, the cluster's private CA
// (<prefix>_CA_SECRET_ARN); secrets fetched from Secrets Manager are never
// logged and never appear in errors; a configuration problem is a
// *config.Error naming the variable.
package kafkaconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-msk-iam-sasl-signer-go/signer"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
)

// Auth is how a client authenticates to a cluster.
type Auth string

// The supported auth kinds. Every kind but AuthPlaintext uses TLS.
const (
	AuthIAM       Auth = "iam"           // MSK IAM over SASL/OAUTHBEARER
	AuthSCRAM512  Auth = "scram-sha-512" // SASL/SCRAM, credentials in Secrets Manager
	AuthSCRAM256  Auth = "scram-sha-256" // SASL/SCRAM, credentials in Secrets Manager
	AuthMTLS      Auth = "mtls"          // TLS client certificate from Secrets Manager
	AuthTLS       Auth = "tls"           // TLS, no client authentication
	AuthPlaintext Auth = "plaintext"     // no TLS, no auth: local runs only
)

// Auths lists every supported auth kind, in documentation order.
var Auths = []Auth{AuthIAM, AuthSCRAM512, AuthSCRAM256, AuthMTLS, AuthTLS, AuthPlaintext}

// Config says how to reach one cluster.
type Config struct {
	// Prefix is the environment prefix the config came from (SOURCE or
	// TARGET); errors name variables with it.
	Prefix    string
	Bootstrap []string
	Auth      Auth
	// SecretARN names the Secrets Manager secret for SCRAM
	// ({"username","password"}) or mTLS ({"certificate","privateKey"}, PEM).
	SecretARN string
	// CASecretARN names the Secrets Manager secret {"certificate": PEM}
	// holding the root CA (one or more certificates) that signed the
	// brokers' TLS certificates, for a cluster whose certificates a private
	// CA issued: the secret of a SERVER_ROOT_CA_CERTIFICATE source access
	// configuration. Clients trust it besides the system roots, so a
	// cluster with publicly trusted certificates still verifies.
	CASecretARN string
	// CAPEM is a PEM CA bundle trusted as CASecretARN's is, given by code
	// in local runs and tests instead of a secret (never from the
	// environment). Both may be set; both are trusted.
	CAPEM string
	// Region is the AWS region for MSK IAM signing (AWS_REGION).
	Region string
	// Username and Password may be given directly for SCRAM in local runs
	// and tests instead of SecretARN. They are never logged.
	Username, Password string
	// WrapConn, if set, wraps every broker connection (above TLS), as a
	// produceguard.Guard's Wrap does. It is set by code, never from the
	// environment.
	WrapConn func(net.Conn) net.Conn
}

// FromEnv reads <prefix>_BOOTSTRAP_SERVERS, <prefix>_AUTH (default iam),
// <prefix>_SECRET_ARN and <prefix>_CA_SECRET_ARN. It checks that the auth
// kind is known, that SCRAM and mTLS name a secret, and that a CA is given
// only with TLS.
func FromEnv(env config.Env, prefix string) (Config, error) {
	c := Config{Prefix: prefix, Region: env.String("AWS_REGION", "")}
	bs := prefix + "_BOOTSTRAP_SERVERS"
	c.Bootstrap = env.List(bs)
	if len(c.Bootstrap) == 0 {
		return c, &config.Error{Variable: bs, Problem: "must be set to a comma-separated list of host:port"}
	}
	for _, b := range c.Bootstrap {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return c, &config.Error{Variable: bs, Problem: fmt.Sprintf("%q is not host:port", b)}
		}
	}
	authVar := prefix + "_AUTH"
	allowed := make([]string, len(Auths))
	for i, a := range Auths {
		allowed[i] = string(a)
	}
	a, err := env.OneOf(authVar, string(AuthIAM), allowed...)
	if err != nil {
		return c, err
	}
	c.Auth = Auth(a)
	c.SecretARN = env.String(prefix+"_SECRET_ARN", "")
	c.CASecretARN = env.String(prefix+"_CA_SECRET_ARN", "")
	return c, c.validate()
}

func (c Config) validate() error {
	if c.Auth == AuthPlaintext && (c.CASecretARN != "" || c.CAPEM != "") {
		return &config.Error{Variable: c.Prefix + "_CA_SECRET_ARN", Problem: "a CA is used only with TLS, and " + c.Prefix + "_AUTH is plaintext"}
	}
	switch c.Auth {
	case AuthSCRAM512, AuthSCRAM256, AuthMTLS:
		if c.SecretARN == "" && (c.Username == "" || c.Auth == AuthMTLS) {
			return &config.Error{Variable: c.Prefix + "_SECRET_ARN", Problem: "must be set when " + c.Prefix + "_AUTH is " + string(c.Auth)}
		}
	case AuthIAM:
		if c.Region == "" {
			return &config.Error{Variable: "AWS_REGION", Problem: "must be set when " + c.Prefix + "_AUTH is iam (Lambda sets it)"}
		}
	}
	return nil
}

// Secrets fetches a secret's string value by ARN.
type Secrets interface {
	SecretString(ctx context.Context, arn string) (string, error)
}

// ErrNoSecrets is returned when a config needs a secret but no Secrets
// source was given; wire one in (see NewSecretsManager).
var ErrNoSecrets = errors.New("kafkaconn: a secret is needed but no secrets source was configured")

// Options returns the kgo options that connect and authenticate to the
// cluster: seed brokers, TLS dialer and SASL. Callers add their own
// producer or consumer options. It reads the secrets the config names
// (credentials, client certificate, CA), so a bad secret fails here, before
// any connection, with a *config.Error naming the variable.
func (c Config) Options(ctx context.Context, secrets Secrets) ([]kgo.Opt, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Bootstrap...)}
	var tc *tls.Config
	if c.Auth != AuthPlaintext {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CASecretARN != "" || c.CAPEM != "" {
			roots, err := c.rootCAs(ctx, secrets)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = roots
		}
		if c.Auth == AuthMTLS {
			cert, err := c.clientCert(ctx, secrets)
			if err != nil {
				return nil, err
			}
			tc.Certificates = []tls.Certificate{cert}
		}
	}
	switch {
	case c.WrapConn != nil:
		opts = append(opts, kgo.Dialer(dialer(tc, c.WrapConn)))
	case tc != nil:
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch c.Auth {
	case AuthIAM:
		region := c.Region
		opts = append(opts, kgo.SASL(oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
			token, _, err := signer.GenerateAuthToken(ctx, region)
			if err != nil {
				return oauth.Auth{}, fmt.Errorf("generating MSK IAM token: %w", err)
			}
			return oauth.Auth{Token: token}, nil
		})))
	case AuthSCRAM512, AuthSCRAM256:
		user, pass := c.Username, c.Password
		if c.SecretARN != "" {
			var err error
			if user, pass, err = c.scramCreds(ctx, secrets); err != nil {
				return nil, err
			}
		}
		a := scram.Auth{User: user, Pass: pass}
		if c.Auth == AuthSCRAM512 {
			opts = append(opts, kgo.SASL(a.AsSha512Mechanism()))
		} else {
			opts = append(opts, kgo.SASL(a.AsSha256Mechanism()))
		}
	}
	return opts, nil
}

// dialer dials a broker as kgo does by default (10 s timeout; with tc, TLS,
// the server name taken from the address), then wraps the connection.
func dialer(tc *tls.Config, wrap func(net.Conn) net.Conn) func(ctx context.Context, network, host string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: 10 * time.Second}
	dial := nd.DialContext
	if tc != nil {
		dial = (&tls.Dialer{NetDialer: nd, Config: tc}).DialContext
	}
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		conn, err := dial(ctx, network, host)
		if err != nil {
			return nil, err
		}
		return wrap(conn), nil
	}
}

// NewClient builds a client for the cluster with extra options appended.
// It does not contact the cluster.
func (c Config) NewClient(ctx context.Context, secrets Secrets, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := c.Options(ctx, secrets)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("building %s client: %w", strings.ToLower(c.Prefix), err)
	}
	return cl, nil
}

func (c Config) secret(ctx context.Context, secrets Secrets) (string, error) {
	return secretAt(ctx, secrets, c.Prefix+"_SECRET_ARN", c.SecretARN)
}

// secretAt reads the secret arn, named by the variable v.
func secretAt(ctx context.Context, secrets Secrets, v, arn string) (string, error) {
	if secrets == nil {
		return "", ErrNoSecrets
	}
	s, err := secrets.SecretString(ctx, arn)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", v, err)
	}
	return s, nil
}

// rootCAs is the pool a client verifies the brokers with: the system
// roots, plus the CA of CASecretARN and CAPEM.
func (c Config) rootCAs(ctx context.Context, secrets Secrets) (*x509.CertPool, error) {
	v := c.Prefix + "_CA_SECRET_ARN"
	bundle := c.CAPEM
	if c.CASecretARN != "" {
		s, err := secretAt(ctx, secrets, v, c.CASecretARN)
		if err != nil {
			return nil, err
		}
		var sv struct {
			Certificate string `json:"certificate"`
		}
		if json.Unmarshal([]byte(s), &sv) != nil || strings.TrimSpace(sv.Certificate) == "" {
			// The secret's content is deliberately not echoed.
			return nil, &config.Error{Variable: v, Problem: `secret must be JSON {"certificate": PEM} (the root CA of the brokers' certificates)`}
		}
		bundle += "\n" + sv.Certificate
	}
	pool, err := RootCAs(bundle)
	if err != nil {
		return nil, &config.Error{Variable: v, Problem: "the CA is not a PEM certificate bundle", Err: err}
	}
	return pool, nil
}

// ErrNoCACertificate says a CA bundle holds no certificate.
var ErrNoCACertificate = errors.New("no PEM certificate found")

// RootCAs returns the system roots with every certificate of the PEM bundle
// added: a client verifying with it trusts the bundle's CAs and every
// publicly trusted CA. The bundle must hold at least one certificate and
// nothing but certificates (a private key there is refused, not ignored);
// errors name the block by position, never by content.
func RootCAs(bundle string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		return nil, fmt.Errorf("loading the system roots: %w", err)
	}
	rest := []byte(bundle)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		n++
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE", n, b.Type)
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		pool.AddCert(cert)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("text that is not PEM after %d certificate(s)", n)
	}
	if n == 0 {
		return nil, ErrNoCACertificate
	}
	return pool, nil
}

func (c Config) scramCreds(ctx context.Context, secrets Secrets) (string, string, error) {
	s, err := c.secret(ctx, secrets)
	if err != nil {
		return "", "", err
	}
	var v struct{ Username, Password string }
	if json.Unmarshal([]byte(s), &v) != nil || v.Username == "" || v.Password == "" {
		// The secret's content is deliberately not echoed.
		return "", "", &config.Error{Variable: c.Prefix + "_SECRET_ARN", Problem: `secret must be JSON {"username": ..., "password": ...}`}
	}
	return v.Username, v.Password, nil
}

func (c Config) clientCert(ctx context.Context, secrets Secrets) (tls.Certificate, error) {
	s, err := c.secret(ctx, secrets)
	if err != nil {
		return tls.Certificate{}, err
	}
	var v struct {
		Certificate string `json:"certificate"`
		PrivateKey  string `json:"privateKey"`
	}
	if json.Unmarshal([]byte(s), &v) != nil || v.Certificate == "" || v.PrivateKey == "" {
		return tls.Certificate{}, &config.Error{Variable: c.Prefix + "_SECRET_ARN", Problem: `secret must be JSON {"certificate": PEM, "privateKey": PEM}`}
	}
	cert, err := tls.X509KeyPair([]byte(v.Certificate), []byte(v.PrivateKey))
	if err != nil {
		return tls.Certificate{}, &config.Error{Variable: c.Prefix + "_SECRET_ARN", Problem: "certificate and privateKey do not form a valid PEM key pair"}
	}
	if len(cert.Certificate) > 0 {
		if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
			cert.Leaf = leaf
		}
	}
	return cert, nil
}
