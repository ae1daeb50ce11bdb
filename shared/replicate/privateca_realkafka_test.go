package replicate

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
)

// TestRealKafkaPrivateCASource replicates from a real source whose TLS
// certificate a private CA signed (realkafka's private-ca source: SCRAM over
// SASL_SSL) as a deployment with SourceCaSecretArn does: the mapping trusts
// the CA through its SERVER_ROOT_CA_CERTIFICATE (ServerRootCACertificate)
// and nothing else, and the replicator reads transaction outcomes with a
// source client built by kafkaconn from SOURCE_SECRET_ARN and
// SOURCE_CA_SECRET_ARN. Every record reaches the target once, equal.
func TestRealKafkaPrivateCASource(t *testing.T) {
	pair, s := realkafka.PrivateCAPair(t)
	e := &env{
		real:          true,
		unique:        func(name string) string { return realkafka.UniqueName("kmig-privateca." + name) },
		invokeTimeout: 30 * time.Second,
		clusters: func(t *testing.T, src, tgt []kafkalocal.Topic) *kafkalocal.Pair {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := pair.Source.CreateTopics(ctx, src...); err != nil {
				t.Fatal(err)
			}
			if err := pair.Target.CreateTopics(ctx, tgt...); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if !t.Failed() {
					deleteTopics(pair.Source, src)
					deleteTopics(pair.Target, tgt)
				}
			})
			return pair
		},
	}
	const (
		credsARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kmig-source-AbCdEf"
		caARN    = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kmig-source-ca-AbCdEf"
	)
	ep := s.Endpoints
	creds, _ := json.Marshal(map[string]string{"username": ep.SourceUser, "password": ep.SourcePassword})
	ca, _ := json.Marshal(map[string]string{"certificate": s.CAPEM})
	secrets := kafkaconn.SecretsMap{credsARN: string(creds), caARN: string(ca)}

	orders := e.tn("orders")
	r := newRigOn(t, e, map[string]int32{"orders": 3}, nil, func(c *Config) {
		c.Source = kafkaconn.Config{Prefix: "SOURCE", Bootstrap: pair.Source.Bootstrap(), Auth: kafkaconn.AuthSCRAM512,
			SecretARN: credsARN, CASecretARN: caARN}
	})
	// The replicator as the function's main builds it: its source client
	// from kafkaconn and the secrets, not the helper cluster's options.
	src, err := NewSourceClient(context.Background(), r.cfg, secrets)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	r.source = src
	if r.repl, r.target, err = r.newFunction(&r.emf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.target.Close)

	seed(t, pair.Source, orders, 3, 200, 20)
	m := r.mappingFor(t, orders, 100, 1, r.repl, func(c *esm.Config) {
		c.ServerRootCACertificate = s.CAPEM
		c.ClientOptions = []kgo.Opt{
			kgo.SASL(scram.Auth{User: ep.SourceUser, Pass: ep.SourcePassword}.AsSha512Mechanism()),
			kgo.MetadataMinAge(100 * time.Millisecond),
		}
	})
	r.waitCaughtUp(t, m, time.Minute)
	exactlyOnce(t, readAll(t, pair.Source, orders), readAll(t, pair.Target, orders), orders)
	if tot := r.repl.Totals(); tot.RecordsWritten != 600 || tot.DuplicatesSkipped != 0 {
		t.Fatalf("totals = %+v, want 600 written and none skipped", tot)
	}
}
