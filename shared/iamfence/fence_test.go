//go:build unix

package iamfence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/clock"
)

// operatorDoc is an unrelated inline policy an operator keeps on a role.
const operatorDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kafka-cluster:Connect"],"Resource":["*"]}]}`

// faultyAPI is the real client with faults injected per role.
type faultyAPI struct {
	API
	putFails      map[string]bool // PutRolePolicy fails without putting
	putLost       map[string]bool // PutRolePolicy puts, then reports a failure
	deleteFails   map[string]bool // DeleteRolePolicy fails without deleting
	neverReadBack map[string]bool // GetRolePolicy always answers NoSuchEntity
}

var errInjected = errors.New("injected fault")

func (f *faultyAPI) PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, o ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error) {
	r := aws.ToString(in.RoleName)
	if f.putFails[r] {
		return nil, errInjected
	}
	out, err := f.API.PutRolePolicy(ctx, in, o...)
	if err == nil && f.putLost[r] {
		return nil, errInjected
	}
	return out, err
}

func (f *faultyAPI) DeleteRolePolicy(ctx context.Context, in *iam.DeleteRolePolicyInput, o ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error) {
	if f.deleteFails[aws.ToString(in.RoleName)] {
		return nil, errInjected
	}
	return f.API.DeleteRolePolicy(ctx, in, o...)
}

func (f *faultyAPI) GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, o ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error) {
	if f.neverReadBack[aws.ToString(in.RoleName)] {
		return nil, &types.NoSuchEntityException{Message: aws.String("injected: not visible yet")}
	}
	return f.API.GetRolePolicy(ctx, in, o...)
}

func policies(doc string, roles ...string) []Policy {
	var ps []Policy
	for _, r := range roles {
		ps = append(ps, Policy{Role: r, PolicyName: PolicyName, Document: doc})
	}
	return ps
}

func wantPolicies(t *testing.T, what string, got, want []Policy) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

