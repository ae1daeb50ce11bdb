package produceguard

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const produceVersion = 9 // flexible: the response header has tagged fields

// recordBatch is the head of an idempotent record batch (no records needed
// here) for producer 7, epoch 0.
func recordBatch(baseSeq, count int32) []byte {
	b := make([]byte, 61)
	binary.BigEndian.PutUint32(b[8:12], uint32(len(b)-12))
	b[16] = 2 // magic
	binary.BigEndian.PutUint64(b[43:51], 7)
	binary.BigEndian.PutUint32(b[53:57], uint32(baseSeq))
	binary.BigEndian.PutUint32(b[57:61], uint32(count))
	return b
}

// produce frames a Produce request with one batch per partition given, as
// partition, base sequence, count triples.
func produce(corr int32, batches ...[3]int32) []byte {
	req := kmsg.NewPtrProduceRequest()
	req.Version = produceVersion
	req.Acks = -1
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "events"
	for _, b := range batches {
		p := kmsg.NewProduceRequestTopicPartition()
		p.Partition = b[0]
		p.Records = recordBatch(b[1], b[2])
		t.Partitions = append(t.Partitions, p)
	}
	req.Topics = append(req.Topics, t)
	return frameRequest(0, produceVersion, corr, append([]byte{0}, req.AppendTo(nil)...)) // header tags, then body
}

// frameRequest frames a request: size, API key, version, correlation ID, a null
// client ID, then body.
func frameRequest(key, version int16, corr int32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 0xffff)
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// produceResponse frames a Produce response with errCode for each of the
// request's partitions.
func produceResponse(corr int32, errCode int16, req []byte) []byte {
	r := kmsg.NewPtrProduceRequest()
	r.Version = produceVersion
	body, _ := skipRequestHeader(req[4:], true)
	_ = r.ReadFrom(body)
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = produceVersion
	t := kmsg.NewProduceResponseTopic()
	t.Topic = "events"
	for _, rp := range r.Topics[0].Partitions {
		p := kmsg.NewProduceResponseTopicPartition()
		p.Partition = rp.Partition
		p.ErrorCode = errCode
		t.Partitions = append(t.Partitions, p)
	}
	resp.Topics = append(resp.Topics, t)
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = append(b, 0) // no tagged fields in the header
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// fakeBroker answers the requests of one connection in their order, as a
// broker does: Produce with the next of codes (0 once they run out),
// anything else with an empty body. When it holds acks, each Produce
// response (and so every response after it) goes out only when the test
// calls ack. It records what it received and reports each request on
// recv as it arrives.
type fakeBroker struct {
	recv    chan received // every request, as received
	release chan struct{} // nil: Produce answered at once; else one ack per receive
	stop    chan struct{} // closed at cleanup: ends a wait for an ack

	mu         sync.Mutex
	order      []int16       // API keys, as received
	produced   []int32       // base sequences of the Produce batches, as received
	unanswered map[int32]int // per partition: Produce requests received, not yet answered
	violations int           // Produce batches received while their partition had one unanswered
	maxHeld    int           // most Produce requests unanswered at once
}

// received is one request as the broker read it.
type received struct {
	key     int16
	batches []batchRef // a Produce's idempotent batches
}

func (f *fakeBroker) serve(conn net.Conn, codes []int16) {
	// Responses go out in request order, as a broker sends them.
	type answer struct {
		partitions []int32 // of a Produce
		frame      []byte
	}
	answers := make(chan answer, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for a := range answers {
			if a.partitions != nil {
				if f.release != nil {
					select {
					case <-f.release:
					case <-f.stop:
						return
					}
				}
				f.mu.Lock()
				for _, p := range a.partitions {
					f.unanswered[p]--
				}
				f.mu.Unlock()
			}
			_, _ = conn.Write(a.frame)
		}
	}()
	defer func() { close(answers); <-done }()
	for {
		var size [4]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return
		}
		frame := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(conn, frame); err != nil {
			return
		}
		key := int16(binary.BigEndian.Uint16(frame[0:2]))
		version := int16(binary.BigEndian.Uint16(frame[2:4]))
		corr := int32(binary.BigEndian.Uint32(frame[4:8]))
		var batches []batchRef
		if key == apiKeyProduce {
			var err error
			if batches, err = produceBatches(version, frame); err != nil {
				panic(err) // the tests write only well-formed requests
			}
		}
		f.mu.Lock()
		f.order = append(f.order, key)
		var partitions []int32
		for _, b := range batches {
			f.produced = append(f.produced, b.baseSeq)
			if f.unanswered[b.key.partition] > 0 {
				f.violations++
			}
			f.unanswered[b.key.partition]++
			partitions = append(partitions, b.key.partition)
		}
		held := 0
		for _, n := range f.unanswered {
			held += n
		}
		f.maxHeld = max(f.maxHeld, held)
		f.mu.Unlock()
		f.recv <- received{key: key, batches: batches}
		if key != apiKeyProduce {
			answers <- answer{frame: binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 4), uint32(corr))}
			continue
		}
		var code int16
		if len(codes) > 0 {
			code, codes = codes[0], codes[1:]
		}
		answers <- answer{partitions: partitions, frame: produceResponse(corr, code, append(size[:], frame...))}
	}
}

