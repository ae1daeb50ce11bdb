package esm

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
)

// StartingPosition is where a mapping whose consumer group has no committed
// offset starts reading, as in the Lambda API.
type StartingPosition string

// Starting positions supported for Kafka event sources.
const (
	TrimHorizon StartingPosition = "TRIM_HORIZON"
	Latest      StartingPosition = "LATEST"
	// AtTimestamp starts each partition at its first record with a
	// timestamp at or after Config.StartingPositionTimestamp (the end of
	// the partition when there is none).
	AtTimestamp StartingPosition = "AT_TIMESTAMP"
)

// PartitionStart is where the mapping starts on a partition that has no
// committed offset in a consumer group that already exists (has committed
// offsets), for example a partition added to the topic after the group
// was seeded. AWS documents that Lambda uses an existing group's committed
// offsets and ignores StartingPosition, but not what it does for such a
// partition, so both are emulated.
type PartitionStart string

// Starts for a partition without a committed offset in an existing group.
const (
	// PartitionEarliest starts at the partition's log start: every
	// record still in the log is delivered.
	PartitionEarliest PartitionStart = "earliest"
	// PartitionLatest starts at the partition's end when the mapping
	// first sees the partition: records written before that are never
	// delivered.
	PartitionLatest PartitionStart = "latest"
)

// Isolation is the isolation level the mapping's consumer reads with.
// AWS does not document which one Lambda's Kafka poller uses, so the
// replicator must be right under both.
type Isolation string

// Isolation levels.
const (
	// ReadUncommitted (the default, as in Kafka's consumer and in
	// franz-go) delivers every data record up to the high watermark:
	// records of aborted transactions, and of transactions still open,
	// included. Transaction markers are never delivered.
	ReadUncommitted Isolation = "read_uncommitted"
	// ReadCommitted delivers only records of committed transactions (and
	// non-transactional ones), and nothing at or past the last stable
	// offset, the first offset of the oldest transaction still open.
	ReadCommitted Isolation = "read_committed"
)

// Limits and defaults, as documented for Lambda Kafka event sources.
const (
	DefaultBatchSize             = 100
	MaxBatchSize                 = 10000
	DefaultMaximumBatchingWindow = 500 * time.Millisecond
	MaxMaximumBatchingWindow     = 300 * time.Second
	DefaultRetryBackoff          = 100 * time.Millisecond
	// DefaultMetadataRefresh is how often, by default, a polling mapping
	// refreshes its topic's metadata and so notices added partitions.
	// AWS does not document Lambda's interval; 5 s keeps tests short
	// and matches franz-go's default metadata minimum age, so no client
	// refreshes more often than it would anyway.
	DefaultMetadataRefresh = 5 * time.Second
	// MaxTransition is the longest Transition: AWS documents that a
	// Kafka mapping may take up to 90 s to stop or restart polling after
	// an update.
	MaxTransition = 90 * time.Second
	// InfiniteRetries is the MaximumRetryAttempts value (and default)
	// that retries a failing batch until it succeeds or the mapping is
	// disabled.
	InfiniteRetries = -1
)

