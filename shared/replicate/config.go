package replicate

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/produceguard"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

// Environment variables the replicator reads, besides the TARGET_* and
// SOURCE_* connection variables of package kafkaconn (SOURCE_* name the
// cluster the event source mappings read, which the replicator asks for
// the outcome of transactions; see package txnstate).
const (
	EnvCompression      = "TARGET_COMPRESSION"
	EnvMaxMessageBytes  = "TARGET_MAX_MESSAGE_BYTES"
	EnvTransforms       = "TRANSFORMS"
	EnvRecordErrors     = "RECORD_ERROR_POLICY"
	EnvDeadLetterTopic  = "DEAD_LETTER_TOPIC"
	EnvProvenanceHeader = "PROVENANCE_HEADER"
	EnvMetricsNamespace = "METRICS_NAMESPACE"
	EnvTransactionalID  = "TRANSACTIONAL_ID_PREFIX"
)

// Policy says what happens to a record that fails permanently (a transform
// error, or too large for the target).
type Policy string

const (
	// FailBatch fails the whole batch; Lambda retries it and the event
	// source mapping does not advance past it. Nothing moves until an
	// operator fixes the cause. The default.
	FailBatch Policy = "fail-batch"
	// DeadLetter writes the record to the dead-letter topic on the target
	// with error headers, counts it, and goes on.
	DeadLetter Policy = "dead-letter"
)

// Config is the replicator's configuration.
type Config struct {
	Target kafkaconn.Config
	// Source is the cluster the event source mappings read. The
	// replicator only fetches from it, read_committed, to tell committed
	// records from aborted and open ones.
	Source          kafkaconn.Config
	Compression     string // none | gzip | snappy | lz4 | zstd
	MaxMessageBytes int    // the target's max.message.bytes; larger records fail permanently
	Transforms      *transform.Chain
	OnRecordError   Policy
	DeadLetterTopic string
	// Provenance writes the kmig-src header on every record. Without it
	// there is no dedup on retry and no exact offset translation.
	Provenance       bool
	MetricsNamespace string
	// TransactionalIDPrefix, when set, fences overlapping invocations for
	// the same source partition: each batch writes a source partition in
	// a transaction whose transactional ID is the prefix + topic + "-" +
	// partition (see fence.go). Needs Provenance. Empty turns the fence
	// off.
	TransactionalIDPrefix string
}

// Defaults for optional settings.
const (
	DefaultCompression      = "lz4"
	DefaultMaxMessageBytes  = 1048588 // Kafka's and MSK's default message.max.bytes
	DefaultDeadLetterTopic  = "kmig.dead-letter"
	DefaultMetricsNamespace = "KafkaMskMigrator"
)

// LoadConfig reads the replicator's configuration. Every problem is a
// *config.Error naming the variable.
func LoadConfig(env config.Env) (Config, error) {
	var c Config
	var err error
	if c.Target, err = kafkaconn.FromEnv(env, "TARGET"); err != nil {
		return c, err
	}
	if c.Source, err = kafkaconn.FromEnv(env, "SOURCE"); err != nil {
		return c, err
	}
	if c.Compression, err = env.OneOf(EnvCompression, DefaultCompression, "none", "gzip", "snappy", "lz4", "zstd"); err != nil {
		return c, err
	}
	n, err := env.Int(EnvMaxMessageBytes, DefaultMaxMessageBytes, 1024, 1<<30)
	if err != nil {
		return c, err
	}
	c.MaxMessageBytes = int(n)
	raw, _ := env.Lookup(EnvTransforms)
	if c.Transforms, err = transform.Parse([]byte(raw)); err != nil {
		return c, &config.Error{Variable: EnvTransforms, Problem: "invalid transforms", Err: err}
	}
	p, err := env.OneOf(EnvRecordErrors, string(FailBatch), string(FailBatch), string(DeadLetter))
	if err != nil {
		return c, err
	}
	c.OnRecordError = Policy(p)
	c.DeadLetterTopic = env.String(EnvDeadLetterTopic, DefaultDeadLetterTopic)
	if c.Provenance, err = env.Bool(EnvProvenanceHeader, true); err != nil {
		return c, err
	}
	c.MetricsNamespace = env.String(EnvMetricsNamespace, DefaultMetricsNamespace)
	c.TransactionalIDPrefix = env.String(EnvTransactionalID, "")
	return c, c.validate()
}

