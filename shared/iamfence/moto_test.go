//go:build unix

package iamfence

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// The tests below run the real aws-sdk-go-v2 IAM client against moto's
// server mode, the IAM stand-in that scripts/install-template-tools.sh
// installs (moto[server], pinned there).

// toolsDir is where scripts/install-template-tools.sh installs, as the
// template tests find it.
func toolsDir() string {
	if d := os.Getenv("KMIG_TOOLS_DIR"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "kmig-tools")
}

// requireMotoServer finds moto_server in the tools venv only, so that the
// tests run the version the install script pins, never another moto on
// PATH. A missing moto_server skips the test, or fails it when
// KMIG_REQUIRE_TOOLS=1 (as in CI).
func requireMotoServer(t *testing.T) string {
	t.Helper()
	p := filepath.Join(toolsDir(), "venv", "bin", "moto_server")
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		return p
	}
	msg := p + " is not installed; run scripts/install-template-tools.sh"
	if os.Getenv("KMIG_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg + " (KMIG_REQUIRE_TOOLS=1)")
	}
	t.Skip(msg)
	return ""
}

// syncBuffer collects the server's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startMoto starts moto_server on a free loopback port in a process group
// of its own, waits until it answers, and stops the whole group at
// cleanup. It returns the endpoint URL.
func startMoto(t *testing.T) string {
	t.Helper()
	bin := requireMotoServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()

	var out syncBuffer
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", port)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// No AWS settings of the machine reach the stand-in.
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1")
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid // Setpgid: the group id is the leader's pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
		// Anything of the group still alive (a child that ignored SIGTERM)
		// is killed too; ESRCH means none is left.
		syscall.Kill(-pgid, syscall.SIGKILL)
	})

	url := "http://127.0.0.1:" + port
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("moto_server exited before it answered:\n%s", out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
			c.Close()
			if resp, err := http.Get(url + "/moto-api/"); err == nil {
				resp.Body.Close()
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s within 60s:\n%s", url, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// resetMoto drops all of moto's state.
func resetMoto(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Post(url+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("moto reset: %s", resp.Status)
	}
}

// iamClient is the real SDK client pointed at url.
func iamClient(url string) *iam.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
	return iam.NewFromConfig(cfg, func(o *iam.Options) { o.BaseEndpoint = aws.String(url) })
}

const assumeRolePolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// createRole creates a role (under path, "" for /) and returns its ARN.
func createRole(t *testing.T, c *iam.Client, name, path string) string {
	t.Helper()
	in := &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(assumeRolePolicy)}
	if path != "" {
		in.Path = aws.String(path)
	}
	out, err := c.CreateRole(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateRole %s: %v", name, err)
	}
	return aws.ToString(out.Role.Arn)
}

// putInline puts an inline policy directly, as an operator would.
func putInline(t *testing.T, c *iam.Client, role, name, doc string) {
	t.Helper()
	if _, err := c.PutRolePolicy(context.Background(), &iam.PutRolePolicyInput{
		RoleName: aws.String(role), PolicyName: aws.String(name), PolicyDocument: aws.String(doc),
	}); err != nil {
		t.Fatalf("PutRolePolicy %s on %s: %v", name, role, err)
	}
}

// inlinePolicies returns every inline policy of a role, name -> decoded
// document, as IAM reports them.
func inlinePolicies(t *testing.T, c *iam.Client, role string) map[string]string {
	t.Helper()
	ctx := context.Background()
	list, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
	if err != nil {
		t.Fatalf("ListRolePolicies %s: %v", role, err)
	}
	got := map[string]string{}
	for _, name := range list.PolicyNames {
		out, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
		if err != nil {
			t.Fatalf("GetRolePolicy %s on %s: %v", name, role, err)
		}
		got[name] = decodeDocument(aws.ToString(out.PolicyDocument))
	}
	return got
}

// wantInline checks a role's inline policies exactly.
func wantInline(t *testing.T, c *iam.Client, role string, want map[string]string) {
	t.Helper()
	got := inlinePolicies(t, c, role)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("role %s has inline policies %v, want %v", role, got, want)
	}
}
