//go:build unix

package iamfence

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/iamlocal"
)

// The tests below run the real aws-sdk-go-v2 IAM client against moto's
// server mode (local/iamlocal), the IAM stand-in that
// scripts/install-template-tools.sh installs.

// startMoto starts the stand-in for the test and stops it at cleanup. A
// missing moto_server skips the test, or fails it when KMIG_REQUIRE_TOOLS=1
// (as in CI). It returns the endpoint URL.
func startMoto(t *testing.T) string {
	t.Helper()
	s, err := iamlocal.Start(context.Background())
	if errors.Is(err, iamlocal.ErrNotInstalled) && os.Getenv("KMIG_REQUIRE_TOOLS") != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	motoServers.Store(s.URL, s)
	return s.URL
}

var motoServers sync.Map // URL -> *iamlocal.Server

// resetMoto drops all of moto's state.
func resetMoto(t *testing.T, url string) {
	t.Helper()
	s, _ := motoServers.Load(url)
	if err := s.(*iamlocal.Server).Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// iamClient is the real SDK client pointed at url.
func iamClient(url string) *iam.Client {
	s, _ := motoServers.Load(url)
	return s.(*iamlocal.Server).Client()
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