// dial connects to a fake broker (started on the first dial) through g.
// With hold, the broker answers each Produce only when the test calls ack.
func dial(t *testing.T, g *Guard, hold bool, codes ...int16) (net.Conn, *fakeBroker) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBroker{recv: make(chan received, 100), stop: make(chan struct{}), unanswered: map[int32]int{}}
	if hold {
		f.release = make(chan struct{})
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		f.serve(conn, codes)
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := g.Wrap(raw)
	t.Cleanup(func() {
		close(f.stop)
		c.Close()
		ln.Close()
		<-served
	})
	// The client reads responses as franz-go does, in its own goroutine.
	go func() { _, _ = io.Copy(io.Discard, c) }()
	return c, f
}

// ack lets the broker answer the oldest Produce it holds.
func (f *fakeBroker) ack(t *testing.T) {
	t.Helper()
	select {
	case f.release <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatal("the broker holds no Produce to answer")
	}
}

// next returns the next request the broker receives.
func (f *fakeBroker) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-f.recv:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the broker received no further request")
		return received{}
	}
}

func (f *fakeBroker) seen() (order []int16, produced []int32, violations int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.order), slices.Clone(f.produced), f.violations
}

// watchWaits makes g report each write it holds back for a predecessor,
// by the write's first batch.
func watchWaits(g *Guard) <-chan batchRef {
	waits := make(chan batchRef, 100)
	g.waitHook = func(batches []batchRef) {
		select {
		case waits <- batches[0]:
		default:
		}
	}
	return waits
}

// awaitHeldBack returns once the guard holds back the write of the batch
// at base sequence seq, and fails if the broker receives any request
// first: a write must not pass its unacknowledged predecessor, and
// nothing written after it on the connection may either.
func awaitHeldBack(t *testing.T, f *fakeBroker, waits <-chan batchRef, seq int32) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-waits:
			if got.baseSeq == seq {
				return
			}
		case r := <-f.recv:
			t.Fatalf("the broker received request %d (batches %+v) while the guard should hold back base sequence %d", r.key, r.batches, seq)
		case <-timeout:
			t.Fatalf("the write of base sequence %d was not held back", seq)
		}
	}
}

