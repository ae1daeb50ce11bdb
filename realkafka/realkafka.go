// Package realkafka gives tests the "real Apache Kafka" tier: a SOURCE broker with SASL/SCRAM and the
// standard authorizer and a plaintext TARGET broker, plus a source per profile (see
// realkafka/README.md).
//
// Brokers(t) returns the endpoints. When KMIG_REAL_SOURCE_BOOTSTRAP and KMIG_REAL_TARGET_BOOTSTRAP are
// set, those brokers are used and nothing is started. Otherwise the first call in a test binary runs
// `realkafka/brokers.sh start` (which fetches the Kafka jars with Maven on first use, then starts two
// local KRaft brokers, or reuses ones already started by an earlier run) and reads `brokers.sh env`.
//
// Lifetime: brokers started this way are LEFT RUNNING when the test binary exits, so later test runs
// and other packages (go test ./... runs packages in parallel) reuse them; stop them with
// `realkafka/brokers.sh stop`. A package that wants them stopped at the end can use Main in its
// TestMain; it stops the brokers only if this process started them.
//
// If java (or, before the jars are cached, mvn) is missing, Brokers skips the test, unless
// KMIG_REQUIRE_REAL_KAFKA=1, in which case it fails it. A failing start always fails the test.
package realkafka

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Endpoints names the two clusters and the SOURCE credentials.
type Endpoints struct {
	// SourceBootstrap is host:port of the SOURCE (SASL_PLAINTEXT, SCRAM, StandardAuthorizer).
	SourceBootstrap string
	// TargetBootstrap is host:port of the TARGET (PLAINTEXT, no authorizer).
	TargetBootstrap string
	// SourceUser/SourcePassword is the SOURCE super user (admin / admin-secret locally).
	SourceUser     string
	SourcePassword string
	// SourceMechanism is the SASL mechanism for the SOURCE, SCRAM-SHA-512 locally
	// (the local SOURCE also accepts SCRAM-SHA-256 for both users).
	SourceMechanism string
	// AppUser/AppPassword is an ACL-limited application user on the SOURCE (app / app-secret locally):
	// ALLOW topic Read/Write/Describe/Create on *, group Read/Describe on *.
	AppUser     string
	AppPassword string
	// KafkaLibs is the directory of Kafka jars (java -cp "$KafkaLibs/*"), for MirrorMaker 2 and tools.
	KafkaLibs string
	// KafkaVersion is the Kafka version of KafkaLibs.
	KafkaVersion string
	// Local is true when the brokers are the ones brokers.sh manages (not user-given bootstraps).
	Local bool
	// RunDir is brokers.sh's run directory for local brokers (configs, data, logs, PIDs, locks).
	RunDir string
}

// DefaultKafkaVersion is the Kafka version brokers.sh fetches unless KMIG_KAFKA_VERSION says otherwise.
const DefaultKafkaVersion = "4.3.1"

// Env variable names.
const (
	EnvSourceBootstrap = "KMIG_REAL_SOURCE_BOOTSTRAP"
	EnvTargetBootstrap = "KMIG_REAL_TARGET_BOOTSTRAP"
	EnvSourceUser      = "KMIG_REAL_SOURCE_USER"
	EnvSourcePassword  = "KMIG_REAL_SOURCE_PASSWORD"
	EnvSourceMechanism = "KMIG_REAL_SOURCE_MECHANISM"
	EnvAppUser         = "KMIG_REAL_SOURCE_APP_USER"
	EnvAppPassword     = "KMIG_REAL_SOURCE_APP_PASSWORD"
	EnvKafkaLibs       = "KMIG_REAL_KAFKA_LIBS"
	EnvKafkaVersion    = "KMIG_REAL_KAFKA_VERSION"
	EnvManaged         = "KMIG_REAL_MANAGED"
	EnvRunDir          = "KMIG_REAL_RUN_DIR"
	EnvRequire         = "KMIG_REQUIRE_REAL_KAFKA"
)

var (
	once      sync.Once
	endpoints Endpoints
	skipWhy   string // set when the tier is unavailable (missing tools)
	startErr  error
	started   bool // this process ran brokers.sh start and it started the brokers
	mu        sync.Mutex
)

// Dir is the realkafka directory holding brokers.sh, mm2.sh and the templates.
func Dir() string {
	if d := os.Getenv("KMIG_REALKAFKA_SCRIPTS"); d != "" {
		return d
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "realkafka"
	}
	return filepath.Dir(file)
}

// Brokers returns the endpoints of the real Kafka tier, starting local brokers once per test binary
// if no bootstrap addresses are given. See the package doc for skip/fail rules and lifetime.
func Brokers(t testing.TB) Endpoints {
	t.Helper()
	once.Do(setup)
	if skipWhy != "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("real Kafka tier required (%s=1) but unavailable: %s", EnvRequire, skipWhy)
		}
		t.Skipf("real Kafka tier unavailable: %s (set %s/%s to use existing brokers)", skipWhy, EnvSourceBootstrap, EnvTargetBootstrap)
	}
	if startErr != nil {
		t.Fatalf("real Kafka tier: %v", startErr)
	}
	return endpoints
}

