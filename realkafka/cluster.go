package realkafka

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// Pair returns the real SOURCE and TARGET as *kafkalocal.Cluster values (see kafkalocal.Connect), so
// the rigs written for embedded clusters run on them. The source is SCRAM with the standard
// authorizer (SecuritySCRAMACL) as the super user, with the app user as its application user; the
// target is plaintext. Skips like Brokers. Closing the pair (done at cleanup) closes helper clients
// only. The brokers are shared by every test and outlive the run: use names from UniqueName.
// It is ProfilePair(t, ProfileDenyByDefault).
func Pair(t testing.TB) *kafkalocal.Pair {
	t.Helper()
	return ProfilePair(t, ProfileDenyByDefault)
}

// Target connects to a plaintext target broker at bootstrap (comma-separated host:port).
func Target(t testing.TB, bootstrap string) (*kafkalocal.Cluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return connectTarget(ctx, bootstrap)
}

func connectTarget(ctx context.Context, bootstrap string) (*kafkalocal.Cluster, error) {
	return kafkalocal.Connect(ctx, "target", strings.Split(bootstrap, ","), kafkalocal.ConnectOptions{
		Security: kafkalocal.SecurityPlaintext, TopicConfigs: TopicConfigs,
	})
}

// TopicConfigs are set on every topic created through Pair's and Target's clusters: no time or size
// retention, so records with old timestamps survive the test.
var TopicConfigs = map[string]string{"retention.ms": "-1", "retention.bytes": "-1"}

var (
	runOnce sync.Once
	runID   string
)

// UniqueName returns prefix-<run>-<n>: unique per process run and per call, so topics and groups
// on the shared, long-lived brokers never collide with other tests or earlier runs.
func UniqueName(prefix string) string {
	runOnce.Do(func() {
		var b [3]byte
		_, _ = rand.Read(b[:])
		runID = fmt.Sprintf("%d%s", time.Now().Unix()%1_000_000, hex.EncodeToString(b[:]))
	})
	return fmt.Sprintf("%s-%s-%d", prefix, runID, seq.Add(1))
}

var seq atomic.Int64

// Broker names accepted by StopBroker and StartBroker.
const (
	BrokerSource = "source"
	BrokerTarget = "target"
	// BrokerSpare is a third plaintext broker, like TARGET, that only fault tests use: they stop
	// and restart it while the shared SOURCE and TARGET keep serving other test binaries.
	BrokerSpare = "spare"
)

// Spare starts (or reuses) the spare broker (`brokers.sh start-spare`) and returns its host:port.
// It needs brokers this package manages: with user-given bootstraps the test is skipped (a
// restart test cannot stop brokers it does not own).
func Spare(t testing.TB) string {
	t.Helper()
	ep := Brokers(t)
	if !ep.Local {
		t.Skip("real Kafka tier: brokers are user-given (KMIG_REAL_*_BOOTSTRAP); no spare broker to stop and restart")
	}
	out, err := script("start-spare")
	if err != nil {
		t.Fatalf("real Kafka tier: %v", err)
	}
	return strings.TrimSpace(out)
}

// LockSpare takes an exclusive lock on the spare broker for the rest of the test (released at
// cleanup), waiting while another test binary or process holds it: a test that stops and restarts
// the spare must hold it, so that two such tests never restart it under each other.
func LockSpare(t testing.TB) {
	t.Helper()
	ep := Brokers(t)
	if !ep.Local || ep.RunDir == "" {
		t.Skip("real Kafka tier: brokers are user-given (KMIG_REAL_*_BOOTSTRAP); no spare broker to lock")
	}
	f, err := os.OpenFile(filepath.Join(ep.RunDir, "spare.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("real Kafka tier: %v", err)
	}
	start := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("real Kafka tier: locking the spare broker: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("waited %v for the spare broker lock", d.Round(time.Millisecond))
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// StopBroker stops one local broker by the PID brokers.sh recorded, keeping its config and data;
// kill sends SIGKILL at once instead of a clean shutdown. Stopping BrokerSource or BrokerTarget
// disturbs every other user of the shared brokers: tests should stop BrokerSpare.
func StopBroker(name string, kill bool) error {
	args := []string{"stop-broker", name}
	if kill {
		args = append(args, "--kill")
	}
	_, err := script(args...)
	return err
}

// StartBroker starts a stopped local broker again with the same config and data dir and waits
// until it is ready.
func StartBroker(name string) error {
	_, err := script("start-broker", name)
	return err
}

func script(args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{filepath.Join(Dir(), "brokers.sh")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("brokers.sh %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out), nil
}
