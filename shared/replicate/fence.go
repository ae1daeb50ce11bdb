package replicate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The fence: why and how.
//
// Lambda's Kafka pollers deliver each partition at least once, and AWS does
// not document that a poller losing a partition in a rebalance has finished
// its invocation before the partition's new owner invokes the function. Two
// invocations may then write the same source partition at once: both read
// the same target tail and both write (duplicates), or the old one (a
// zombie) writes a batch after the new owner wrote later ones (duplicates,
// and provenance going back, which breaks the cutover's offset translation).
// Reading the tail and then writing cannot be made atomic across producers.
//
// With a transactional ID prefix set, every source partition has its own
// Kafka transactional ID, prefix + topic + "-" + partition, and each batch
// writes a partition inside one transaction of that ID, after the
// producer's InitProducerID:
//
//   - InitProducerID bumps the ID's epoch: every producer with an older
//     epoch is fenced (its later writes, and its commit, are refused), and a
//     transaction it left open is aborted, markers written, before the
//     call returns.
//   - The batch reads the target's tail (read_committed, package peek) only
//     after its producer's InitProducerID, so it sees every transaction
//     committed before, and none can commit later without fencing it.
//   - Hence the committed transactions of a partition form one serial
//     history, each written on top of the tail it read: dedup by provenance
//     is exact again, whatever overlaps. A fenced invocation fails with a
//     *FenceError and what it wrote stays aborted.
//
// A warm container keeps each partition's producer between batches and
// reuses it only after a committed transaction; after any failure it is
// closed, and the next batch starts a new one (a new InitProducerID).

// fenceTransactionTimeout bounds a partition's transaction: longer than
// the 14-minute function timeout event source mappings allow, and within
// the brokers' default transaction.max.timeout.ms (15 minutes).
const fenceTransactionTimeout = 14*time.Minute + 30*time.Second

// FenceOptions are the options of a partition's transactional producer,
// added to TargetOptions.
func FenceOptions(transactionalID string) []kgo.Opt {
	return []kgo.Opt{kgo.TransactionalID(transactionalID), kgo.TransactionTimeout(fenceTransactionTimeout)}
}

// WithFenceClientFactory gives the replicator its partitions'
// transactional producers, built from TargetOptions and
// FenceOptions(transactionalID). It is needed when
// Config.TransactionalIDPrefix is set.
func WithFenceClientFactory(f func(transactionalID string) (*kgo.Client, error)) Option {
	return func(r *Replicator) { r.newFenceClient = f }
}

// fencedProducer is one source partition's transactional producer. Its
// mutex is held by the batch that uses it, from begin to end.
type fencedProducer struct {
	mu sync.Mutex
	id string
	cl *kgo.Client
	// transient: built because the cached producer was busy with a
	// concurrent batch of the same partition in this container; closed at
	// the end.
	transient bool
}

func (r *Replicator) transactionalID(topic string, partition int32) string {
	return r.cfg.TransactionalIDPrefix + topic + "-" + strconv.Itoa(int(partition))
}

// beginFence returns the source partition's producer, initialized (so every
// older producer of the partition is fenced) and in a transaction. The
// batch must end it with endFence.
func (r *Replicator) beginFence(ctx context.Context, topic string, partition int32) (*fencedProducer, error) {
	key := tp{topic, partition}
	r.fenceMu.Lock()
	fp := r.fence[key]
	if fp == nil {
		fp = &fencedProducer{id: r.transactionalID(topic, partition)}
		r.fence[key] = fp
	}
	r.fenceMu.Unlock()
	if !fp.mu.TryLock() {
		// Lambda never runs two invocations at once in one container, but
		// a Replicator may be shared: a producer of its own fences the
		// other batch, which fails and is retried.
		fp = &fencedProducer{id: fp.id, transient: true}
		fp.mu.Lock()
	}
	fail := func(op string, err error) error {
		if fp.cl != nil {
			fp.cl.Close()
			fp.cl = nil
		}
		fp.mu.Unlock()
		return fenceFailure(topic, partition, fp.id, op, err)
	}
	if fp.cl == nil {
		cl, err := r.newFenceClient(fp.id)
		if err != nil {
			return nil, fail("begin", err)
		}
		fp.cl = cl
		if _, _, err := cl.ProducerID(ctx); err != nil {
			return nil, fail("begin", err)
		}
	}
	if err := fp.cl.BeginTransaction(); err != nil {
		return nil, fail("begin", err)
	}
	return fp, nil
}

// endFence commits the partition's transaction if commit, once every
// record sent is acknowledged, and aborts it otherwise. Only a producer
// whose transaction committed is kept for the next batch.
func (r *Replicator) endFence(fp *fencedProducer, topic string, partition int32, commit bool) error {
	defer fp.mu.Unlock()
	// Ending is never canceled: a canceled EndTxn leaves its outcome unknown.
	ctx := context.Background()
	var err error
	if commit {
		err = fp.cl.EndTransaction(ctx, kgo.TryCommit)
	} else {
		if aerr := fp.cl.AbortBufferedRecords(ctx); aerr != nil {
			err = aerr
		}
		if eerr := fp.cl.EndTransaction(ctx, kgo.TryAbort); err == nil {
			err = eerr
		}
	}
	if err != nil || !commit || fp.transient {
		fp.cl.Close()
		fp.cl = nil
	}
	if err != nil {
		op := "commit"
		if !commit {
			op = "abort"
		}
		return fenceFailure(topic, partition, fp.id, op, err)
	}
	return nil
}

// fenceFailure is a *FenceError if err says a newer producer of the
// transactional ID took over, and a *TargetWriteError otherwise.
func fenceFailure(topic string, partition int32, id, op string, err error) error {
	if fencedErr(err) {
		return &FenceError{Topic: topic, Partition: partition, TransactionalID: id, Op: op, Err: err}
	}
	return &TargetWriteError{Errors: []string{fmt.Sprintf("transaction %s of source %s/%d (transactional ID %s): %v", op, topic, partition, id, err)}, Err: err}
}

// fencedErr reports whether err means a newer producer of the same
// transactional ID took over.
func fencedErr(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
}

// closeFence closes every cached partition producer.
func (r *Replicator) closeFence() {
	r.fenceMu.Lock()
	defer r.fenceMu.Unlock()
	for _, fp := range r.fence {
		if fp.mu.TryLock() {
			if fp.cl != nil {
				fp.cl.Close()
				fp.cl = nil
			}
			fp.mu.Unlock()
		}
	}
}
