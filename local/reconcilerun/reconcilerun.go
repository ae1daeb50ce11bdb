// Package reconcilerun wires the reconciler for local runs: a source and a
// target cluster (embedded kfake, or real brokers joined with
// kafkalocal.Connect), the replicator in process, emulated event source
// mappings (local/esm) behind a Lambda API, and shared/reconcile on top,
// so tests, the scale benchmark and the rehearsal reuse one rig.
//
// It is for local runs only and must never be imported by a Lambda
// binary.
package reconcilerun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaendpoint"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/verify"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/replicate"
)

// ReplicatorFunction is the replicator's name in a local run.
const ReplicatorFunction = "kmig-replicator"

// Options configure a Rig.
type Options struct {
	// Pair are the clusters (required). The rig never closes them.
	Pair *kafkalocal.Pair
	// Env is the reconciler's environment besides what the rig sets
	// (SOURCE_*, TARGET_*, REPLICATOR_FUNCTION_NAME, SOURCE_KIND): at
	// least TOPIC_PATTERNS.
	Env map[string]string
	// Transition is each mapping's esm.Config.Transition (how long it
	// reads Enabling or Disabling).
	Transition time.Duration
	// StartDelay is how long a new mapping reads Creating.
	StartDelay time.Duration
	// LateStart makes mappings start a partition without a commit in an
	// existing group at its end (esm.PartitionLatest); otherwise at its
	// start.
	LateStart bool
	// MetadataRefresh is how soon a mapping notices a new partition
	// (default 250 ms).
	MetadataRefresh time.Duration
	// ControlPlaneRate limits the Lambda API's mapping calls per second
	// (TooManyRequestsException above it); 0: no limit.
	ControlPlaneRate float64
	// NoReplicator gives the mappings a handler that accepts every batch
	// and writes nothing (for benchmarks of the reconciler alone).
	NoReplicator bool
	// Replicator, when set, is the handler the mappings invoke, for a
	// caller that configures the replicator itself (the rehearsal's has
	// the transactional fence on); otherwise the rig builds one that
	// writes to the target with provenance headers.
	Replicator lambda.Handler
	// MappingUser is who the mappings read the source as; the zero value
	// means the pair's application user. A rehearsal's ACL fence puts a
	// DENY ACL on the topics, after which, on a source that allows
	// everyone when no ACL matches, only a user with its own grants (or
	// the superuser) still reads them.
	MappingUser kafkalocal.Credentials
	// Log receives the reconciler's and the mappings' logs; nil discards.
	Log *slog.Logger
	// Options are the reconciler's run options.
	Options reconcile.Options
}

// Rig is a reconciler with everything it acts on.
type Rig struct {
	Pair     *kafkalocal.Pair
	Registry *esm.Registry
	// Endpoint is the emulated Lambda API the reconciler calls through
	// the AWS SDK's Lambda client.
	Endpoint *lambdaendpoint.Server
	// API is that client, counting calls.
	API *CountingAPI
	// Reconciler is ready to Run; its Config comes from Options.Env.
	Reconciler *reconcile.Reconciler
	// Env is the reconciler's whole environment.
	Env map[string]string
	// Metrics holds the EMF lines of every run.
	Metrics *lockedBuffer

	closers []func()
}

