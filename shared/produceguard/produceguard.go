// Package produceguard keeps an idempotent producer's batches in order on
// the wire, whatever the broker remembers of its sequence numbers.
//
// Guaranteed, per producer ID, epoch and partition: a batch is written to
// the broker only after its predecessor was acknowledged, and never after
// a predecessor that failed or whose outcome is unknown (it is refused
// with ErrOutOfOrder until the predecessor is resent). Batches of
// different partitions do not wait for each other. Requests other than
// Produce are not held back themselves. See Guard.
package produceguard

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiKeyProduce is the Kafka protocol's Produce request key.
const apiKeyProduce = 0

// ErrOutOfOrder is the error of a Produce write refused by a
// Guard: a batch in it does not directly follow the last batch the
// target acknowledged for its producer and partition.
var ErrOutOfOrder = errors.New("produceguard: refusing to send a produce batch before its predecessor is acknowledged")

// Guard keeps a client's idempotent produce batches in order on the
// wire: a batch is written only once the batch before it (same producer ID,
// epoch and partition) has been acknowledged, and never if that one failed
// or its outcome is unknown. Wrap every broker connection of one client
// with the same guard (kafkaconn.Config.WrapConn = guard.Wrap).
//
// Why: the idempotent producer counts on the broker's per-producer
// sequence state to refuse batch N+1 while batch N is missing, and keeps
// up to five requests in flight per broker (franz-go offers no lower limit
// with idempotence). A broker drops that state for a producer whose last
// batch is timestamped more than producer.id.expiration.ms (a day by
// default) before now: when it reloads it after a restart, and at each
// expiration check. Replicated records keep their source CreateTime, so
// while a migration copies records older than a day, a target broker
// restart (MSK patches brokers by restarting them) would let N+1 land
// while N is being retried: a gap, then N written behind it. The guard
// does the broker's sequence check on the client, where it cannot be
// forgotten. A refused write fails its connection; franz-go then resends
// from the batch that failed, in order.
//
// Requests must be Kafka-framed, and every Produce must expect a response
// (acks other than 0).
type Guard struct {
	mu    sync.Mutex
	wake  *sync.Cond
	parts map[seqKey]*seqState

	// waitHook, when set, is called (with mu held) each time a write is
	// about to wait for an unanswered predecessor of one of batches. It
	// lets a test see that a write is held back, as it happens. Nil in
	// production.
	waitHook func(batches []batchRef)
}

// New returns a guard for one client's connections.
func New() *Guard {
	g := &Guard{parts: map[seqKey]*seqState{}}
	g.wake = sync.NewCond(&g.mu)
	return g
}

type seqKey struct {
	producerID int64
	epoch      int16
	topic      string // name, or hex topic ID (produce v13+)
	partition  int32
}

type seqState struct {
	next     int32 // base sequence of the next batch the broker may take
	inflight bool  // a batch is written and not yet answered
}

// batchRef is one idempotent batch of a written Produce request.
type batchRef struct {
	key     seqKey
	baseSeq int32
	count   int32
}

// Wrap returns c guarded by g.
func (g *Guard) Wrap(c net.Conn) net.Conn {
	return &guardedConn{Conn: c, g: g}
}

// admit waits while any batch's predecessor is unanswered, then refuses
// the request if a batch does not follow the last acknowledged one, or
// marks them all in flight.
func (g *Guard) admit(batches []batchRef, limits func() (deadline time.Time, failed bool)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		busy := false
		for _, b := range batches {
			st := g.parts[b.key]
			if st == nil {
				// The first batch this client sends for the producer
				// and partition: nothing to follow.
				st = &seqState{next: b.baseSeq}
				g.parts[b.key] = st
			}
			busy = busy || st.inflight
		}
		if !busy {
			break
		}
		d, failed := limits()
		if failed {
			return net.ErrClosed
		}
		if !d.IsZero() {
			wait := time.Until(d)
			if wait <= 0 {
				return os.ErrDeadlineExceeded
			}
			if timer == nil {
				timer = time.AfterFunc(wait, g.broadcast)
			} else {
				timer.Reset(wait)
			}
		}
		if g.waitHook != nil {
			g.waitHook(batches)
		}
		g.wake.Wait()
	}
	// Batches of one partition in one request must chain.
	expect := map[seqKey]int32{}
	for _, b := range batches {
		next, ok := expect[b.key]
		if !ok {
			next = g.parts[b.key].next
		}
		if next != b.baseSeq {
			return ErrOutOfOrder
		}
		expect[b.key] = nextSeq(b)
	}
	for _, b := range batches {
		g.parts[b.key].inflight = true
	}
	return nil
}