// Config describes an event source mapping. The zero value of every
// optional field means the Lambda default.
type Config struct {
	// UUID identifies the mapping; empty generates a random UUID.
	UUID string
	// FunctionName is the function the mapping invokes (required).
	FunctionName string
	// FunctionArn defaults to
	// arn:aws:lambda:us-east-1:000000000000:function:<FunctionName>.
	FunctionArn string
	// Topics the mapping consumes (AWS allows one; at least one required).
	Topics []string
	// ConsumerGroupID defaults to the UUID, as Lambda does.
	ConsumerGroupID string
	// BootstrapServers are the brokers the mapping connects to and reports
	// in each event's bootstrapServers (required).
	BootstrapServers []string
	// EventSourceArn, when set, makes this an MSK mapping: events carry
	// eventSource "aws:kafka" and this ARN. Empty means self-managed Kafka.
	EventSourceArn string
	// ServerRootCACertificate, when set, is the PEM root CA (one or more
	// certificates) that signed the brokers' TLS certificates, as a
	// self-managed Kafka mapping's SERVER_ROOT_CA_CERTIFICATE source access
	// configuration names it (the "certificate" of its secret): the
	// mapping's clients then connect with TLS and verify the brokers
	// against it, besides the system roots. AWS offers it for self-managed
	// Kafka only, so it is refused with EventSourceArn.
	ServerRootCACertificate string
	// ClientOptions are applied last to the consumer client, for
	// authentication and tuning (for example SASL, MetadataMinAge).
	ClientOptions []kgo.Opt

	// rootCAs is ServerRootCACertificate parsed (with the system roots).
	rootCAs *x509.CertPool

	// BatchSize is the most records per invocation: 0 means 100; at most
	// 10000.
	BatchSize int
	// MaximumBatchingWindow is how long records may wait for a batch to
	// fill: 0 means 500 ms; a negative value means no waiting; at most
	// 300 s.
	MaximumBatchingWindow time.Duration
	// StartingPosition is TRIM_HORIZON (default), LATEST or
	// AT_TIMESTAMP. It applies only when the consumer group has no
	// committed offset when the mapping first joins it: as on AWS, a
	// group with committed offsets is resumed from them and
	// StartingPosition is ignored (see UncommittedPartitionStart).
	StartingPosition StartingPosition
	// StartingPositionTimestamp is the time AT_TIMESTAMP starts at
	// (required with it, refused without it).
	StartingPositionTimestamp time.Time
	// UncommittedPartitionStart is where the mapping starts on a
	// partition without a committed offset once its group exists: the
	// group has had a committed offset (seeded, or committed by the
	// mapping), or the partition is assigned after the first assignment
	// of the mapping's current polling period (a partition added to the
	// topic later). PartitionEarliest (the default) or PartitionLatest.
	UncommittedPartitionStart PartitionStart
	// MetadataRefresh is how often the polling consumer refreshes the
	// topic's metadata, so it notices partitions added while it runs
	// within about this time: 0 means DefaultMetadataRefresh; at least
	// 10 ms. ClientOptions may still override it.
	MetadataRefresh time.Duration
	// StartDelay is how long a new mapping reads Creating before it
	// starts polling (or reads Disabled, with StartDisabled), as AWS
	// warns that a new Kafka mapping "may take several minutes to start
	// polling". Updates are refused meanwhile (ErrInTransition). 0 means
	// none.
	StartDelay time.Duration
	// Isolation is ReadUncommitted (default) or ReadCommitted.
	Isolation Isolation
	// Concurrency is the number of batches in flight at once, each worker
	// owning a fixed share of partitions: 0 means 1.
	Concurrency int
	// MaximumRetryAttempts bounds retries of a failing batch: nil or
	// InfiniteRetries retries forever; n ≥ 0 retries n times, then the
	// batch is discarded (counted in Stats, never silently) and the
	// mapping moves past it.
	MaximumRetryAttempts *int
	// RetryBackoff is the pause before each retry: 0 means 100 ms.
	RetryBackoff time.Duration
	// InvokeTimeout, when positive, is the deadline of each invocation's
	// context, like a function timeout.
	InvokeTimeout time.Duration
	// Overlap, when Every > 0, emulates a poller rebalance that leaves
	// the partition's previous owner still processing a batch: see
	// Overlap.
	Overlap Overlap
	// StartDisabled creates the mapping in the Disabled state.
	StartDisabled bool
	// Transition is how long the mapping reads Disabling after it is
	// disabled, or Enabling after it is enabled, before the change takes
	// effect, as AWS's "up to 90 seconds to stop and restart polling".
	// While Disabling it keeps polling and invoking; polling stops (the
	// in-flight batch committed, the group left) only at the end, when
	// it reads Disabled. While Enabling it does not poll; it reads
	// Enabled once polling has restarted. 0 means no added time (the
	// state still passes through Disabling while the poller stops); at
	// most MaxTransition.
	Transition time.Duration
	// Logger receives state changes and failures; nil discards them.
	Logger *slog.Logger

	// clock times the batching window, StartDelay and Transition; nil
	// means the real clock (see clock).
	clock clock
	// assigned, when set, is called with the start offsets of every
	// assignment, as the consumer passes them, before the mapping fixes
	// where the partitions start: a test may hold it.
	assigned func(ctx context.Context, offs map[string]map[int32]kgo.Offset)
}

