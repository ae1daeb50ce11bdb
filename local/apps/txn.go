package apps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// HeaderTxn is the header TxnProducer puts on every record: the
// transaction's sequence number, so tests can tell transactions apart.
const HeaderTxn = "txn"

// TxnProducer writes the ledger's next numbers in transactions, number n
// to partition n % partitions, as a transactional application (Kafka
// Streams exactly-once, for one) does. Only committed numbers count as
// produced: an aborted transaction's numbers are written again by the
// next transaction, so a consumer that reads an aborted record sees that
// number twice (Ledger.Check) or one never produced (Ledger.Unproduced).
// It must be the ledger's only producer. Its methods are not safe for
// concurrent use.
type TxnProducer struct {
	cl         *kgo.Client
	l          *Ledger
	c          *kafkalocal.Cluster
	topic      string
	partitions int32
	txns       int
	open       bool
}

// NewTxnProducer connects a transactional producer with transactional ID
// id to c as the given user, who needs WRITE on the transactional ID (the
// embedded clusters' application user has none: use the admin).
func NewTxnProducer(c *kafkalocal.Cluster, as kafkalocal.Credentials, l *Ledger, topic string, partitions int32, id string) (*TxnProducer, error) {
	cl, err := c.NewClientAs(as, kgo.TransactionalID(id), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.TransactionTimeout(5*time.Minute))
	if err != nil {
		return nil, err
	}
	return &TxnProducer{cl: cl, l: l, c: c, topic: topic, partitions: partitions}, nil
}

// Close aborts an open transaction, if any, and closes the client.
func (p *TxnProducer) Close() {
	if p.open {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = p.cl.EndTransaction(ctx, kgo.TryAbort)
		cancel()
	}
	p.cl.Close()
}

// Commit writes the next n numbers in one transaction and commits it.
func (p *TxnProducer) Commit(ctx context.Context, n int) error {
	o, err := p.Begin(ctx, n)
	if err != nil {
		return err
	}
	return o.Commit(ctx)
}

// Abort writes the next n numbers in one transaction and aborts it.
func (p *TxnProducer) Abort(ctx context.Context, n int) error {
	o, err := p.Begin(ctx, n)
	if err != nil {
		return err
	}
	return o.Abort(ctx)
}

// OpenTxn is a transaction TxnProducer.Begin left open.
type OpenTxn struct {
	p *TxnProducer
	n int
}

// Begin writes the next n numbers in a transaction it leaves open (its
// records are on the source, unreadable by read_committed consumers, and
// hold back the partitions' last stable offset) until Commit or Abort.
func (p *TxnProducer) Begin(ctx context.Context, n int) (*OpenTxn, error) {
	if p.open {
		return nil, errors.New("apps: a transaction is already open")
	}
	if err := p.cl.BeginTransaction(); err != nil {
		return nil, fmt.Errorf("beginning a transaction on %s: %w", p.c.Name(), err)
	}
	p.open = true
	p.txns++
	first := p.l.next.Load()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v := first + int64(i)
		recs[i] = &kgo.Record{Topic: p.topic, Partition: int32(v % int64(p.partitions)),
			Key: []byte("txn-" + strconv.FormatInt(v, 10)), Value: []byte(strconv.FormatInt(v, 10)),
			Headers: []kgo.RecordHeader{{Key: HeaderTxn, Value: []byte(strconv.Itoa(p.txns))}}}
	}
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("producing %d numbers from %d to %s on %s: %w", n, first, p.topic, p.c.Name(), err)
	}
	return &OpenTxn{p: p, n: n}, nil
}

// Commit commits the transaction; the ledger counts its numbers.
func (o *OpenTxn) Commit(ctx context.Context) error { return o.end(ctx, kgo.TryCommit) }

// Abort aborts the transaction; its numbers are written again by the next.
func (o *OpenTxn) Abort(ctx context.Context) error { return o.end(ctx, kgo.TryAbort) }

func (o *OpenTxn) end(ctx context.Context, how kgo.TransactionEndTry) error {
	p := o.p
	if !p.open {
		return errors.New("apps: the transaction already ended")
	}
	if err := p.cl.EndTransaction(ctx, how); err != nil {
		return fmt.Errorf("ending a transaction on %s: %w", p.c.Name(), err)
	}
	p.open = false
	if how == kgo.TryCommit {
		p.l.next.Add(int64(o.n))
	}
	return nil
}

// TxnApp is a running transactional producer (StartTxnProducer).
type TxnApp struct {
	*App
	mu      sync.Mutex
	hold    bool
	held    chan struct{} // closed once a held transaction is open
	release chan struct{}
}

// StartTxnProducer writes the ledger's numbers in transactions of
// perTxn numbers until stopped or a write fails, aborting every
// abortEvery-th transaction (none if abortEvery < 1).
func StartTxnProducer(c *kafkalocal.Cluster, as kafkalocal.Credentials, l *Ledger, topic string, partitions int32, id string, perTxn, abortEvery int) (*TxnApp, error) {
	p, err := NewTxnProducer(c, as, l, topic, partitions, id)
	if err != nil {
		return nil, err
	}
	a := &TxnApp{App: newApp()}
	go func() {
		defer close(a.done)
		defer p.Close()
		for i := 1; ; i++ {
			select {
			case <-a.stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			o, err := p.Begin(ctx, perTxn)
			cancel()
			if err != nil {
				a.fail(err)
				return
			}
			a.mu.Lock()
			hold, held, release := a.hold, a.held, a.release
			a.hold = false
			a.mu.Unlock()
			if hold {
				close(held)
				select {
				case <-release:
				case <-a.stop:
				}
			}
			ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
			if abortEvery > 0 && i%abortEvery == 0 {
				err = o.Abort(ctx)
			} else {
				err = o.Commit(ctx)
			}
			cancel()
			if err != nil {
				a.fail(err)
				return
			}
		}
	}()
	return a, nil
}

// Hold makes the next transaction stay open once its records are written,
// and returns when it is; the caller then lets it end with the function
// returned (it commits or aborts as it would have).
func (a *TxnApp) Hold(ctx context.Context) (release func(), err error) {
	held, rel := make(chan struct{}), make(chan struct{})
	a.mu.Lock()
	a.hold, a.held, a.release = true, held, rel
	a.mu.Unlock()
	select {
	case <-held:
		var once sync.Once
		return func() { once.Do(func() { close(rel) }) }, nil
	case <-a.done:
		return nil, fmt.Errorf("apps: the producer stopped before holding a transaction: %v", a.Err())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