// answered records a batch's outcome: acknowledged, or not (failed, or
// unknown because its connection died).
func (g *Guard) answered(b batchRef, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.parts[b.key]
	if st == nil {
		return
	}
	st.inflight = false
	if ok {
		st.next = nextSeq(b)
	}
	g.wake.Broadcast()
}

// nextSeq is the base sequence of the batch after b; sequences wrap to 0.
func nextSeq(b batchRef) int32 { return int32((int64(b.baseSeq) + int64(b.count)) % (1 << 31)) }

func (g *Guard) broadcast() {
	g.mu.Lock()
	g.wake.Broadcast()
	g.mu.Unlock()
}

// request is a request written on a connection and not yet answered. Only
// a Produce with idempotent batches has any; its response is read for them.
type request struct {
	version int16
	batches []batchRef
}

type guardedConn struct {
	net.Conn
	g *Guard

	mu            sync.Mutex
	awaiting      []request // in the order written
	writeDeadline time.Time
	closed        bool

	wBuf []byte // a request written in pieces, until it is whole

	rHead  [4]byte
	rHeadN int
	rLeft  int64
	rBody  []byte
	rKeep  bool
}

func (c *guardedConn) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		frame := b
		if len(c.wBuf) > 0 || len(b) < 4 || 4+int(binary.BigEndian.Uint32(b)) > len(b) {
			// A request in pieces: hold it until whole.
			c.wBuf = append(c.wBuf, b...)
			if len(c.wBuf) < 4 || 4+int(binary.BigEndian.Uint32(c.wBuf)) > len(c.wBuf) {
				return written + len(b), nil
			}
			frame = c.wBuf
		}
		size := 4 + int(binary.BigEndian.Uint32(frame))
		frame = frame[:size]
		if err := c.send(frame); err != nil {
			return written, err
		}
		if len(c.wBuf) > 0 {
			// Everything held was sent; what of b was beyond the
			// request is handled next.
			rest := len(c.wBuf) - size
			c.wBuf = c.wBuf[:0]
			written += len(b) - rest
			b = b[len(b)-rest:]
			continue
		}
		written += size
		b = b[size:]
	}
	return written, nil
}

// send admits and writes one whole request.
func (c *guardedConn) send(frame []byte) error {
	var req request
	if len(frame) >= 8 && binary.BigEndian.Uint16(frame[4:6]) == apiKeyProduce {
		req.version = int16(binary.BigEndian.Uint16(frame[6:8]))
		var err error
		if req.batches, err = produceBatches(req.version, frame[4:]); err != nil {
			return err
		}
		if err := c.g.admit(req.batches, c.writeLimits); err != nil {
			return err
		}
	}
	c.mu.Lock()
	if c.closed {
		// No response will be read here: settle now, or the batches
		// would stay in flight and hold back their partitions.
		c.mu.Unlock()
		for _, b := range req.batches {
			c.g.answered(b, false)
		}
		return net.ErrClosed
	}
	c.awaiting = append(c.awaiting, req)
	c.mu.Unlock()
	if _, err := c.Conn.Write(frame); err != nil {
		c.fail()
		return err
	}
	return nil
}

// writeLimits returns the write deadline and whether the connection failed.
func (c *guardedConn) writeLimits() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeDeadline, c.closed
}

func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	b := p[:n]
	for len(b) > 0 {
		if c.rLeft > 0 {
			k := min(int64(len(b)), c.rLeft)
			if c.rKeep {
				c.rBody = append(c.rBody, b[:k]...)
			}
			c.rLeft -= k
			b = b[k:]
			if c.rLeft == 0 {
				c.answered()
			}
			continue
		}
		k := copy(c.rHead[c.rHeadN:], b)
		c.rHeadN += k
		b = b[k:]
		if c.rHeadN == len(c.rHead) {
			c.rHeadN = 0
			c.rLeft = int64(binary.BigEndian.Uint32(c.rHead[:]))
			c.rBody = c.rBody[:0]
			c.mu.Lock()
			c.rKeep = len(c.awaiting) > 0 && len(c.awaiting[0].batches) > 0
			c.mu.Unlock()
			if c.rLeft == 0 {
				c.answered()
			}
		}
	}
	if err != nil {
		c.fail()
	}
	return n, err
}

