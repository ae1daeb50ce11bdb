package cutoverrun

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// ledger counts numbered messages produced and consumed across both
// clusters.
type ledger struct {
	next atomic.Int64 // next number to produce
	mu   sync.Mutex
	seen map[int]int
}

func newLedger() *ledger { return &ledger{seen: map[int]int{}} }

func (l *ledger) consumed(v []byte) {
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return
	}
	l.mu.Lock()
	l.seen[n]++
	l.mu.Unlock()
}

// check returns produced, missing and duplicated counts.
func (l *ledger) check() (produced, missing, dup int) {
	produced = int(l.next.Load())
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < produced; i++ {
		switch c := l.seen[i]; {
		case c == 0:
			missing++
		case c > 1:
			dup += c - 1
		}
	}
	return
}

// producerApp writes numbered messages, one at a time, until stopped.
type producerApp struct {
	stop chan struct{}
	done chan struct{}
	err  atomic.Value
}

func startProducer(t *testing.T, c *kafkalocal.Cluster, l *ledger, partitions int32, app bool) *producerApp {
	t.Helper()
	opts := []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0)}
	var cl *kgo.Client
	var err error
	if app {
		cl, err = c.NewAppClient(opts...)
	} else {
		cl, err = c.NewClient(opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := &producerApp{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer cl.Close()
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			n := l.next.Load()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: int32(n) % partitions, Value: []byte(strconv.FormatInt(n, 10))}).FirstErr()
			cancel()
			if err != nil {
				p.err.Store(err)
				return
			}
			l.next.Add(1)
		}
	}()
	t.Cleanup(func() { p.Stop() })
	return p
}

// Stop stops producing and returns once the last write is acknowledged.
func (p *producerApp) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// consumerApp reads in a group and commits after every poll, so that
// stopping between polls leaves nothing read but uncommitted.
type consumerApp struct {
	stop chan struct{}
	done chan struct{}
	err  atomic.Value
}

func startConsumer(t *testing.T, c *kafkalocal.Cluster, l *ledger) *consumerApp {
	t.Helper()
	cl, err := c.NewAppClient(
		kgo.ConsumerGroup(appGroup), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.SessionTimeout(2*time.Second),
		kgo.HeartbeatInterval(200*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	a := &consumerApp{stop: make(chan struct{}), done: make(chan struct{})}
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
					a.err.Store(err)
				}
				ccancel()
			}
		}
	}()
	t.Cleanup(func() { a.Stop() })
	return a
}

// Stop stops consuming after the current poll is committed and leaves the
// group.
func (a *consumerApp) Stop() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
}