// Start is Brokers for commands, which have no testing.TB: it returns the endpoints, starting the
// local brokers once per process if no bootstrap addresses are given, or an error where Brokers would
// skip or fail. The brokers are left running, as Brokers leaves them.
func Start() (Endpoints, error) {
	once.Do(setup)
	if skipWhy != "" {
		return Endpoints{}, fmt.Errorf("real Kafka tier unavailable: %s (set %s/%s to use existing brokers)", skipWhy, EnvSourceBootstrap, EnvTargetBootstrap)
	}
	if startErr != nil {
		return Endpoints{}, fmt.Errorf("real Kafka tier: %w", startErr)
	}
	return endpoints, nil
}

func setup() {
	if os.Getenv(EnvSourceBootstrap) != "" && os.Getenv(EnvTargetBootstrap) != "" {
		endpoints = fromEnv(os.Getenv)
		return
	}
	if _, err := exec.LookPath("java"); err != nil {
		skipWhy = "java not found on PATH (Java 17+ needed)"
		return
	}
	if _, err := exec.LookPath("bash"); err != nil {
		skipWhy = "bash not found on PATH"
		return
	}
	if _, err := exec.LookPath("mvn"); err != nil && !libsCached() {
		skipWhy = "mvn not found on PATH and the Kafka jars are not cached yet"
		return
	}
	script := filepath.Join(Dir(), "brokers.sh")
	start := time.Now()
	cmd := exec.Command("bash", script, "start")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		startErr = fmt.Errorf("%s start failed after %s: %v\n%s%s", script, time.Since(start).Round(time.Millisecond), err, out, stderr.Bytes())
		return
	}
	mu.Lock()
	started = strings.TrimSpace(string(out)) == "started"
	mu.Unlock()
	envOut, err := exec.Command("bash", script, "env").Output()
	if err != nil {
		startErr = fmt.Errorf("%s env failed: %v", script, err)
		return
	}
	vars := parseExports(envOut)
	endpoints = fromEnv(func(k string) string { return vars[k] })
}

// libsCached reports whether brokers.sh fetch has already put the jars in the cache (then Maven is not needed).
func libsCached() bool {
	version := os.Getenv("KMIG_KAFKA_VERSION")
	if version == "" {
		version = DefaultKafkaVersion
	}
	cache := os.Getenv("KMIG_CACHE")
	if cache == "" {
		home := os.Getenv("HOME")
		if home == "" {
			home = "/tmp"
		}
		cache = filepath.Join(home, ".cache", "kmig")
	}
	_, err := os.Stat(filepath.Join(cache, "kafka-"+version, "libs", ".complete"))
	return err == nil
}

func fromEnv(get func(string) string) Endpoints {
	def := func(k, d string) string {
		if v := get(k); v != "" {
			return v
		}
		return d
	}
	return Endpoints{
		SourceBootstrap: get(EnvSourceBootstrap),
		TargetBootstrap: get(EnvTargetBootstrap),
		SourceUser:      def(EnvSourceUser, "admin"),
		SourcePassword:  def(EnvSourcePassword, "admin-secret"),
		SourceMechanism: def(EnvSourceMechanism, "SCRAM-SHA-512"),
		AppUser:         def(EnvAppUser, "app"),
		AppPassword:     def(EnvAppPassword, "app-secret"),
		KafkaLibs:       get(EnvKafkaLibs),
		KafkaVersion:    get(EnvKafkaVersion),
		Local:           get(EnvManaged) == "1",
		RunDir:          get(EnvRunDir),
	}
}

// parseExports reads `export K=V` lines as printed by brokers.sh env (values are %q-quoted by bash,
// which for our values means plain words or backslash escapes).
func parseExports(b []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "))
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		var sb strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
			}
			sb.WriteByte(v[i])
		}
		m[k] = strings.Trim(sb.String(), "'")
	}
	return m
}

// Stop stops the local brokers if this process started them (not if they were already running or
// are user-given). It is safe to call when Brokers was never called.
func Stop() error {
	mu.Lock()
	defer mu.Unlock()
	if !started {
		return nil
	}
	started = false
	out, err := exec.Command("bash", filepath.Join(Dir(), "brokers.sh"), "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("brokers.sh stop: %v\n%s", err, out)
	}
	return nil
}

// Main is for TestMain: it runs the tests, then stops the brokers if this test binary started them
// (unless KMIG_REAL_KEEP=1), and returns the exit code:
//
//	func TestMain(m *testing.M) { os.Exit(realkafka.Main(m)) }
//
// Do not use it in packages tested in parallel with other real-Kafka packages: it would stop brokers
// the others still use. In CI prefer starting them once around `go test` (see README.md).
func Main(m *testing.M) int {
	code := m.Run()
	if os.Getenv("KMIG_REAL_KEEP") != "1" {
		if err := Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	return code
}
