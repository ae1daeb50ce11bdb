// Package apps runs stand-ins for a user's applications during a local
// rehearsal: a producer that writes numbered messages, a transactional one
// that writes them in transactions it commits, aborts or holds open, and a
// consumer group member that reads them, plus a Ledger proving every
// committed number was consumed exactly once across the switch. Local runs
// and tests only.
package apps

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// Ledger counts numbered messages produced and consumed, across clusters.
type Ledger struct {
	next atomic.Int64 // next number to produce
	mu   sync.Mutex
	seen map[int]int
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{seen: map[int]int{}} }

func (l *Ledger) consumed(v []byte) {
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return
	}
	l.mu.Lock()
	l.seen[n]++
	l.mu.Unlock()
}

// Check returns how many numbers were produced, and of those how many were
// never consumed and how many extra times any was consumed.
func (l *Ledger) Check() (produced, missing, duplicated int) {
	produced = int(l.next.Load())
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < produced; i++ {
		switch c := l.seen[i]; {
		case c == 0:
			missing++
		case c > 1:
			duplicated += c - 1
		}
	}
	return
}

// WaitConsumed waits until every produced number was consumed or ctx ends,
// and returns Check's result.
func (l *Ledger) WaitConsumed(ctx context.Context) (produced, missing, duplicated int) {
	for {
		produced, missing, duplicated = l.Check()
		if missing == 0 || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitDistinct waits until at least n distinct numbers were consumed, and
// returns ctx's error if ctx ends first.
func (l *Ledger) WaitDistinct(ctx context.Context, n int) error {
	for l.Distinct() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d numbers consumed: %w", l.Distinct(), n, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// App is a running producer or consumer.
type App struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func newApp() *App { return &App{stop: make(chan struct{}), done: make(chan struct{})} }

// Stop stops the app and returns once its last write is acknowledged or
// its last poll committed and it left its group. It is safe to call twice.
func (a *App) Stop() {
	a.mu.Lock()
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	a.mu.Unlock()
	<-a.done
}

// Err returns the error that ended the app, if any.
func (a *App) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *App) fail(err error) {
	a.mu.Lock()
	if a.err == nil {
		a.err = err
	}
	a.mu.Unlock()
}

// StartProducer writes the ledger's next numbers to topic, one at a time,
// spread over partitions, until stopped or a write fails.
func StartProducer(c *kafkalocal.Cluster, as kafkalocal.Credentials, l *Ledger, topic string, partitions int32) (*App, error) {
	cl, err := c.NewClientAs(as, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		return nil, err
	}
	a := newApp()
	go func() {
		defer close(a.done)
		defer cl.Close()
		for {
			select {
			case <-a.stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			n := l.next.Load()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: int32(n % int64(partitions)), Value: []byte(strconv.FormatInt(n, 10))}).FirstErr()
			cancel()
			if err != nil {
				a.fail(fmt.Errorf("producing %d to %s on %s: %w", n, topic, c.Name(), err))
				return
			}
			l.next.Add(1)
		}
	}()
	return a, nil
}

// StartConsumer reads topic as a member of group and commits after every
// poll, so that stopping between polls leaves nothing read but
// uncommitted. Its session timeout is c.SessionTimeout() (2 s on an
// embedded cluster; real brokers refuse less than group.min.session.timeout.ms).
func StartConsumer(c *kafkalocal.Cluster, as kafkalocal.Credentials, l *Ledger, topic, group string) (*App, error) {
	// read_committed, as applications reading transactional topics do
	// (Kafka Streams exactly-once); on other topics it reads the same.
	cl, err := c.NewClientAs(as,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.SessionTimeout(c.SessionTimeout()),
		kgo.HeartbeatInterval(200*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	a := newApp()
	go func() {
		defer close(a.done)
		defer cl.Close() // leaves the group
		for {
			select {
			case <-a.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fs := cl.PollFetches(ctx)
			cancel()
			fs.EachRecord(func(r *kgo.Record) { l.consumed(r.Value) })
			if fs.NumRecords() > 0 {
				cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := cl.CommitUncommittedOffsets(cctx); err != nil {
					a.fail(fmt.Errorf("committing on %s: %w", c.Name(), err))
				}
				ccancel()
			}
		}
	}()
	return a, nil
}

// Times returns how many times number n was consumed.
func (l *Ledger) Times(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[n]
}

// Distinct returns how many distinct numbers were consumed.
func (l *Ledger) Distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// Unproduced returns how many times a number the ledger does not count as
// produced was consumed: a record of an aborted transaction (whose numbers
// TxnProducer writes again) or of one still open.
func (l *Ledger) Unproduced() int {
	produced := int(l.next.Load())
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for v, c := range l.seen {
		if v < 0 || v >= produced {
			n += c
		}
	}
	return n
}
