// Package bench is the real-Kafka side-by-side benchmark (`make bench-real`,
// docs/BENCHMARKS.md): it drains one pre-filled backlog on the SOURCE broker
// of realkafka/brokers.sh to the TARGET with (a) a raw franz-go
// consume→produce pipe, (b) the replicator behind the ESM emulator and
// (c) MirrorMaker 2 in dedicated mode, interleaved over rounds, and reports
// throughput, CPU per GB (replicating process and brokers apart), and
// source-append→target-append latency at a fixed offered load. Every run is
// verified: no record lost, none duplicated, in order, unchanged.
//
// Each replicating tool runs in its own child process (this command's
// binary with a hidden sub-command), so its CPU is read from
// /proc/<pid>/stat without the brokers' or the orchestrator's. For (b) the
// ESM emulator and the function run in two processes connected by a Unix
// socket, as pollers and the function are apart in AWS: the function's CPU
// is then measured on its own.
//
// It must never be imported by a Lambda binary.
package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Env is where the brokers are, from `realkafka/brokers.sh env`.
type Env struct {
	SourceBootstrap string
	TargetBootstrap string
	SourceUser      string
	SourcePassword  string
	SourceMechanism string
	KafkaLibs       string
	RunDir          string // brokers.sh run dir; empty for external brokers
	RepoRoot        string // for realkafka/mm2.sh
}

// EnvFromEnviron reads the KMIG_REAL_* variables.
func EnvFromEnviron() (Env, error) {
	e := Env{
		SourceBootstrap: os.Getenv("KMIG_REAL_SOURCE_BOOTSTRAP"),
		TargetBootstrap: os.Getenv("KMIG_REAL_TARGET_BOOTSTRAP"),
		SourceUser:      getenv("KMIG_REAL_SOURCE_USER", "admin"),
		SourcePassword:  getenv("KMIG_REAL_SOURCE_PASSWORD", "admin-secret"),
		SourceMechanism: getenv("KMIG_REAL_SOURCE_MECHANISM", "SCRAM-SHA-512"),
		KafkaLibs:       os.Getenv("KMIG_REAL_KAFKA_LIBS"),
		RepoRoot:        getenv("KMIG_REPO_ROOT", "."),
	}
	if os.Getenv("KMIG_REAL_MANAGED") == "1" {
		e.RunDir = getenv("KMIG_REAL_RUN_DIR", "/tmp/kmig-realkafka")
	}
	if e.SourceBootstrap == "" || e.TargetBootstrap == "" {
		return e, fmt.Errorf(`KMIG_REAL_SOURCE_BOOTSTRAP / KMIG_REAL_TARGET_BOOTSTRAP not set: run realkafka/brokers.sh start && eval "$(realkafka/brokers.sh env)"`)
	}
	return e, nil
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Environ returns e as KMIG_REAL_* variables, for child processes.
func (e Env) Environ() []string {
	out := []string{
		"KMIG_REAL_SOURCE_BOOTSTRAP=" + e.SourceBootstrap,
		"KMIG_REAL_TARGET_BOOTSTRAP=" + e.TargetBootstrap,
		"KMIG_REAL_SOURCE_USER=" + e.SourceUser,
		"KMIG_REAL_SOURCE_PASSWORD=" + e.SourcePassword,
		"KMIG_REAL_SOURCE_MECHANISM=" + e.SourceMechanism,
		"KMIG_REAL_KAFKA_LIBS=" + e.KafkaLibs,
		"KMIG_REPO_ROOT=" + e.RepoRoot,
	}
	if e.RunDir != "" {
		out = append(out, "KMIG_REAL_MANAGED=1", "KMIG_REAL_RUN_DIR="+e.RunDir)
	}
	return out
}

// SourceOpts are the client options for the SOURCE as its super user.
func (e Env) SourceOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(strings.Split(e.SourceBootstrap, ",")...)}
	a := scram.Auth{User: e.SourceUser, Pass: e.SourcePassword}
	switch strings.ToUpper(e.SourceMechanism) {
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(a.AsSha512Mechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(a.AsSha256Mechanism()))
	}
	return opts
}

// TargetOpts are the client options for the (plaintext) TARGET.
func (e Env) TargetOpts() []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(strings.Split(e.TargetBootstrap, ",")...)}
}

// BrokerPID returns the PID brokers.sh recorded for "source" or "target",
// or 0 when the brokers are not local.
func (e Env) BrokerPID(name string) int {
	if e.RunDir == "" {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(e.RunDir, name+".pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