// Each write of a partition reaches the broker only after its
// predecessor's ack, while requests of other kinds written before it go
// out at once.
func TestProduceGuardWaitsForThePredecessor(t *testing.T) {
	g := New()
	waits := watchWaits(g)
	c, f := dial(t, g, true)
	wrote := make(chan error, 1)
	go func() {
		for i := range int32(3) {
			if _, err := c.Write(produce(i, [3]int32{0, i * 5, 5})); err != nil {
				wrote <- err
				return
			}
			// A metadata request goes out while the produce is unanswered.
			if _, err := c.Write(frameRequest(3, 12, 100+i, nil)); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	for i := range int32(3) {
		if r := f.next(t); r.key != apiKeyProduce || r.batches[0].baseSeq != i*5 {
			t.Fatalf("request %d: broker received %d %+v, want the produce at base sequence %d", 2*i, r.key, r.batches, i*5)
		}
		if r := f.next(t); r.key != 3 {
			t.Fatalf("request %d: broker received %d, want the metadata request", 2*i+1, r.key)
		}
		if i < 2 {
			// The next batch is held back until this one's ack.
			awaitHeldBack(t, f, waits, (i+1)*5)
		}
		f.ack(t)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	order, produced, violations := f.seen()
	if violations != 0 {
		t.Fatalf("the broker received %d produce batches while their partition had one unanswered", violations)
	}
	if want := []int16{0, 3, 0, 3, 0, 3}; !slices.Equal(order, want) {
		t.Fatalf("broker saw %v, want %v", order, want)
	}
	if want := []int32{0, 5, 10}; !slices.Equal(produced, want) {
		t.Fatalf("broker received base sequences %v, want %v", produced, want)
	}
}

// Batches of different partitions do not wait for each other: all three
// reach the broker while none is acknowledged.
func TestProduceGuardPartitionsIndependent(t *testing.T) {
	g := New()
	waits := watchWaits(g)
	c, f := dial(t, g, true)
	wrote := make(chan error, 1)
	go func() {
		for p := range int32(3) {
			if _, err := c.Write(produce(p, [3]int32{p, 0, 5})); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	for p := range int32(3) {
		select {
		case r := <-f.recv:
			if r.key != apiKeyProduce || r.batches[0].key.partition != p {
				t.Fatalf("broker received %d %+v, want the produce of partition %d", r.key, r.batches, p)
			}
		case w := <-waits:
			t.Fatalf("the write of partition %d waited for another partition's ack", w.key.partition)
		case <-time.After(10 * time.Second):
			t.Fatalf("the produce of partition %d did not reach the broker", p)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	held, violations := f.maxHeld, f.violations
	f.mu.Unlock()
	if held != 3 || violations != 0 {
		t.Fatalf("the broker held at most %d unanswered produce requests (%d violations); want all 3 at once", held, violations)
	}
}

// A request whose pieces arrive in several writes is still read: its
// batch is held back like a whole one.
func TestProduceGuardSplitWrites(t *testing.T) {
	g := New()
	waits := watchWaits(g)
	c, f := dial(t, g, true)
	wrote := make(chan error, 1)
	go func() {
		for i := range int32(2) {
			r := produce(i, [3]int32{0, i * 5, 5})
			for _, piece := range [][]byte{r[:3], r[3:7], r[7:]} {
				if _, err := c.Write(piece); err != nil {
					wrote <- err
					return
				}
			}
		}
		wrote <- nil
	}()
	if r := f.next(t); r.key != apiKeyProduce || r.batches[0].baseSeq != 0 {
		t.Fatalf("broker received %d %+v, want the first produce", r.key, r.batches)
	}
	awaitHeldBack(t, f, waits, 5)
	f.ack(t)
	if r := f.next(t); r.key != apiKeyProduce || r.batches[0].baseSeq != 5 {
		t.Fatalf("broker received %d %+v, want the second produce", r.key, r.batches)
	}
	f.ack(t)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if _, produced, violations := f.seen(); violations != 0 || !slices.Equal(produced, []int32{0, 5}) {
		t.Fatalf("broker received base sequences %v with %d violations", produced, violations)
	}
}

func TestProduceGuardRefusesTheSuccessorOfAFailedBatch(t *testing.T) {
	c, f := dial(t, New(), false, kerr.NotLeaderForPartition.Code)
	if _, err := c.Write(produce(1, [3]int32{0, 0, 5})); err != nil {
		t.Fatal(err)
	}
	// Batch N+1 was built before N's answer; it must not go out.
	if _, err := c.Write(produce(2, [3]int32{0, 5, 5})); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("produce after a failed one: %v, want ErrOutOfOrder", err)
	}
	// The resent N does.
	if _, err := c.Write(produce(3, [3]int32{0, 0, 5})); err != nil {
		t.Fatalf("resending the failed batch: %v", err)
	}
	f.next(t)
	f.next(t)
	if _, produced, _ := f.seen(); !slices.Equal(produced, []int32{0, 0}) {
		t.Fatalf("broker received base sequences %v, want the first produce and its resend", produced)
	}
}

// The restart case: batch N is written, the connection dies unanswered,
// and batch N+1 (built before) is then written on a new connection. It
// must be refused there too; N goes first.
func TestProduceGuardRefusesAcrossConnections(t *testing.T) {
	g := New()
	old, _ := dial(t, g, true)
	if _, err := old.Write(produce(1, [3]int32{0, 0, 5})); err != nil {
		t.Fatal(err)
	}
	old.Close()
	c, f := dial(t, g, false)
	if _, err := c.Write(produce(2, [3]int32{0, 5, 5})); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("N+1 on a new connection after N was lost: %v, want ErrOutOfOrder", err)
	}
	if _, err := c.Write(produce(3, [3]int32{0, 0, 5})); err != nil {
		t.Fatalf("resending N: %v", err)
	}
	if _, err := c.Write(produce(4, [3]int32{0, 5, 5})); err != nil {
		t.Fatalf("N+1 after N was acknowledged: %v", err)
	}
	f.next(t)
	f.next(t)
	if _, produced, violations := f.seen(); !slices.Equal(produced, []int32{0, 5}) || violations != 0 {
		t.Fatalf("broker received base sequences %v with %d violations; want N then N+1", produced, violations)
	}
}

func TestProduceGuardWriteDeadline(t *testing.T) {
	c, _ := dial(t, New(), true)
	if _, err := c.Write(produce(1, [3]int32{0, 0, 5})); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWriteDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(produce(2, [3]int32{0, 5, 5})); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("waiting past the write deadline: %v, want os.ErrDeadlineExceeded", err)
	}
}

// secondWriteHeldBack writes a first batch (partition 0, sequences 0-4)
// whose answer the broker holds, then starts a second (5-9) and returns
// once the guard holds it back; done receives the second write's result.
func secondWriteHeldBack(t *testing.T) (c net.Conn, done <-chan error) {
	t.Helper()
	g := New()
	waits := watchWaits(g)
	c, f := dial(t, g, true)
	if _, err := c.Write(produce(1, [3]int32{0, 0, 5})); err != nil {
		t.Fatal(err)
	}
	f.next(t)
	d := make(chan error, 1)
	go func() {
		_, err := c.Write(produce(2, [3]int32{0, 5, 5}))
		d <- err
	}()
	awaitHeldBack(t, f, waits, 5)
	return c, d
}

// A deadline set while a write waits for its predecessor ends the wait.
func TestProduceGuardDeadlineSetWhileWaiting(t *testing.T) {
	c, done := secondWriteHeldBack(t)
	if err := c.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("waiting past the write deadline: %v, want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write waiting on the guard was not released by its deadline")
	}
}

func TestProduceGuardCloseReleasesWriters(t *testing.T) {
	c, done := secondWriteHeldBack(t)
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("write on a closed connection succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a writer waiting on the guard was not released by Close")
	}
}

func TestAcknowledgedRejectsGarbage(t *testing.T) {
	for _, frame := range [][]byte{nil, {0, 0, 0, 1}, {0, 0, 0, 1, 0x80}, {0, 0, 0, 1, 0, 9, 9, 9}} {
		if len(acknowledged(produceVersion, frame)) != 0 {
			t.Errorf("acknowledged(%x) found partitions", frame)
		}
	}
	req := produce(1, [3]int32{4, 0, 1})
	ack := acknowledged(produceVersion, produceResponse(1, 0, req)[4:])
	if !ack[topicPartition{"events", 4}] {
		t.Errorf("a clean response did not acknowledge its partition: %v", ack)
	}
}