// TestMotoIAM runs the fence against moto's IAM with the real SDK client.
func TestMotoIAM(t *testing.T) {
	url := startMoto(t)
	c := iamClient(url)
	ctx := context.Background()
	doc := fenceDoc(t)
	fence := map[string]string{PolicyName: doc}
	none := map[string]string{}
	// IAM's read-back waits run on a fake clock: a policy that never
	// reads back costs no wall-clock time, and the bound is exact.
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

	// setup resets moto and creates producer roles a, b (under a path) and c.
	setup := func(t *testing.T) (roles []string) {
		resetMoto(t, url)
		createRole(t, c, "producer-a", "")
		bARN := createRole(t, c, "producer-b", "/team/kafka/")
		createRole(t, c, "producer-c", "")
		return []string{"producer-a", bARN, "producer-c"}
	}

	t.Run("apply puts the exact document, a second apply finds it", func(t *testing.T) {
		roles := setup(t)
		created, existing, err := Apply(ctx, c, clk, roles, doc)
		if err != nil {
			t.Fatal(err)
		}
		all := policies(doc, "producer-a", "producer-b", "producer-c")
		wantPolicies(t, "created", created, all)
		wantPolicies(t, "existing", existing, nil)
		for _, r := range []string{"producer-a", "producer-b", "producer-c"} {
			out, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(r), PolicyName: aws.String(PolicyName)})
			if err != nil {
				t.Fatalf("GetRolePolicy on %s: %v", r, err)
			}
			if got := decodeDocument(aws.ToString(out.PolicyDocument)); got != doc {
				t.Errorf("role %s: document\n%s\nwant exactly\n%s", r, got, doc)
			}
			wantInline(t, c, r, fence)
		}

		created, existing, err = Apply(ctx, c, clk, roles, doc)
		if err != nil {
			t.Fatal(err)
		}
		wantPolicies(t, "second apply: created", created, nil)
		wantPolicies(t, "second apply: existing", existing, all)
	})

	t.Run("an equal document in other formatting counts as existing", func(t *testing.T) {
		roles := setup(t)
		var indented bytes.Buffer
		if err := json.Indent(&indented, []byte(doc), "", "  "); err != nil {
			t.Fatal(err)
		}
		putInline(t, c, "producer-a", PolicyName, indented.String())
		created, existing, err := Apply(ctx, c, clk, roles, doc)
		if err != nil {
			t.Fatal(err)
		}
		wantPolicies(t, "created", created, policies(doc, "producer-b", "producer-c"))
		wantPolicies(t, "existing", existing, policies(doc, "producer-a"))
	})

	t.Run("a conflicting policy of the same name fails and changes nothing", func(t *testing.T) {
		roles := setup(t)
		putInline(t, c, "producer-b", PolicyName, operatorDoc)
		created, existing, err := Apply(ctx, c, clk, roles, doc)
		var ce *ConflictError
		if !errors.As(err, &ce) || ce.Role != "producer-b" || ce.PolicyName != PolicyName || !sameDocument(ce.Found, operatorDoc) {
			t.Fatalf("err = %v, want *ConflictError for producer-b with the operator's document", err)
		}
		var ae *ApplyError
		if !errors.As(err, &ae) || len(ae.Put) != 0 || len(ae.Remaining) != 0 {
			t.Fatalf("err = %#v, want an *ApplyError with nothing put", err)
		}
		if created != nil || existing != nil {
			t.Errorf("created %v, existing %v on failure", created, existing)
		}
		wantInline(t, c, "producer-a", none)
		wantInline(t, c, "producer-b", map[string]string{PolicyName: operatorDoc})
		wantInline(t, c, "producer-c", none)

		if _, _, err := Plan(ctx, c, roles, doc); !errors.As(err, &ce) {
			t.Errorf("Plan: err = %v, want *ConflictError", err)
		}
	})

	t.Run("a missing role fails and leaves nothing", func(t *testing.T) {
		setup(t)
		roles := []string{"producer-a", "arn:aws:iam::123456789012:role/ghost", "producer-c"}
		_, _, err := Apply(ctx, c, clk, roles, doc)
		var nf *RoleNotFoundError
		if !errors.As(err, &nf) || nf.Role != "ghost" {
			t.Fatalf("err = %v, want *RoleNotFoundError for ghost", err)
		}
		var nse *types.NoSuchEntityException
		if !errors.As(err, &nse) {
			t.Errorf("err = %v does not wrap IAM's NoSuchEntity", err)
		}
		if !strings.Contains(err.Error(), "ghost") {
			t.Errorf("message %q does not name the role", err)
		}
		for _, r := range []string{"producer-a", "producer-b", "producer-c"} {
			wantInline(t, c, r, none)
		}
		if _, _, err := Plan(ctx, c, roles, doc); !errors.As(err, &nf) {
			t.Errorf("Plan: err = %v, want *RoleNotFoundError", err)
		}
	})

	t.Run("a failed put removes what this call put", func(t *testing.T) {
		roles := setup(t)
		// producer-a already has the fence: it must survive the rollback.
		putInline(t, c, "producer-a", PolicyName, doc)
		putInline(t, c, "producer-a", "operator", operatorDoc)
		api := &faultyAPI{API: c, putLost: map[string]bool{"producer-b": true}, putFails: map[string]bool{"producer-c": true}}
		_, _, err := Apply(ctx, api, clk, roles, doc)
		var ae *ApplyError
		if !errors.As(err, &ae) || !errors.Is(err, errInjected) {
			t.Fatalf("err = %v, want an *ApplyError wrapping the injected fault", err)
		}
		// b's put was made but reported failed, so it is rolled back too.
		wantPolicies(t, "ApplyError.Put", ae.Put, policies(doc, "producer-b"))
		if len(ae.Remaining) != 0 {
			t.Errorf("Remaining = %q", ae.Remaining)
		}
		if !strings.Contains(err.Error(), "removed again") {
			t.Errorf("message %q does not say the rollback was complete", err)
		}
		wantInline(t, c, "producer-a", map[string]string{PolicyName: doc, "operator": operatorDoc})
		wantInline(t, c, "producer-b", none)
		wantInline(t, c, "producer-c", none)
	})

	t.Run("a put IAM refuses fails and leaves nothing", func(t *testing.T) {
		roles := setup(t)
		bad := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Resource":["*"]}]}` // no Action
		_, _, err := Apply(ctx, c, clk, roles, bad)
		var mp *types.MalformedPolicyDocumentException
		var ae *ApplyError
		if !errors.As(err, &mp) || !errors.As(err, &ae) || len(ae.Remaining) != 0 {
			t.Fatalf("err = %v, want an *ApplyError wrapping IAM's MalformedPolicyDocument, rolled back", err)
		}
		for _, r := range []string{"producer-a", "producer-b", "producer-c"} {
			wantInline(t, c, r, none)
		}
	})

	t.Run("a policy that does not read back fails after the bound and is removed", func(t *testing.T) {
		roles := setup(t)
		api := &faultyAPI{API: c, neverReadBack: map[string]bool{"producer-c": true}}
		clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		_, _, err := Apply(ctx, api, clk, roles, doc)
		var nv *NotVerifiedError
		if !errors.As(err, &nv) || len(nv.Problems) != 1 || !strings.Contains(nv.Problems[0], "producer-c: absent") {
			t.Fatalf("err = %v, want *NotVerifiedError for producer-c only", err)
		}
		// Waits of 0.1, 0.2, 0.4, 0.8, 1.6 s, then 2 s while the next
		// one ends within the 10 s bound: 9.1 s, after which another
		// 2 s would pass it.
		if want := 9100 * time.Millisecond; nv.Waited != want {
			t.Errorf("gave up after %v on the clock, want %v (the read-back schedule within %v)", nv.Waited, want, verifyTimeout)
		}
		var ae *ApplyError
		if !errors.As(err, &ae) || len(ae.Remaining) != 0 {
			t.Fatalf("err = %v, want a complete rollback", err)
		}
		for _, r := range []string{"producer-a", "producer-b", "producer-c"} {
			wantInline(t, c, r, none)
		}
	})

	t.Run("an incomplete rollback says what is left, and Remove can finish it", func(t *testing.T) {
		roles := setup(t)
		api := &faultyAPI{API: c, deleteFails: map[string]bool{"producer-a": true}, putFails: map[string]bool{"producer-c": true}}
		_, _, err := Apply(ctx, api, clk, roles, doc)
		var ae *ApplyError
		if !errors.As(err, &ae) {
			t.Fatalf("err = %v, want *ApplyError", err)
		}
		if len(ae.Remaining) != 1 || !strings.Contains(ae.Remaining[0], "role producer-a") || !strings.Contains(err.Error(), "NOT removed") {
			t.Fatalf("Remaining = %q, message %q; want producer-a reported", ae.Remaining, err)
		}
		wantInline(t, c, "producer-a", fence)
		wantInline(t, c, "producer-b", none)
		if rem := Remove(ctx, c, clk, ae.Put); len(rem) != 0 {
			t.Fatalf("Remove after the fault: %q", rem)
		}
		wantInline(t, c, "producer-a", none)
	})

	t.Run("remove deletes exactly the fence, and again is fine", func(t *testing.T) {
		roles := setup(t)
		putInline(t, c, "producer-a", "operator", operatorDoc)
		created, _, err := Apply(ctx, c, clk, roles, doc)
		if err != nil {
			t.Fatal(err)
		}
		if rem := Remove(ctx, c, clk, created); len(rem) != 0 {
			t.Fatalf("Remove: %q", rem)
		}
		wantInline(t, c, "producer-a", map[string]string{"operator": operatorDoc})
		wantInline(t, c, "producer-b", none)
		wantInline(t, c, "producer-c", none)
		if rem := Remove(ctx, c, clk, created); len(rem) != 0 {
			t.Fatalf("Remove of removed policies: %q", rem)
		}
		wantInline(t, c, "producer-a", map[string]string{"operator": operatorDoc})
	})

	t.Run("remove leaves a policy whose document changed", func(t *testing.T) {
		roles := setup(t)
		created, _, err := Apply(ctx, c, clk, roles, doc)
		if err != nil {
			t.Fatal(err)
		}
		putInline(t, c, "producer-b", PolicyName, operatorDoc)
		rem := Remove(ctx, c, clk, created)
		if len(rem) != 1 || !strings.Contains(rem[0], "role producer-b") || !strings.Contains(rem[0], "left in place") {
			t.Fatalf("Remove = %q, want producer-b left in place", rem)
		}
		wantInline(t, c, "producer-a", none)
		wantInline(t, c, "producer-b", map[string]string{PolicyName: operatorDoc})
		wantInline(t, c, "producer-c", none)
	})

	t.Run("remove reports a delete that fails", func(t *testing.T) {
		roles := setup(t)
		created, _, err := Apply(ctx, c, clk, roles, doc)
		if err != nil {
			t.Fatal(err)
		}
		api := &faultyAPI{API: c, deleteFails: map[string]bool{"producer-c": true}}
		rem := Remove(ctx, api, clk, created)
		if len(rem) != 1 || !strings.Contains(rem[0], "inline policy "+PolicyName+" on role producer-c") || !strings.Contains(rem[0], errInjected.Error()) {
			t.Fatalf("Remove = %q, want producer-c's delete reported", rem)
		}
		wantInline(t, c, "producer-a", none)
		wantInline(t, c, "producer-c", fence)
	})

	t.Run("plan reads only", func(t *testing.T) {
		roles := setup(t)
		putInline(t, c, "producer-b", PolicyName, doc)
		toCreate, existing, err := Plan(ctx, c, roles, doc)
		if err != nil {
			t.Fatal(err)
		}
		wantPolicies(t, "toCreate", toCreate, policies(doc, "producer-a", "producer-c"))
		wantPolicies(t, "existing", existing, policies(doc, "producer-b"))
		wantInline(t, c, "producer-a", none)
		wantInline(t, c, "producer-b", fence)
		wantInline(t, c, "producer-c", none)
	})
}