// TargetOptions are every kgo option of one replicator target client:
// cfg.Target's connection, guarded so that a partition's produce batches
// reach the target in order even when a restarted broker has forgotten the
// producer (produceguard.Guard), and ProducerOptions. Build one client
// per call: the guard is the client's.
func TargetOptions(ctx context.Context, cfg Config, secrets kafkaconn.Secrets) ([]kgo.Opt, error) {
	t := cfg.Target
	t.WrapConn = produceguard.New().Wrap
	opts, err := t.Options(ctx, secrets)
	if err != nil {
		return nil, err
	}
	return append(opts, ProducerOptions(cfg)...), nil
}

// NewTargetClient builds the replicator's target client from TargetOptions
// and extra.
func NewTargetClient(ctx context.Context, cfg Config, secrets kafkaconn.Secrets, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := TargetOptions(ctx, cfg, secrets)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("building target client: %w", err)
	}
	return cl, nil
}

// NewFenceClient builds one source partition's transactional producer
// (see Config.TransactionalIDPrefix) from TargetOptions and FenceOptions.
func NewFenceClient(ctx context.Context, cfg Config, secrets kafkaconn.Secrets, transactionalID string, extra ...kgo.Opt) (*kgo.Client, error) {
	return NewTargetClient(ctx, cfg, secrets, append(FenceOptions(transactionalID), extra...)...)
}

// NewSourceClient builds the replicator's source client from cfg.Source
// and extra. It only fetches: no consumer group, no commits.
func NewSourceClient(ctx context.Context, cfg Config, secrets kafkaconn.Secrets, extra ...kgo.Opt) (*kgo.Client, error) {
	return cfg.Source.NewClient(ctx, secrets, extra...)
}

// ProducerOptions are the producer options of the replicator's target
// client (see TargetOptions): idempotent, acks=all, partitions chosen by the record
// (target partition = source partition), the configured compression and
// batch size limit, and a producer that stops rather than reorder on a
// sequence error.
func ProducerOptions(c Config) []kgo.Opt {
	codec := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}[c.Compression]
	maxBytes := c.MaxMessageBytes
	if maxBytes == 0 {
		maxBytes = DefaultMaxMessageBytes
	}
	compression := kgo.ProducerBatchCompression(codec)
	if c.Compression == "lz4" {
		compression = kgo.WithCompressor(newLz4Compressor())
	}
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// Partitions the reconciler adds to a target topic are known
		// within 30 s (kgo's default is 5 minutes); until then a batch
		// for a new partition fails, and the mapping retries it.
		kgo.MetadataMaxAge(30 * time.Second),
		compression,
		kgo.ProducerBatchMaxBytes(int32(maxBytes)),
		kgo.MaxBufferedRecords(20000),
		kgo.ProducerLinger(0),
		// On a sequence error (as when the target restarts with writes in
		// flight) the client would otherwise bump its epoch and write later
		// batches before earlier ones. Stopping keeps what reaches the
		// target a prefix; the replicator then replaces the client.
		kgo.StopProducerOnDataLossDetected(),
	}
}

func (c Config) validate() error {
	if c.TransactionalIDPrefix != "" && !c.Provenance {
		return &config.Error{Variable: EnvTransactionalID, Problem: fmt.Sprintf("needs %s=true: the fence resumes from the target's provenance", EnvProvenanceHeader)}
	}
	if c.OnRecordError == DeadLetter && c.DeadLetterTopic == "" {
		return &config.Error{Variable: EnvDeadLetterTopic, Problem: fmt.Sprintf("must be set when %s is %s", EnvRecordErrors, DeadLetter)}
	}
	return nil
}
