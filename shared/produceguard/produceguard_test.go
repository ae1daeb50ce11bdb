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

// fakeBroker answers requests on conn in order: Produce after delay with
// the next of codes (0 once they run out), anything else at once with an
// empty body. It records what it saw.
type fakeBroker struct {
	mu         sync.Mutex
	order      []int16 // API keys, as received
	violations int     // Produce requests received while one was unanswered
	unanswered int
}

func (f *fakeBroker) serve(conn net.Conn, delay time.Duration, codes []int16) {
	// Responses go out in request order, as a broker sends them.
	type answer struct {
		produce bool
		frame   []byte
	}
	answers := make(chan answer, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for a := range answers {
			if a.produce {
				time.Sleep(delay)
				f.mu.Lock()
				f.unanswered--
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
		corr := int32(binary.BigEndian.Uint32(frame[4:8]))
		f.mu.Lock()
		f.order = append(f.order, key)
		if key == 0 {
			if f.unanswered > 0 {
				f.violations++
			}
			f.unanswered++
		}
		f.mu.Unlock()
		if key != 0 {
			answers <- answer{frame: binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 4), uint32(corr))}
			continue
		}
		var code int16
		if len(codes) > 0 {
			code, codes = codes[0], codes[1:]
		}
		answers <- answer{produce: true, frame: produceResponse(corr, code, append(size[:], frame...))}
	}
}

// dial connects to a fake broker (started on the first dial) through g.
func dial(t *testing.T, g *Guard, delay time.Duration, codes ...int16) (net.Conn, *fakeBroker) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f := &fakeBroker{}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		f.serve(conn, delay, codes)
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := g.Wrap(raw)
	t.Cleanup(func() { c.Close() })
	// The client reads responses as franz-go does, in its own goroutine.
	go func() { _, _ = io.Copy(io.Discard, c) }()
	return c, f
}

func (f *fakeBroker) seen() ([]int16, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int16(nil), f.order...), f.violations
}

func TestProduceGuardWaitsForThePredecessor(t *testing.T) {
	c, f := dial(t, New(), 30*time.Millisecond)
	start := time.Now()
	for i := range int32(3) {
		if _, err := c.Write(produce(i, [3]int32{0, i * 5, 5})); err != nil {
			t.Fatal(err)
		}
		// A metadata request goes out while the produce is unanswered.
		if _, err := c.Write(frameRequest(3, 12, 100+i, nil)); err != nil {
			t.Fatal(err)
		}
	}
	// The third batch went out only after two acknowledgements.
	if took := time.Since(start); took < 60*time.Millisecond {
		t.Fatalf("three produce writes took %v: the second and third did not wait", took)
	}
	time.Sleep(50 * time.Millisecond)
	order, violations := f.seen()
	if violations != 0 {
		t.Fatalf("the broker saw %d produce requests while one was unanswered", violations)
	}
	if want := []int16{0, 3, 0, 3, 0, 3}; !slices.Equal(order, want) {
		t.Fatalf("broker saw %v, want %v", order, want)
	}
}

// Batches of different partitions do not wait for each other.
func TestProduceGuardPartitionsIndependent(t *testing.T) {
	c, f := dial(t, New(), 50*time.Millisecond)
	start := time.Now()
	for p := range int32(3) {
		if _, err := c.Write(produce(p, [3]int32{p, 0, 5})); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 40*time.Millisecond {
		t.Fatalf("first batches of three partitions took %v to write: they waited on each other", took)
	}
	time.Sleep(10 * time.Millisecond)
	if order, _ := f.seen(); len(order) != 3 {
		t.Fatalf("broker saw %v, want three produce requests", order)
	}
}

// A request whose pieces arrive in several writes is still read.
func TestProduceGuardSplitWrites(t *testing.T) {
	c, f := dial(t, New(), 30*time.Millisecond)
	for i := range int32(2) {
		r := produce(i, [3]int32{0, i * 5, 5})
		for _, piece := range [][]byte{r[:3], r[3:7], r[7:]} {
			if _, err := c.Write(piece); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(80 * time.Millisecond)
	if order, violations := f.seen(); violations != 0 || len(order) != 2 {
		t.Fatalf("broker saw %v with %d violations", order, violations)
	}
}

func TestProduceGuardRefusesTheSuccessorOfAFailedBatch(t *testing.T) {
	c, f := dial(t, New(), 10*time.Millisecond, kerr.NotLeaderForPartition.Code)
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
	time.Sleep(30 * time.Millisecond)
	if order, _ := f.seen(); len(order) != 2 {
		t.Fatalf("broker saw %v, want the first produce and its resend", order)
	}
}

// The restart case: batch N is written, the connection dies unanswered,
// and batch N+1 (built before) is then written on a new connection. It
// must be refused there too; N goes first.
func TestProduceGuardRefusesAcrossConnections(t *testing.T) {
	g := New()
	old, _ := dial(t, g, time.Hour)
	if _, err := old.Write(produce(1, [3]int32{0, 0, 5})); err != nil {
		t.Fatal(err)
	}
	old.Close()
	c, f := dial(t, g, 10*time.Millisecond)
	if _, err := c.Write(produce(2, [3]int32{0, 5, 5})); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("N+1 on a new connection after N was lost: %v, want ErrOutOfOrder", err)
	}
	if _, err := c.Write(produce(3, [3]int32{0, 0, 5})); err != nil {
		t.Fatalf("resending N: %v", err)
	}
	if _, err := c.Write(produce(4, [3]int32{0, 5, 5})); err != nil {
		t.Fatalf("N+1 after N was acknowledged: %v", err)
	}
	time.Sleep(30 * time.Millisecond)
	if order, violations := f.seen(); len(order) != 2 || violations != 0 {
		t.Fatalf("broker saw %v with %d violations", order, violations)
	}
}

func TestProduceGuardWriteDeadline(t *testing.T) {
	c, _ := dial(t, New(), time.Hour)
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

func TestProduceGuardCloseReleasesWriters(t *testing.T) {
	c, _ := dial(t, New(), time.Hour)
	if _, err := c.Write(produce(1, [3]int32{0, 0, 5})); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(produce(2, [3]int32{0, 5, 5}))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("write on a closed connection succeeded")
		}
	case <-time.After(5 * time.Second):
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
