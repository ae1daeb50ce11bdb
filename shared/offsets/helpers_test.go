package offsets

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
)

// txnPartition is a kfake cluster with the one-partition topic, a
// producer writing it in transactions (transactional ID txnID), and a
// reader's admin and peek clients. Everything is closed when t ends; ctx
// ends after a minute.
type txnPartition struct {
	ctx   context.Context
	topic string
	txn   *kgo.Client
	adm   *kadm.Client
	r     *peek.Reader
}

func newTxnPartition(t *testing.T, topic, txnID string) *txnPartition {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	txn, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID(txnID), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(txn.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &txnPartition{ctx: ctx, topic: topic, txn: txn, adm: kadm.NewClient(cl), r: peek.New(cl)}
}

// write produces recs in one transaction and ends it with end.
func (p *txnPartition) write(t *testing.T, end kgo.TransactionEndTry, recs ...*kgo.Record) {
	t.Helper()
	if err := p.txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if len(recs) > 0 {
		if err := p.txn.ProduceSync(p.ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.txn.EndTransaction(p.ctx, end); err != nil {
		t.Fatal(err)
	}
}
