// Package privateca makes a private certificate authority and the server
// certificates it signs, for local brokers and tests that stand in for a
// self-managed Kafka cluster whose TLS certificates a private CA issued.
//
// Everything is made in memory at run time; nothing here is a fixed test
// key. The CA's private key never leaves the *CA: only its certificate
// (PEM) is handed out, to be trusted by clients.
package privateca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CA is a private root certificate authority.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
	// PEM is the CA certificate, PEM-encoded: what clients trust.
	PEM string
}

// New makes a self-signed root CA named name, valid from an hour ago for
// validity.
func New(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("privateca: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"kafka-msk-migrator local"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("privateca: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("privateca: CA certificate: %w", err)
	}
	return &CA{cert: cert, key: key, PEM: encode("CERTIFICATE", der)}, nil
}

// Server is a server certificate the CA signed, with its private key.
type Server struct {
	// CertPEM is the server certificate followed by the CA certificate
	// (the chain a server presents).
	CertPEM string
	// KeyPEM is the private key, PKCS#8, unencrypted ("PRIVATE KEY").
	KeyPEM string
}

// TLSCertificate is the server's certificate chain and key for a Go TLS
// server.
func (s Server) TLSCertificate() (tls.Certificate, error) {
	return tls.X509KeyPair([]byte(s.CertPEM), []byte(s.KeyPEM))
}

// Issue signs a server certificate for hosts (IP addresses or DNS names,
// all in its subject alternative names), valid from an hour ago for
// validity. The key is RSA 2048, which every TLS stack (Java's PEM key
// stores included) reads.
func (ca *CA) Issue(hosts []string, validity time.Duration) (Server, error) {
	if len(hosts) == 0 {
		return Server{}, fmt.Errorf("privateca: a server certificate needs at least one host")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Server{}, fmt.Errorf("privateca: server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		// Client auth too: a broker's inter-broker client presents it.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return Server{}, fmt.Errorf("privateca: server certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Server{}, fmt.Errorf("privateca: server key: %w", err)
	}
	return Server{CertPEM: encode("CERTIFICATE", der) + ca.PEM, KeyPEM: encode("PRIVATE KEY", pk)}, nil
}

func encode(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}
