// Package rundetails keeps a cutover run's details (every partition's drain
// report, every group's translated offsets, the quiet window's end offsets)
// in a topic on the target cluster, so the Step Functions execution state
// carries only small references to them and stays under Step Functions'
// 256 KiB limit however many partitions and groups a run covers.
//
// The topic is the target cluster's own, so the details need no other
// service and no other network path than the one the cutover already uses,
// and a local rehearsal keeps them exactly as a deployed run does.
//
// Every Put writes under a key no other Put uses (the caller's key plus a
// random suffix), so a later write never hides an earlier one, and a Ref
// read back returns exactly the bytes that were put. The topic deletes
// records after its retention (DefaultRetention, Step Functions' own
// execution history retention), so details outlive the execution's history
// but not forever.
package rundetails

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
)

// DefaultTopic is the details topic's name when none is configured.
const DefaultTopic = "kmig.cutover-details"

// DefaultRetention is how long the topic keeps details: 90 days, as long
// as Step Functions keeps a closed execution's history.
const DefaultRetention = 90 * 24 * time.Hour

// chunkBytes bounds one record's value: well under Kafka's and MSK's
// default 1 MB message limit, whatever the topic's configuration.
const chunkBytes = 256 * 1024

// Ref names a value put in the details topic: the records that hold it, in
// order. It is small (tens of bytes per 256 KiB of value).
type Ref struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Key       string  `json:"key"`
	Offsets   []int64 `json:"offsets"`
	Bytes     int     `json:"bytes"`
}

// MissingError says a Ref's records are no longer in the topic (deleted by
// retention, or the topic was recreated).
type MissingError struct {
	Ref    Ref
	Offset int64
	Reason string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("run details %s in topic %s: record at offset %d: %s", e.Ref.Key, e.Ref.Topic, e.Offset, e.Reason)
}

// Store reads and writes one details topic through a client of the
// target cluster. It is safe for concurrent use.
type Store struct {
	cl    *kgo.Client
	adm   *kadm.Client
	pk    *peek.Reader
	topic string
}

// New returns a Store on topic (DefaultTopic if empty) using cl, which
// must be able to produce and fetch. It contacts nothing.
func New(cl *kgo.Client, topic string) *Store {
	if topic == "" {
		topic = DefaultTopic
	}
	return &Store{cl: cl, adm: kadm.NewClient(cl), pk: peek.New(cl), topic: topic}
}

// Topic is the details topic's name.
func (s *Store) Topic() string { return s.topic }

// Ensure creates the details topic when it is missing: one partition,
// cleanup.policy=delete, retention DefaultRetention, the cluster's default
// replication factor. An existing topic is left as it is, but must have
// one partition, so a value's records stay in order.
func (s *Store) Ensure(ctx context.Context) error {
	td, err := s.adm.ListTopics(ctx, s.topic)
	if err != nil {
		return fmt.Errorf("looking up details topic %s: %w", s.topic, err)
	}
	if t, ok := td[s.topic]; ok && t.Err == nil {
		if len(t.Partitions) != 1 {
			return fmt.Errorf("details topic %s has %d partitions; it must have exactly 1", s.topic, len(t.Partitions))
		}
		return nil
	}
	retention := strconv.FormatInt(DefaultRetention.Milliseconds(), 10)
	policy := "delete"
	r, err := s.adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &policy, "retention.ms": &retention}, s.topic)
	if err == nil {
		err = r.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating details topic %s: %w", s.topic, err)
	}
	return nil
}

// Put writes v as JSON under key and returns its Ref. Values over 256 KiB
// are split over several records, written in order.
func (s *Store) Put(ctx context.Context, key string, v any) (Ref, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Ref{}, fmt.Errorf("encoding run details %s: %w", key, err)
	}
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	ref := Ref{Topic: s.topic, Key: key + "#" + hex.EncodeToString(nonce[:]), Bytes: len(b)}
	var recs []*kgo.Record
	for i := 0; i == 0 || i*chunkBytes < len(b); i++ {
		chunk := b[i*chunkBytes : min(len(b), (i+1)*chunkBytes)]
		recs = append(recs, &kgo.Record{Topic: s.topic, Partition: 0, Key: []byte(ref.Key + "/" + strconv.Itoa(i)), Value: chunk})
	}
	res := s.cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		return Ref{}, fmt.Errorf("writing run details %s to %s: %w", key, s.topic, err)
	}
	for _, r := range res {
		ref.Partition = r.Record.Partition
		ref.Offsets = append(ref.Offsets, r.Record.Offset)
	}
	return ref, nil
}

// Get reads the value ref names into v. A record that is gone or holds
// another key is a *MissingError.
func (s *Store) Get(ctx context.Context, ref Ref, v any) error {
	var b bytes.Buffer
	for i, off := range ref.Offsets {
		rec, _, err := s.pk.At(ctx, ref.Topic, ref.Partition, off)
		switch {
		case errors.Is(err, peek.ErrNoRecord) || errors.Is(err, kerr.OffsetOutOfRange):
			return &MissingError{Ref: ref, Offset: off, Reason: "no longer in the topic"}
		case err != nil:
			return fmt.Errorf("reading run details %s at %s/%d offset %d: %w", ref.Key, ref.Topic, ref.Partition, off, err)
		case rec.Offset != off || string(rec.Key) != ref.Key+"/"+strconv.Itoa(i):
			return &MissingError{Ref: ref, Offset: off, Reason: fmt.Sprintf("found key %q at offset %d instead", rec.Key, rec.Offset)}
		}
		b.Write(rec.Value)
	}
	if b.Len() != ref.Bytes {
		return &MissingError{Ref: ref, Offset: ref.Offsets[len(ref.Offsets)-1], Reason: fmt.Sprintf("read %d bytes, %d were written", b.Len(), ref.Bytes)}
	}
	if err := json.Unmarshal(b.Bytes(), v); err != nil {
		return fmt.Errorf("decoding run details %s: %w", ref.Key, err)
	}
	return nil
}
