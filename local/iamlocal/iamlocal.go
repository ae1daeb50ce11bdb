//go:build unix

// Package iamlocal runs an IAM API stand-in on loopback for tests and local
// runs: moto's server mode, from the tools venv that
// scripts/install-template-tools.sh installs (moto[server], pinned there),
// never another moto on PATH. The real aws-sdk-go-v2 IAM client talks to
// it. This package must never be imported by a Lambda binary.
package iamlocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// ErrNotInstalled says moto_server is not in the tools venv; run
// scripts/install-template-tools.sh.
var ErrNotInstalled = errors.New("moto_server is not installed in the tools venv; run scripts/install-template-tools.sh")

// Region is the region the stand-in and its clients use.
const Region = "us-east-1"

// ToolsDir is where scripts/install-template-tools.sh installs:
// $KMIG_TOOLS_DIR, or ~/.cache/kmig-tools.
func ToolsDir() string {
	if d := os.Getenv("KMIG_TOOLS_DIR"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "kmig-tools")
}

// MotoServer returns the path of the venv's moto_server, or
// ErrNotInstalled (wrapped, with the path looked at).
func MotoServer() (string, error) {
	p := filepath.Join(ToolsDir(), "venv", "bin", "moto_server")
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		return "", fmt.Errorf("%s: %w", p, ErrNotInstalled)
	}
	return p, nil
}

// Server is a running moto server.
type Server struct {
	URL    string
	cmd    *exec.Cmd
	exited chan struct{}
	out    *syncBuffer
	once   sync.Once
}

// Start starts moto_server on a free loopback port in a process group of
// its own and waits until it answers (at most 60 s, or ctx). Close stops
// the whole group; nothing is left running.
func Start(ctx context.Context) (*Server, error) {
	bin, err := MotoServer()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	s := &Server{URL: "http://127.0.0.1:" + port, exited: make(chan struct{}), out: &syncBuffer{}}
	s.cmd = exec.Command(bin, "-H", "127.0.0.1", "-p", port)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// No AWS settings of the machine reach the stand-in.
	s.cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION="+Region)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("moto_server exited before it answered:\n%s", s.out.String())
		case <-ctx.Done():
			s.Close()
			return nil, ctx.Err()
		default:
		}
		if resp, err := http.Get(s.URL + "/moto-api/"); err == nil {
			resp.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Close()
			return nil, fmt.Errorf("moto_server did not answer on %s within 60s:\n%s", s.URL, s.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Close stops the server's process group (SIGTERM, then SIGKILL after
// 10 s). It is safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		pgid := s.cmd.Process.Pid // Setpgid: the group id is the leader's pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-s.exited
		}
		// Anything of the group still alive is killed too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
}

// Output is what the server printed so far, for failure messages.
func (s *Server) Output() string { return s.out.String() }

// Reset drops all of moto's state.
func (s *Server) Reset(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/moto-api/reset", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("moto reset: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("moto reset: %s", resp.Status)
	}
	return nil
}

// Client is the real SDK IAM client pointed at the server, with static
// test credentials.
func (s *Server) Client() *iam.Client {
	cfg := aws.Config{Region: Region, Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	return iam.NewFromConfig(cfg, func(o *iam.Options) { o.BaseEndpoint = aws.String(s.URL) })
}

const assumeRolePolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// CreateRole creates a role (under path, "" for /) and returns its ARN.
func (s *Server) CreateRole(ctx context.Context, name, path string) (string, error) {
	in := &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(assumeRolePolicy)}
	if path != "" {
		in.Path = aws.String(path)
	}
	out, err := s.Client().CreateRole(ctx, in)
	if err != nil {
		return "", fmt.Errorf("CreateRole %s: %w", name, err)
	}
	return aws.ToString(out.Role.Arn), nil
}

// InlinePolicies returns the names of a role's inline policies.
func (s *Server) InlinePolicies(ctx context.Context, role string) ([]string, error) {
	out, err := s.Client().ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
	if err != nil {
		return nil, fmt.Errorf("ListRolePolicies %s: %w", role, err)
	}
	return out.PolicyNames, nil
}

// syncBuffer collects the server's output.
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