// normalize fills defaults and validates; it never mutates c's slices.
func (c Config) normalize() (Config, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.UUID == "" {
		c.UUID = NewUUID()
	}
	if c.FunctionName == "" {
		bad("FunctionName", "required")
	}
	if c.FunctionArn == "" {
		c.FunctionArn = "arn:aws:lambda:us-east-1:000000000000:function:" + c.FunctionName
	}
	if len(c.Topics) == 0 {
		bad("Topics", "at least one topic required")
	}
	for _, t := range c.Topics {
		if t == "" {
			bad("Topics", "empty topic name")
		}
	}
	c.Topics = append([]string(nil), c.Topics...)
	if c.ConsumerGroupID == "" {
		c.ConsumerGroupID = c.UUID
	}
	if len(c.BootstrapServers) == 0 {
		bad("BootstrapServers", "required")
	}
	c.BootstrapServers = append([]string(nil), c.BootstrapServers...)
	c.ClientOptions = append([]kgo.Opt(nil), c.ClientOptions...)
	if c.ServerRootCACertificate != "" {
		if c.EventSourceArn != "" {
			bad("ServerRootCACertificate", "SERVER_ROOT_CA_CERTIFICATE is for self-managed Kafka only, and EventSourceArn makes this an MSK mapping")
		} else if pool, err := kafkaconn.RootCAs(c.ServerRootCACertificate); err != nil {
			bad("ServerRootCACertificate", "not a PEM certificate bundle: %v", err)
		} else {
			c.rootCAs = pool
		}
	}
	switch {
	case c.BatchSize == 0:
		c.BatchSize = DefaultBatchSize
	case c.BatchSize < 1 || c.BatchSize > MaxBatchSize:
		bad("BatchSize", "%d is not between 1 and %d", c.BatchSize, MaxBatchSize)
	}
	switch {
	case c.MaximumBatchingWindow == 0:
		c.MaximumBatchingWindow = DefaultMaximumBatchingWindow
	case c.MaximumBatchingWindow < 0:
		c.MaximumBatchingWindow = 0
	case c.MaximumBatchingWindow > MaxMaximumBatchingWindow:
		bad("MaximumBatchingWindow", "%v exceeds %v", c.MaximumBatchingWindow, MaxMaximumBatchingWindow)
	}
	switch c.StartingPosition {
	case "":
		c.StartingPosition = TrimHorizon
	case TrimHorizon, Latest, AtTimestamp:
	default:
		bad("StartingPosition", "%q is not TRIM_HORIZON, LATEST or AT_TIMESTAMP", c.StartingPosition)
	}
	if c.StartingPosition == AtTimestamp && c.StartingPositionTimestamp.IsZero() {
		bad("StartingPositionTimestamp", "required with AT_TIMESTAMP")
	}
	if c.StartingPosition != AtTimestamp && !c.StartingPositionTimestamp.IsZero() {
		bad("StartingPositionTimestamp", "allowed only with AT_TIMESTAMP")
	}
	switch c.UncommittedPartitionStart {
	case "":
		c.UncommittedPartitionStart = PartitionEarliest
	case PartitionEarliest, PartitionLatest:
	default:
		bad("UncommittedPartitionStart", "%q is not earliest or latest", c.UncommittedPartitionStart)
	}
	switch {
	case c.MetadataRefresh == 0:
		c.MetadataRefresh = DefaultMetadataRefresh
	case c.MetadataRefresh < 10*time.Millisecond:
		bad("MetadataRefresh", "%v is below 10ms", c.MetadataRefresh)
	}
	if c.StartDelay < 0 {
		bad("StartDelay", "%v is negative", c.StartDelay)
	}
	switch c.Isolation {
	case "":
		c.Isolation = ReadUncommitted
	case ReadUncommitted, ReadCommitted:
	default:
		bad("Isolation", "%q is not read_uncommitted or read_committed", c.Isolation)
	}
	switch {
	case c.Concurrency == 0:
		c.Concurrency = 1
	case c.Concurrency < 0 || c.Concurrency > 1000:
		bad("Concurrency", "%d is not between 1 and 1000", c.Concurrency)
	}
	if c.MaximumRetryAttempts == nil {
		c.MaximumRetryAttempts = new(InfiniteRetries)
	} else if n := *c.MaximumRetryAttempts; n < InfiniteRetries {
		bad("MaximumRetryAttempts", "%d is below -1", n)
	} else {
		c.MaximumRetryAttempts = new(n) // own the value
	}
	switch {
	case c.RetryBackoff == 0:
		c.RetryBackoff = DefaultRetryBackoff
	case c.RetryBackoff < 0:
		bad("RetryBackoff", "%v is negative", c.RetryBackoff)
	}
	if c.Transition < 0 || c.Transition > MaxTransition {
		bad("Transition", "%v is not between 0 and %v", c.Transition, MaxTransition)
	}
	if c.Overlap.Every < 0 {
		bad("Overlap.Every", "%d is negative", c.Overlap.Every)
	}
	if c.Overlap.Lead < 0 {
		bad("Overlap.Lead", "%v is negative", c.Overlap.Lead)
	}
	if c.InvokeTimeout < 0 {
		bad("InvokeTimeout", "%v is negative", c.InvokeTimeout)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("esm: invalid config: %w", errors.Join(errs...))
	}
	return c, nil
}

// connOptions are the options every client of the mapping starts with:
// the seed brokers and, with ServerRootCACertificate, TLS verified against
// it. ClientOptions follow them.
func (c Config) connOptions() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(c.BootstrapServers...)}
	if c.rootCAs != nil {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{RootCAs: c.rootCAs, MinVersion: tls.VersionTLS12}))
	}
	return opts
}

// NewUUID returns a random (version 4) UUID, as Lambda gives mappings and
// requests.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
