package cutoverrun

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/iamlocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamfence"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
)

// The iam fence runs against moto's IAM server (local/iamlocal) with the
// real aws-sdk-go-v2 client. The Kafka side is the embedded SCRAM source,
// declared to the cutover function as IAM-authenticated (SOURCE_AUTH=iam):
// what these tests prove is the policy the fence puts, reads back and
// removes, and what Validate refuses; that MSK enforces the deny is AWS's
// part.

const (
	testClusterArn = "arn:aws:kafka:us-east-1:123456789012:cluster/source/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d-7"
	testTopicArn   = "arn:aws:kafka:us-east-1:123456789012:topic/source/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d-7/"
)

// iamRig is moto with two producer roles (one under a path) and a
// bystander role carrying an operator's inline policy.
type iamRig struct {
	srv      *iamlocal.Server
	roles    []string // ARNs of the producer roles
	operator string   // the bystander's policy document
}

func newIAMRig(t *testing.T) *iamRig {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	srv, err := iamlocal.Start(ctx)
	if errors.Is(err, iamlocal.ErrNotInstalled) && os.Getenv("KMIG_REQUIRE_TOOLS") != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ir := &iamRig{srv: srv, operator: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kafka-cluster:Connect","Resource":"*"}]}`}
	for _, r := range []struct{ name, path string }{{"orders-producer", ""}, {"billing-producer", "/apps/"}, {"bystander", ""}} {
		arn, err := srv.CreateRole(ctx, r.name, r.path)
		if err != nil {
			t.Fatal(err)
		}
		if r.name != "bystander" {
			ir.roles = append(ir.roles, arn)
		}
	}
	if _, err := srv.Client().PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("bystander"),
		PolicyName: aws.String("operator"), PolicyDocument: aws.String(ir.operator)}); err != nil {
		t.Fatal(err)
	}
	return ir
}

// options configures the cutover function for an IAM source.
func (ir *iamRig) options() Options {
	return Options{SourceAuth: kafkaconn.AuthIAM, IAM: ir.srv.Client(), SourceClusterArn: testClusterArn, ProducerRoleArns: ir.roles}
}

// policies returns, per role, its inline policies as name -> document.
func (ir *iamRig) policies(t *testing.T) map[string]map[string]string {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	out := map[string]map[string]string{}
	for _, role := range []string{"orders-producer", "billing-producer", "bystander"} {
		names, err := ir.srv.InlinePolicies(ctx, role)
		if err != nil {
			t.Fatal(err)
		}
		out[role] = map[string]string{}
		for _, n := range names {
			p, err := ir.srv.Client().GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(n)})
			if err != nil {
				t.Fatal(err)
			}
			doc, _ := url.QueryUnescape(aws.ToString(p.PolicyDocument))
			out[role][n] = doc
		}
	}
	return out
}

// wantFence checks that exactly the producer roles carry the fence, a
// Deny of kafka-cluster:WriteData on exactly topics' ARNs, and that the
// bystander keeps only its own policy.
func (ir *iamRig) wantFence(t *testing.T, topics ...string) {
	t.Helper()
	got := ir.policies(t)
	if !reflect.DeepEqual(got["bystander"], map[string]string{"operator": ir.operator}) {
		t.Errorf("bystander's policies changed: %v", got["bystander"])
	}
	for _, role := range []string{"orders-producer", "billing-producer"} {
		doc, ok := got[role][iamfence.PolicyName]
		if len(topics) == 0 {
			if len(got[role]) != 0 {
				t.Errorf("role %s still has %v", role, got[role])
			}
			continue
		}
		if !ok || len(got[role]) != 1 {
			t.Errorf("role %s has policies %v, want only %s", role, got[role], iamfence.PolicyName)
			continue
		}
		var d struct {
			Statement []struct {
				Effect   string
				Action   []string
				Resource []string
			}
		}
		if err := json.Unmarshal([]byte(doc), &d); err != nil || len(d.Statement) != 1 {
			t.Fatalf("role %s: policy %s: %v", role, doc, err)
		}
		var want []string
		for _, tp := range topics {
			want = append(want, testTopicArn+tp)
		}
		s := d.Statement[0]
		if s.Effect != "Deny" || !slices.Equal(s.Action, []string{"kafka-cluster:WriteData"}) || !slices.Equal(s.Resource, want) {
			t.Errorf("role %s: fence statement %+v, want Deny kafka-cluster:WriteData on %v", role, s, want)
		}
	}
}

