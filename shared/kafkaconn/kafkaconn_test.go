package kafkaconn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// selfSigned returns a certificate for localhost and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// tlsBroker listens with TLS on loopback as a broker with a self-signed
// certificate for localhost would, closed when the test ends. It returns
// the listener, its address by the name "localhost", and a pool that
// trusts the certificate.
func tlsBroker(t *testing.T) (net.Listener, string, *x509.CertPool) {
	t.Helper()
	cert, pool := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return ln, net.JoinHostPort("localhost", port), pool
}

// The dialer behind WrapConn speaks TLS, names the broker's host for SNI
// and verification, and wraps the TLS connection.
func TestDialerTLSThenWrap(t *testing.T) {
	ln, addr, pool := tlsBroker(t)
	sni := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			sni <- "handshake failed: " + err.Error()
			return
		}
		sni <- tc.ConnectionState().ServerName
		_, _ = io.Copy(c, c)
	}()
	var wrapped net.Conn
	dial := dialer(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, func(c net.Conn) net.Conn {
		wrapped = c
		return c
	})
	conn, err := dial(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, ok := wrapped.(*tls.Conn); !ok {
		t.Fatalf("wrap got %T, want the TLS connection", wrapped)
	}
	if got := <-sni; got != "localhost" {
		t.Fatalf("server saw server name %q, want localhost", got)
	}
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
}

// Without trusting the broker's certificate, the dial fails: TLS is
// verified, not merely spoken.
func TestDialerTLSVerifies(t *testing.T) {
	ln, addr, _ := tlsBroker(t)
	go func() {
		if c, err := ln.Accept(); err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	dial := dialer(&tls.Config{MinVersion: tls.VersionTLS12}, func(c net.Conn) net.Conn { return c })
	if conn, err := dial(context.Background(), "tcp", addr); err == nil {
		conn.Close()
		t.Fatal("dialled a broker with an untrusted certificate")
	}
}

// With WrapConn, Options dial through it for every auth kind; kgo refuses
// a client with both a dialer and DialTLSConfig.
func TestOptionsWithWrapConnBuildAClient(t *testing.T) {
	for _, auth := range []Auth{AuthPlaintext, AuthTLS, AuthSCRAM512, AuthIAM} {
		c := Config{Prefix: "TARGET", Bootstrap: []string{"localhost:9092"}, Auth: auth, Region: "us-east-1",
			Username: "u", Password: "p", WrapConn: func(c net.Conn) net.Conn { return c }}
		opts, err := c.Options(context.Background(), nil)
		if err != nil {
			t.Fatalf("%s: %v", auth, err)
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatalf("%s: %v", auth, err)
		}
		cl.Close()
	}
}