// answered settles the oldest request with the response read into rBody.
func (c *guardedConn) answered() {
	c.mu.Lock()
	if len(c.awaiting) == 0 {
		c.mu.Unlock()
		return // a response to nothing we saw: not ours to settle
	}
	req := c.awaiting[0]
	c.awaiting = c.awaiting[1:]
	c.mu.Unlock()
	if len(req.batches) == 0 {
		return
	}
	ok := acknowledged(req.version, c.rBody)
	for _, b := range req.batches {
		c.g.answered(b, ok[topicPartition{b.key.topic, b.key.partition}])
	}
}

// fail settles every request still awaiting a response as not
// acknowledged: none will be read.
func (c *guardedConn) fail() {
	c.mu.Lock()
	reqs := c.awaiting
	c.awaiting = nil
	c.closed = true
	c.mu.Unlock()
	for _, req := range reqs {
		for _, b := range req.batches {
			c.g.answered(b, false)
		}
	}
	c.g.broadcast()
}

func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	c.fail()
	return err
}

func (c *guardedConn) SetDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *guardedConn) SetWriteDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *guardedConn) setWriteDeadline(t time.Time) {
	c.mu.Lock()
	c.writeDeadline = t
	c.mu.Unlock()
	c.g.broadcast()
}

type topicPartition struct {
	topic     string
	partition int32
}

func topicName(name string, id [16]byte) string {
	if name != "" {
		return name
	}
	return hex.EncodeToString(id[:])
}

// produceBatches returns the idempotent batches of a Produce request
// (from its API key on: the frame without its size).
func produceBatches(version int16, msg []byte) ([]batchRef, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	body, ok := skipRequestHeader(msg, req.IsFlexible())
	if !ok {
		return nil, errMalformedProduce
	}
	if err := req.ReadFrom(body); err != nil {
		return nil, errMalformedProduce
	}
	var out []batchRef
	for _, t := range req.Topics {
		topic := topicName(t.Topic, t.TopicID)
		for _, p := range t.Partitions {
			recs := p.Records
			for len(recs) >= 61 {
				size := 12 + int(binary.BigEndian.Uint32(recs[8:12]))
				if size > len(recs) || recs[16] != 2 {
					return nil, errMalformedProduce
				}
				pid := int64(binary.BigEndian.Uint64(recs[43:51]))
				if pid >= 0 {
					out = append(out, batchRef{
						key:     seqKey{producerID: pid, epoch: int16(binary.BigEndian.Uint16(recs[51:53])), topic: topic, partition: p.Partition},
						baseSeq: int32(binary.BigEndian.Uint32(recs[53:57])),
						count:   int32(binary.BigEndian.Uint32(recs[57:61])),
					})
				}
				recs = recs[size:]
			}
		}
	}
	return out, nil
}

var errMalformedProduce = errors.New("produceguard: cannot read the produce request being written")

// skipRequestHeader skips a request header (API key, version, correlation
// ID, client ID, and with flexible versions its tagged fields).
func skipRequestHeader(b []byte, flexible bool) ([]byte, bool) {
	if len(b) < 10 {
		return nil, false
	}
	n := int(int16(binary.BigEndian.Uint16(b[8:10])))
	b = b[10:]
	if n > 0 {
		if n > len(b) {
			return nil, false
		}
		b = b[n:]
	}
	if flexible {
		return skipTags(b)
	}
	return b, true
}

// acknowledged returns, per partition of a Produce response frame (after
// its size), whether the broker acknowledged it. A response it cannot
// decode acknowledges nothing.
func acknowledged(version int16, frame []byte) map[topicPartition]bool {
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = version
	if len(frame) < 4 {
		return nil
	}
	body := frame[4:] // correlation ID
	if resp.IsFlexible() {
		var ok bool
		if body, ok = skipTags(body); !ok {
			return nil
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil
	}
	out := map[topicPartition]bool{}
	for _, t := range resp.Topics {
		topic := topicName(t.Topic, t.TopicID)
		for _, p := range t.Partitions {
			out[topicPartition{topic, p.Partition}] = p.ErrorCode == 0
		}
	}
	return out
}

// skipTags skips a tagged field section.
func skipTags(b []byte) ([]byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, false
	}
	b = b[k:]
	for range n {
		if _, k = binary.Uvarint(b); k <= 0 { // tag
			return nil, false
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < size {
			return nil, false
		}
		b = b[k+int(size):]
	}
	return b, true
}
