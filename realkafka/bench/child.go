package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/replicate"
)

// Child sub-commands: the processes whose CPU is measured.
const (
	ChildPipe     = "child-pipe"     // (a) raw franz-go consume→produce
	ChildFunction = "child-function" // (b) the replicator, serving invocations on a Unix socket
	ChildESM      = "child-esm"      // (b) the ESM emulator, invoking the function over the socket
)

// ChildStats is what a child prints on stdout (one JSON line) when told to
// stop with SIGTERM.
type ChildStats struct {
	Records int64 `json:"records,omitempty"`
	// ESM emulator counters (child-esm).
	EncodeNanos  int64 `json:"encodeNanos,omitempty"`
	HandlerNanos int64 `json:"handlerNanos,omitempty"`
	Invocations  int64 `json:"invocations,omitempty"`
	Errors       int64 `json:"errors,omitempty"`
	MaxBatch     int64 `json:"maxBatch,omitempty"`
	// Replicator totals (child-function).
	Written    int64 `json:"written,omitempty"`
	Duplicates int64 `json:"duplicates,omitempty"`
}

// IsChild reports whether args name a child sub-command.
func IsChild(args []string) bool { return len(args) > 0 && strings.HasPrefix(args[0], "child-") }

// ChildMain runs a child sub-command until SIGTERM and returns the exit
// status.
func ChildMain(args []string) int {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	topic := fs.String("topic", "", "source topic (= target topic)")
	group := fs.String("group", "", "source consumer group")
	compression := fs.String("compression", "lz4", "target compression")
	socket := fs.String("socket", "", "Unix socket between the ESM and the function")
	concurrency := fs.Int("concurrency", 12, "ESM concurrency (batches in flight)")
	batchSize := fs.Int("batch-size", 10000, "ESM batch size")
	window := fs.Duration("window", 100*time.Millisecond, "ESM maximum batching window")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	env, err := EnvFromEnviron()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if dir := os.Getenv("KMIG_BENCH_CPUPROFILE_DIR"); dir != "" {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", args[0], os.Getpid())))
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var st ChildStats
	switch args[0] {
	case ChildPipe:
		st, err = runPipe(ctx, env, *topic, *group, *compression)
	case ChildFunction:
		st, err = runFunction(ctx, env, *socket, *compression)
	case ChildESM:
		st, err = runESM(ctx, env, *topic, *group, *socket, *concurrency, *batchSize, *window)
	default:
		err = fmt.Errorf("unknown child %q", args[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", args[0], err)
		return 1
	}
	_ = json.NewEncoder(os.Stdout).Encode(st)
	return 0
}

// sourceAuthOpts are SourceOpts without the seed brokers.
func (e Env) sourceAuthOpts() []kgo.Opt { return e.SourceOpts()[1:] }

// targetConfig is the replicator's configuration from its environment
// variables. The SOURCE is SCRAM without TLS, which kafkaconn does not
// offer (every auth kind but plaintext is TLS): the replicator's source
// client is built from SourceOpts instead, and SOURCE_* only pass LoadConfig.
func targetConfig(env Env, compression string) (replicate.Config, error) {
	return replicate.LoadConfig(config.Map(map[string]string{
		"TARGET_BOOTSTRAP_SERVERS": env.TargetBootstrap,
		"TARGET_AUTH":              "plaintext",
		"SOURCE_BOOTSTRAP_SERVERS": env.SourceBootstrap,
		"SOURCE_AUTH":              "plaintext",
		replicate.EnvCompression:   compression,
	}))
}

// runPipe is (a): a consumer group member polling the source and producing
// every record, unchanged, to the same partition of the same topic on the
// target with the replicator's producer options (idempotent, acks=all,
// same codec and batch limits). Offsets are marked when their record is
// acknowledged and auto-committed.
func runPipe(ctx context.Context, env Env, topic, group, compression string) (ChildStats, error) {
	cfg, err := targetConfig(env, compression)
	if err != nil {
		return ChildStats{}, err
	}
	prod, err := cfg.Target.NewClient(ctx, nil, replicate.ProducerOptions(cfg)...)
	if err != nil {
		return ChildStats{}, err
	}
	defer prod.Close()
	cons, err := kgo.NewClient(append(env.SourceOpts(),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
	)...)
	if err != nil {
		return ChildStats{}, err
	}
	defer cons.Close()
	var (
		errs firstError
		n    int64
	)
	bg := context.Background() // records in flight at SIGTERM still land
	for {
		fs := cons.PollRecords(ctx, 10000)
		if fs.IsClientClosed() || ctx.Err() != nil {
			break
		}
		fs.EachError(func(t string, p int32, err error) {
			fmt.Fprintf(os.Stderr, "pipe: fetch %s/%d: %v\n", t, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			out := &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
			prod.Produce(bg, out, func(out *kgo.Record, err error) {
				if err != nil {
					errs.promise(out, err)
					return
				}
				cons.MarkCommitRecords(r)
			})
			n++
		})
		if err := errs.get(); err != nil {
			return ChildStats{}, fmt.Errorf("produce: %w", err)
		}
	}
	fctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	_ = prod.Flush(fctx)
	_ = cons.CommitMarkedOffsets(fctx)
	return ChildStats{Records: n}, errs.get()
}

// runFunction is (b)'s function: the replicator, built as the Lambda
// function builds it, once per connection. Each connection stands for one
// execution environment: the ESM opens one per worker (the mapping's
// concurrency), and Lambda runs each concurrent invocation in an
// environment of its own, with its own target client and producer ID, one
// invocation at a time. All of them live in this one process, so its CPU
// is the function's. Frame: 4-byte big-endian length, then the event;
// answer: 1 status byte (0 ok, 1 error), 4-byte length, response or error.
func runFunction(ctx context.Context, env Env, socket, compression string) (ChildStats, error) {
	cfg, err := targetConfig(env, compression)
	if err != nil {
		return ChildStats{}, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	_ = os.Remove(socket)
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return ChildStats{}, err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		st    ChildStats
		first firstError
	)
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		wg.Go(func() {
			defer c.Close()
			// A fresh environment: its own clients and replicator.
			cl, err := replicate.NewTargetClient(ctx, cfg, nil)
			if err != nil {
				first.set(err)
				return
			}
			defer cl.Close()
			src, err := kgo.NewClient(env.SourceOpts()...)
			if err != nil {
				first.set(err)
				return
			}
			defer src.Close()
			opts := []replicate.Option{replicate.WithLogger(log), replicate.WithMetricsWriter(nil)}
			// KMIG_BENCH_NO_TXN_CHECK=1 measures the replicator without
			// its transaction check, to price the check; never deployed.
			if os.Getenv("KMIG_BENCH_NO_TXN_CHECK") == "1" {
				opts = append(opts, replicate.WithoutTransactionCheck())
			}
			r, err := replicate.New(cfg, cl, src, opts...)
			if err != nil {
				first.set(err)
				return
			}
			serve(r, c)
			t := r.Totals()
			mu.Lock()
			st.Written += t.RecordsWritten
			st.Duplicates += t.DuplicatesSkipped
			mu.Unlock()
		})
	}
	wg.Wait()
	return st, first.get()
}

func serve(r *replicate.Replicator, c net.Conn) {
	rd := bufio.NewReaderSize(c, 64<<10)
	var hdr [5]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(rd, hdr[:4]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[:4]))
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(rd, buf); err != nil {
			return
		}
		resp, err := r.Invoke(context.Background(), buf)
		hdr[0] = 0
		if err != nil {
			hdr[0], resp = 1, []byte(err.Error())
		}
		binary.BigEndian.PutUint32(hdr[1:5], uint32(len(resp)))
		bufs := net.Buffers{hdr[:5], resp}
		if _, err := bufs.WriteTo(c); err != nil {
			return
		}
	}
}

// remoteHandler is a lambda.Handler that invokes the function process over
// a pool of socket connections.
type remoteHandler struct{ pool chan *remoteConn }

type remoteConn struct {
	c  net.Conn
	rd *bufio.Reader
}

func dialFunction(socket string, n int) (*remoteHandler, error) {
	h := &remoteHandler{pool: make(chan *remoteConn, n)}
	deadline := time.Now().Add(30 * time.Second)
	for range n {
		for {
			c, err := net.Dial("unix", socket)
			if err == nil {
				h.pool <- &remoteConn{c: c, rd: bufio.NewReaderSize(c, 64<<10)}
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("function socket %s: %w", socket, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return h, nil
}

func (h *remoteHandler) Invoke(_ context.Context, payload []byte) ([]byte, error) {
	rc := <-h.pool
	defer func() { h.pool <- rc }()
	var hdr [5]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(payload)))
	bufs := net.Buffers{hdr[:4], payload}
	if _, err := bufs.WriteTo(rc.c); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(rc.rd, hdr[:5]); err != nil {
		return nil, err
	}
	resp := make([]byte, binary.BigEndian.Uint32(hdr[1:5]))
	if _, err := io.ReadFull(rc.rd, resp); err != nil {
		return nil, err
	}
	if hdr[0] != 0 {
		return nil, errors.New(string(resp))
	}
	return resp, nil
}

func (h *remoteHandler) close() {
	for range cap(h.pool) {
		(<-h.pool).c.Close()
	}
}

// runESM is (b)'s event source mapping: the emulator reading the source as
// a fresh consumer group and invoking the function process.
func runESM(ctx context.Context, env Env, topic, group, socket string, concurrency, batchSize int, window time.Duration) (ChildStats, error) {
	h, err := dialFunction(socket, concurrency)
	if err != nil {
		return ChildStats{}, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if window == 0 {
		window = -1 // esm: negative means no waiting
	}
	m, err := esm.New(esm.Config{
		FunctionName:          "kmig-replicator",
		Topics:                []string{topic},
		ConsumerGroupID:       group,
		BootstrapServers:      strings.Split(env.SourceBootstrap, ","),
		ClientOptions:         env.sourceAuthOpts(),
		BatchSize:             batchSize,
		MaximumBatchingWindow: window,
		Concurrency:           concurrency,
		Logger:                log,
	}, h)
	if err != nil {
		return ChildStats{}, err
	}
	<-ctx.Done()
	m.Close()
	h.close()
	s := m.Stats()
	return ChildStats{
		Records: s.RecordsDelivered, EncodeNanos: int64(s.EncodeTime), HandlerNanos: int64(s.HandlerTime),
		Invocations: s.Invocations, Errors: s.Errors, MaxBatch: s.MaxBatchRecords,
	}, nil
}
