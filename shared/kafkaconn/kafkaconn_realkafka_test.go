package kafkaconn

// The real-Kafka tier of the private-CA support: a real broker whose
// SASL_SSL listener presents a certificate signed by a CA made at run time
// (realkafka's private-ca source). -run RealKafka selects it.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka"
)

// The functions' path (FromEnv-style Config, secrets read through
// Secrets): SCRAM over TLS with the CA from its secret connects, produces
// and consumes on the real private-ca broker; without the CA the TLS
// handshake fails on the certificate.
func TestRealKafkaPrivateCA(t *testing.T) {
	s := realkafka.PrivateCA(t)
	const credsARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_src-AbCdEf"
	creds, _ := json.Marshal(map[string]string{"username": s.Endpoints.SourceUser, "password": s.Endpoints.SourcePassword})
	secrets := SecretsMap{credsARN: string(creds), caARN: caSecret(t, s.CAPEM)}
	cfg := Config{Prefix: "SOURCE", Bootstrap: []string{s.Bootstrap}, Auth: AuthSCRAM512, SecretARN: credsARN, CASecretARN: caARN}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cl, err := cfg.NewClient(ctx, secrets)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := realkafka.UniqueName("kmig-private-ca")
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = adm.DeleteTopics(context.Background(), topic) }()
	var sent []*kgo.Record
	for i := range 20 {
		sent = append(sent, &kgo.Record{Topic: topic, Partition: int32(i % 2), Key: []byte{byte(i)}, Value: []byte("private CA " + string(rune('a'+i)))})
	}
	if err := cl.ProduceSync(ctx, sent...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons, err := cfg.NewClient(ctx, secrets, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[string]bool{}
	for len(got) < len(sent) {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consuming after %d records: %v", len(got), err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if got[string(r.Value)] {
				t.Errorf("record %q read twice", r.Value)
			}
			got[string(r.Value)] = true
		})
	}
	for _, r := range sent {
		if !got[string(r.Value)] {
			t.Errorf("record %q not read", r.Value)
		}
	}

	cfg.CASecretARN = ""
	opts, err := cfg.Options(ctx, secrets)
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	defer pcancel()
	err = ping(pctx, opts)
	var verr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &verr) || !errors.As(err, &unknown) {
		t.Fatalf("without the CA: err = %v, want a certificate verification error (unknown authority)", err)
	}
}