// Start builds a rig. Close it.
func Start(ctx context.Context, o Options) (*Rig, error) {
	if o.Pair == nil {
		return nil, errors.New("reconcilerun: Options.Pair is required")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Rig{Pair: o.Pair, Registry: esm.NewRegistry(), Metrics: &lockedBuffer{}}
	r.closers = append(r.closers, r.Registry.Close)

	env := map[string]string{
		"SOURCE_BOOTSTRAP_SERVERS": o.Pair.Source.BootstrapServers(),
		"SOURCE_AUTH":              string(kafkaconn.AuthPlaintext),
		"TARGET_BOOTSTRAP_SERVERS": o.Pair.Target.BootstrapServers(),
		"TARGET_AUTH":              string(kafkaconn.AuthPlaintext),
		"REPLICATOR_FUNCTION_NAME": ReplicatorFunction,
		"SOURCE_KIND":              reconcile.SourceSelfManaged,
	}
	if o.Pair.Source.SASL() {
		env["SOURCE_AUTH"] = string(kafkaconn.AuthSCRAM512)
		env["SOURCE_SECRET_ARN"] = "arn:aws:secretsmanager:us-east-1:000000000000:secret:local-source"
	}
	for k, v := range o.Env {
		env[k] = v
	}
	r.Env = env
	cfg, err := reconcile.LoadConfig(config.Map(env))
	if err != nil {
		return nil, err
	}

	handler := o.Replicator
	switch {
	case handler != nil:
	case o.NoReplicator:
		handler = lambda.NewHandler(func(context.Context, json.RawMessage) (json.RawMessage, error) { return json.RawMessage(`{}`), nil })
	default:
		rcfg := replicate.Config{
			Target:      kafkaconn.Config{Prefix: "TARGET", Bootstrap: o.Pair.Target.Bootstrap(), Auth: kafkaconn.AuthPlaintext},
			Compression: "none", MaxMessageBytes: replicate.DefaultMaxMessageBytes,
			OnRecordError: replicate.FailBatch, Provenance: true,
		}
		tcl, err := replicate.NewTargetClient(ctx, rcfg, nil, kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(250*time.Millisecond))
		if err != nil {
			r.Close()
			return nil, err
		}
		r.closers = append(r.closers, tcl.Close)
		scl, err := o.Pair.Source.NewAppClient()
		if err != nil {
			r.Close()
			return nil, err
		}
		r.closers = append(r.closers, scl.Close)
		rep, err := replicate.New(rcfg, tcl, scl, replicate.WithLogger(log), replicate.WithMetricsWriter(io.Discard))
		if err != nil {
			r.Close()
			return nil, err
		}
		handler = lambda.NewHandler(func(ctx context.Context, payload json.RawMessage) (json.RawMessage, error) {
			return rep.Invoke(ctx, payload)
		})
	}
	r.Endpoint = lambdaendpoint.New(r.Registry)
	r.Endpoint.Register(ReplicatorFunction, handler)
	r.Endpoint.SetControlPlaneRate(o.ControlPlaneRate)
	mappingUser := o.MappingUser
	if mappingUser == (kafkalocal.Credentials{}) {
		mappingUser = o.Pair.Source.AppCredentials()
	}
	refresh := o.MetadataRefresh
	if refresh <= 0 {
		refresh = 250 * time.Millisecond
	}
	r.Endpoint.SetMappingFactory(func(_ context.Context, req lambdaendpoint.CreateRequest) (esm.Config, error) {
		c := req.Config
		c.BootstrapServers = o.Pair.Source.Bootstrap()
		c.ClientOptions = o.Pair.Source.ClientOpts(mappingUser)
		c.Transition = o.Transition
		c.StartDelay = o.StartDelay
		c.MetadataRefresh = refresh
		c.RetryBackoff = 20 * time.Millisecond
		c.MaximumBatchingWindow = 20 * time.Millisecond
		c.Logger = log
		if o.LateStart {
			c.UncommittedPartitionStart = esm.PartitionLatest
		}
		return c, nil
	})
	url, err := r.Endpoint.Start("127.0.0.1:0")
	if err != nil {
		r.Close()
		return nil, err
	}
	r.closers = append(r.closers, func() { _ = r.Endpoint.Close() })
	r.API = &CountingAPI{LambdaAPI: awslambda.New(awslambda.Options{
		Region: lambdaendpoint.Region, BaseEndpoint: aws.String(url), Credentials: aws.AnonymousCredentials{},
	})}

	src, err := o.Pair.Source.NewClient(kgo.RetryTimeout(10 * time.Second))
	if err != nil {
		r.Close()
		return nil, err
	}
	r.closers = append(r.closers, src.Close)
	tgt, err := o.Pair.Target.NewClient(kgo.RetryTimeout(10 * time.Second))
	if err != nil {
		r.Close()
		return nil, err
	}
	r.closers = append(r.closers, tgt.Close)
	r.Reconciler = &reconcile.Reconciler{Config: cfg, Source: src, Target: tgt, Lambda: r.API, Options: o.Options,
		FunctionName: "kmig-provisioner", Log: log, Metrics: r.Metrics}
	return r, nil
}

// Run runs the reconciler once.
func (r *Rig) Run(ctx context.Context) (reconcile.Report, error) {
	return r.Reconciler.Run(ctx)
}

// Mapping returns the mapping of topic, or nil.
func (r *Rig) Mapping(topic string) *esm.Mapping {
	for _, m := range r.Registry.ListByFunction(ReplicatorFunction) {
		if ts := m.Topics(); len(ts) == 1 && ts[0] == topic {
			return m
		}
	}
	return nil
}

// WaitPolling waits until every mapping reads Enabled.
func (r *Rig) WaitPolling(ctx context.Context) error {
	for _, m := range r.Registry.ListByFunction(ReplicatorFunction) {
		if m.State() == esm.StateDisabled {
			continue
		}
		if err := m.WaitState(ctx, esm.StateEnabled); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the endpoint and the mappings and closes the rig's clients (not the pair).
func (r *Rig) Close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	r.closers = nil
}

// lockedBuffer is an io.Writer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written.
func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Replicated compares topic on the source with its target topic (target
// name target; "" means the same name) by provenance.
func (r *Rig) Replicated(ctx context.Context, topic, target string) ([]verify.PartitionResult, error) {
	if target == "" {
		target = topic
	}
	src, err := verify.ReadAll(ctx, r.Pair.Source, topic)
	if err != nil {
		return nil, err
	}
	dst, err := verify.ReadAll(ctx, r.Pair.Target, target)
	if err != nil {
		return nil, err
	}
	return verify.Compare(src, dst, topic), nil
}

// WaitReplicated waits until every partition of topic is on the target
// exactly once, in order and equal, and returns the last comparison (with
// ctx's error if it never was).
func (r *Rig) WaitReplicated(ctx context.Context, topic string) ([]verify.PartitionResult, error) {
	for {
		res, err := r.Replicated(ctx, topic, "")
		ok := err == nil && len(res) > 0
		for _, p := range res {
			ok = ok && p.OK()
		}
		if ok {
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("topic %s not replicated: %v (last error %v)", topic, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