// TestIAMFence: the iam fence puts the deny on every producer role before
// the drain, leaves it after a successful run (and says so), and a run
// that fails after fencing removes exactly its policies.
func TestIAMFence(t *testing.T) {
	ir := newIAMRig(t)
	r := newRig(t, kafkalocal.SecuritySCRAMACL, 2)
	ctx := ctxFor(t, 2*time.Minute)
	r.produce(ctx, 0, 20, 2)
	r.waitReplicated(ctx)
	before := r.snapshot(ctx)

	in := r.baseInput()
	in["fence"] = "iam"
	in["producerRoles"] = []string{"orders-producer", ir.roles[1]} // a name and an ARN with a path
	var fencedSeen bool
	o := ir.options()
	o.Functions = map[string]lambda.Handler{"stop-consumers": hookFunc(func(ctx context.Context) error {
		ir.wantFence(t, r.topic)
		fencedSeen = true
		return nil
	})}
	in["hooks"] = map[string]any{"stopConsumers": lambdaHook("stop-consumers")}
	res := r.run(ctx, in, o)
	if res.Status != "SUCCEEDED" || res.Report == nil {
		t.Fatalf("status %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	if !fencedSeen {
		t.Error("StopConsumers hook did not run")
	}
	f := res.Report.Fence
	if !f.Applied || f.Kind != "iam" || len(f.Policies) != 2 || len(f.Created) != 0 || len(f.Remains) != 2 || !strings.Contains(f.Remains[0], iamfence.PolicyName) {
		t.Errorf("report fence %+v", f)
	}
	ir.wantFence(t, r.topic) // the fence stays after success
	if after := r.snapshot(ctx); !reflect.DeepEqual(before.ACLs, after.ACLs) {
		t.Errorf("the iam fence changed Kafka ACLs:\nbefore %v\nafter  %v", before.ACLs, after.ACLs)
	}

	// A second migration of the same topics fails after fencing: the
	// policies it found are left, so clear them first and fence anew.
	for _, role := range []string{"orders-producer", "billing-producer"} {
		if _, err := ir.srv.Client().DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(iamfence.PolicyName)}); err != nil {
			t.Fatal(err)
		}
	}
	r2 := newRig(t, kafkalocal.SecuritySCRAMACL, 2)
	r2.produce(ctx, 0, 20, 2)
	r2.waitReplicated(ctx)
	in2 := r2.baseInput()
	in2["fence"], in2["producerRoles"] = "iam", []string{"orders-producer", "billing-producer"}
	o2 := ir.options()
	o2.Fault = func(step string) bool { return step == "WaitForDrain" }
	res = r2.run(ctx, in2, o2)
	if res.Status != "FAILED" || res.Error != "InjectedFaultError" {
		t.Fatalf("status %s %s: %s", res.Status, res.Error, res.Cause)
	}
	for _, want := range []string{"removed IAM policy kmig-cutover-fence on role orders-producer", "removed IAM policy kmig-cutover-fence on role billing-producer"} {
		if !strings.Contains(res.Cause, want) {
			t.Errorf("cause lacks %q: %s", want, res.Cause)
		}
	}
	ir.wantFence(t) // nothing left but the bystander's own policy
}

// TestFenceKindRefusals: Validate refuses each fence kind the source cannot
// take, names the kind that would work, and changes nothing.
func TestFenceKindRefusals(t *testing.T) {
	ir := newIAMRig(t)
	for _, tc := range []struct {
		name     string
		security kafkalocal.Security
		iam      bool // the cutover function is told SOURCE_AUTH=iam
		in       map[string]any
		errType  string
		want     string
	}{
		{"acl on an IAM source", kafkalocal.SecuritySCRAMACL, true, map[string]any{"fence": "acl"}, "FenceUnavailableError", `use "fence": "iam"`},
		{"iam on a SCRAM source with an authorizer", kafkalocal.SecuritySCRAMACL, false,
			map[string]any{"fence": "iam", "producerRoles": []string{"orders-producer"}}, "FenceUnavailableError", `use "fence": "acl"`},
		{"iam on a source without an authorizer", kafkalocal.SecuritySCRAMNoACL, false,
			map[string]any{"fence": "iam", "producerRoles": []string{"orders-producer"}}, "FenceUnavailableError", `use "fence": "none"`},
		{"acl on a source without an authorizer", kafkalocal.SecuritySCRAMNoACL, false, map[string]any{"fence": "acl"}, "FenceUnavailableError", `use "fence": "none"`},
		{"iam on a role the stack does not allow", kafkalocal.SecuritySCRAMACL, true,
			map[string]any{"fence": "iam", "producerRoles": []string{"bystander"}}, "InvalidInputError", "producerRoles[0]"},
		{"iam on a role that does not exist", kafkalocal.SecuritySCRAMACL, true,
			map[string]any{"fence": "iam", "producerRoles": []string{"arn:aws:iam::123456789012:role/orders-producer", "ghost"}}, "InvalidInputError", "IAM role ghost does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.security, 1)
			ctx := ctxFor(t, time.Minute)
			before, policies := r.snapshot(ctx), ir.policies(t)
			in := r.baseInput()
			for k, v := range tc.in {
				in[k] = v
			}
			o := Options{}
			if tc.iam {
				o = ir.options()
				// A role the stack allows but IAM does not have.
				o.ProducerRoleArns = append(o.ProducerRoleArns, "arn:aws:iam::123456789012:role/ghost")
			}
			res := r.run(ctx, in, o)
			if res.Status != "FAILED" || res.Error != tc.errType || !strings.Contains(res.Cause, tc.want) {
				t.Fatalf("got %s %s: %s; want %s naming %q", res.Status, res.Error, res.Cause, tc.errType, tc.want)
			}
			if got := res.Entered(); !reflect.DeepEqual(got, []string{"Validate", "InvalidInput"}) {
				t.Errorf("states %v", got)
			}
			if after := r.snapshot(ctx); !reflect.DeepEqual(before, after) {
				t.Errorf("changed:\nbefore %+v\nafter  %+v", before, after)
			}
			if after := ir.policies(t); !reflect.DeepEqual(policies, after) {
				t.Errorf("IAM policies changed:\nbefore %v\nafter  %v", policies, after)
			}
		})
	}
}
