package templatetest

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// toolsDir is where scripts/install-template-tools.sh installs.
func toolsDir() string {
	if d := os.Getenv("KMIG_TOOLS_DIR"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "kmig-tools")
}

// requireTool finds name on PATH or in the tools directory. A missing tool
// skips the test, or fails it when KMIG_REQUIRE_TOOLS=1 (as in CI).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	for _, p := range []string{
		filepath.Join(toolsDir(), "venv", "bin", name),
		filepath.Join(toolsDir(), "node", "node_modules", ".bin", name),
		// asl-validator is also a dependency of the local state machine runner.
		filepath.Join(repoRoot(t), "statemachine", "local", "node_modules", ".bin", name),
	} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := name + " is not installed; run scripts/install-template-tools.sh"
	if os.Getenv("KMIG_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg + " (KMIG_REQUIRE_TOOLS=1)")
	}
	t.Skip(msg)
	return ""
}

// run runs a tool in the repository root and returns its combined output.
func run(t *testing.T, timeout time.Duration, tool string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "SAM_CLI_TELEMETRY=0", "SAM_CLI_CONTACT_DIRECTORY_DISABLE=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestCfnLint: cfn-lint passes with nothing reported. The one check the
// template switches off (W1030) is explained in its Metadata.
func TestCfnLint(t *testing.T) {
	cfnLint := requireTool(t, "cfn-lint")
	out, err := run(t, 5*time.Minute, cfnLint, "template.yaml")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("cfn-lint template.yaml: %v\n%s", err, out)
	}
}

func TestSamValidateLint(t *testing.T) {
	sam := requireTool(t, "sam")
	out, err := run(t, 5*time.Minute, sam, "validate", "--lint", "--template", "template.yaml")
	if err != nil || !strings.Contains(out, "is a valid SAM Template") {
		t.Fatalf("sam validate --lint: %v\n%s", err, out)
	}
}

// TestSamBuild builds with the Makefile targets (no Docker) and checks one
// linux/arm64 bootstrap per function.
func TestSamBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("sam build compiles three functions; skipped with -short")
	}
	sam := requireTool(t, "sam")
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dir := t.TempDir()
	build := filepath.Join(dir, "build")
	// A 500-topic selection given as names: the template, and so the
	// build, do not depend on it.
	out, err := run(t, 20*time.Minute, sam, "build",
		"--template", "template.yaml",
		"--build-dir", build, "--cache-dir", filepath.Join(dir, "cache"),
		"--parameter-overrides", "TopicPatterns="+topicNames(500))
	if err != nil || !strings.Contains(out, "Build Succeeded") {
		t.Fatalf("sam build: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(build)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(build, e.Name(), "bootstrap")); err == nil {
			got[e.Name()] = true
		}
	}
	want := []string{"CutoverFunction", "ProvisionerFunction", "ReplicatorFunction"}
	if strings.Join(sortedSet(got), ",") != strings.Join(want, ",") {
		t.Fatalf("bootstraps built for %v, want exactly %v", sortedSet(got), want)
	}
	for _, fn := range want {
		f, err := elf.Open(filepath.Join(build, fn, "bootstrap"))
		if err != nil {
			t.Fatalf("%s/bootstrap: %v", fn, err)
		}
		if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
			t.Errorf("%s/bootstrap is %v %v, want a 64-bit arm64 executable", fn, f.Class, f.Machine)
		}
		f.Close()
	}
	// The built template keeps the same IAM guarantees.
	b, err := os.ReadFile(filepath.Join(build, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range iamFindings(parseTemplate(t, b)) {
		if !strings.Contains(f, "without a comment") { // sam build drops comments
			t.Errorf("built template: %s", f)
		}
	}
}

func TestASLValidator(t *testing.T) {
	asl := filepath.Join(repoRoot(t), "statemachine", "cutover.asl.json")
	if _, err := os.Stat(asl); err != nil {
		t.Fatalf("statemachine/cutover.asl.json: %v", err)
	}
	v := requireTool(t, "asl-validator")
	out, err := run(t, 2*time.Minute, v, "--json-path", "statemachine/cutover.asl.json")
	if err != nil || !strings.Contains(out, "is valid") {
		t.Fatalf("asl-validator: %v\n%s", err, out)
	}
}

// TestStateMachineSubstitutions: every ${...} in the definition is filled
// by DefinitionSubstitutions.
func TestStateMachineSubstitutions(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "statemachine", "cutover.asl.json"))
	if err != nil {
		t.Fatal(err)
	}
	var def map[string]any
	if err := json.Unmarshal(b, &def); err != nil {
		t.Fatalf("cutover.asl.json is not JSON: %v", err)
	}
	sm := findResource(t, loadTemplate(t), "CutoverStateMachine")
	subs := sm.Node.get("Properties", "DefinitionSubstitutions")
	if subs == nil {
		t.Fatal("CutoverStateMachine has no DefinitionSubstitutions")
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`).FindAllStringSubmatch(string(b), -1) {
		if subs.get(m[1]) == nil {
			t.Errorf("the definition uses ${%s}, which DefinitionSubstitutions does not set", m[1])
		}
	}
	if fn, arg := subs.get("CutoverFunctionArn").intrinsic(); fn != "Fn::GetAtt" || len(arg.List) != 2 || arg.List[0].str() != "CutoverFunction" || arg.List[1].str() != "Arn" {
		t.Errorf("CutoverFunctionArn must be !GetAtt CutoverFunction.Arn")
	}
}
