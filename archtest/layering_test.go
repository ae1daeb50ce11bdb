package archtest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// builds are the configurations the rule holds for: the Lambda functions
// as the Makefile builds them, and this machine's default.
var builds = []struct {
	name string
	env  []string
	tags string
}{
	{"as deployed (CGO_ENABLED=0 GOOS=linux GOARCH=arm64 -tags lambda.norpc)", []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64"}, "lambda.norpc"},
	{"for this machine", nil, ""},
}

// forbidden says why a deployed function must not depend on pkg, or "".
func forbidden(module, pkg string) string {
	switch {
	case pkg == module+"/local" || strings.HasPrefix(pkg, module+"/local/"):
		return "the local stand-in (local/) is for development and tests, never deployed"
	case pkg == "github.com/twmb/franz-go/pkg/kfake":
		return "kfake is an in-memory fake Kafka for tests"
	case pkg == "testing" || strings.HasPrefix(pkg, "testing/"):
		return "the testing package belongs in tests"
	}
	return ""
}

// TestFunctionsDependOnNoTestMachinery: no package the Lambda functions
// (./functions/...) are built from, directly or through others, is under
// local/, kfake or testing. A failure shows the import chain that pulls
// the package in.
func TestFunctionsDependOnNoTestMachinery(t *testing.T) {
	root := repoRoot(t)
	module := goList(t, root, nil, "", "-m", "-f", "{{.Path}}")[0]
	for _, build := range builds {
		roots, imports := depGraph(t, root, build.env, build.tags)
		if len(roots) == 0 {
			t.Fatalf("%s: go list found no package under ./functions", build.name)
		}
		for pkg := range imports {
			if why := forbidden(module, pkg); why != "" {
				t.Errorf("%s: the functions depend on %s (%s): %s", build.name, pkg, why, strings.Join(chain(roots, imports, pkg), " -> "))
			}
		}
	}
}

// TestForbiddenIsNotVacuous: the rule recognises each kind of package it
// exists to keep out, and chain finds a path through the graph.
func TestForbiddenIsNotVacuous(t *testing.T) {
	const module = "example.com/m"
	for _, pkg := range []string{"example.com/m/local", "example.com/m/local/esm", "github.com/twmb/franz-go/pkg/kfake", "testing", "testing/synctest"} {
		if forbidden(module, pkg) == "" {
			t.Errorf("%s is not forbidden", pkg)
		}
	}
	for _, pkg := range []string{"example.com/m/shared/replicate", "example.com/m/localize", "github.com/twmb/franz-go/pkg/kgo", "testingx"} {
		if why := forbidden(module, pkg); why != "" {
			t.Errorf("%s is forbidden: %s", pkg, why)
		}
	}
	imports := map[string][]string{"f": {"a", "b"}, "a": {"c"}, "b": {"d"}, "d": {"testing"}, "c": nil, "testing": nil}
	if got := strings.Join(chain([]string{"f"}, imports, "testing"), " -> "); got != "f -> b -> d -> testing" {
		t.Errorf("chain = %s", got)
	}
}

// depGraph lists the functions' packages and every package they depend
// on, with each one's imports, as go list resolves them for the build.
func depGraph(t *testing.T, root string, env []string, tags string) (roots []string, imports map[string][]string) {
	t.Helper()
	roots = goList(t, root, env, tags, "-f", "{{.ImportPath}}", "./functions/...")
	imports = map[string][]string{}
	for _, line := range goList(t, root, env, tags, "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./functions/...") {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
	}
	return roots, imports
}

// chain returns the shortest import path from one of roots to pkg.
func chain(roots []string, imports map[string][]string, pkg string) []string {
	from := map[string]string{}
	queue := []string{}
	for _, r := range roots {
		from[r] = ""
		queue = append(queue, r)
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == pkg {
			var path []string
			for ; p != ""; p = from[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, q := range imports[p] {
			if _, seen := from[q]; !seen {
				from[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{"(no import chain found to " + pkg + ")"}
}

func goList(t *testing.T, dir string, env []string, tags string, args ...string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed: %v", err)
	}
	all := []string{"list"}
	if tags != "" {
		all = append(all, "-tags", tags)
	}
	cmd := exec.Command(goBin, append(all, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, stderr.String())
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// repoRoot is the directory holding go.mod, above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no go.mod above archtest: %v", err)
	}
	return dir
}
