package cutover

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
)

// The tests in this file run the Preflight step, as the preflight state
// machine calls it, on the two kfake clusters of newProc and the fake
// Lambda API.

// preflightOn runs Preflight with p's clients (src, when set, in place of
// the source's) and returns its report, indexed by check name too.
func (p *proc) preflightOn(src *kgo.Client, srcBootstrap []string) (*PreflightReport, map[string]Check) {
	p.t.Helper()
	return p.preflightWith(Deps{Source: src, Preflight: PreflightDeps{SourceBootstrap: srcBootstrap}}, procInput(""))
}

// preflightWith runs Preflight on input with d, whose Lambda API, brokers
// and check timeout default to p's.
func (p *proc) preflightWith(d Deps, input string) (*PreflightReport, map[string]Check) {
	p.t.Helper()
	if d.Lambda == nil {
		d.Lambda = &hookLambda{fakeLambda: p.f}
	}
	if d.Preflight.SourceBootstrap == nil {
		d.Preflight.SourceBootstrap = p.srcC.ListenAddrs()
	}
	d.Preflight.TargetBootstrap = p.tgtC.ListenAddrs()
	d.Preflight.CheckTimeout = 5 * time.Second
	p.h = p.handlerWith(d)
	out, err := p.h.Handle(p.ctx, Request{Step: StepPreflight, Input: []byte(input)})
	if err != nil {
		p.t.Fatalf("Preflight: %v", err)
	}
	r := out.(*PreflightReport)
	byName := map[string]Check{}
	for _, c := range r.Checks {
		byName[c.Name] = c
	}
	return r, byName
}

func wantCheck(t *testing.T, checks map[string]Check, name, status string, in ...string) {
	t.Helper()
	c, ok := checks[name]
	if !ok {
		t.Errorf("no check %q", name)
		return
	}
	if c.Status != status {
		t.Errorf("check %q is %s (%s; fix %q), want %s", name, c.Status, c.Detail, c.Fix, status)
	}
	for _, s := range in {
		if !strings.Contains(c.Detail+" | "+c.Fix, s) {
			t.Errorf("check %q (%s | fix %s) lacks %q", name, c.Detail, c.Fix, s)
		}
	}
}

// TestPreflightPassesOnKfake: on two reachable clusters whose topics,
// mappings and groups are all in order, every check passes or is skipped
// (those that cannot be tried without a change), the report has no
// failure, and nothing changed on either cluster or mapping.
func TestPreflightPassesOnKfake(t *testing.T) {
	p := newProc(t)
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	before := p.view()
	r, checks := p.preflightOn(nil, nil)
	if !r.Passed || len(r.Failed) != 0 || r.Cause != "" {
		t.Fatalf("preflight failed: %v\n%s", r.Failed, r.Cause)
	}
	for _, name := range []string{"input", "source cluster reachable", "target cluster reachable", "lambda api: list mappings", "input: topics and groups",
		"source: list offsets", "source: describe configs", "source: describe groups", "target: list offsets", "target: describe configs",
		"target: describe groups", "source: describe ACLs", "fence acl: plan", "mapping m1 (orders)", "mapping group m1 on source",
		"mapping m2 (payments)", "mapping group m2 on source", "group billing on source"} {
		wantCheck(t, checks, name, CheckPass)
	}
	wantCheck(t, checks, "fence acl: plan", CheckPass, "4 ACL(s) to add, 0 already there")
	wantCheck(t, checks, "input: topics and groups", CheckPass, "2 topic(s) and 1 group(s) chosen; 2 mapping(s)")
	p.wantUnchanged("the preflight", before)
}

// TestPreflightUnreachableSource: a source where nothing listens fails its
// reachability check with the address tried and a fix naming the
// parameter to correct; the checks that need the source are skipped, the
// target's still run, and the report's cause carries the fix.
func TestPreflightUnreachableSource(t *testing.T) {
	p := newProc(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(dead), kgo.RetryTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r, checks := p.preflightOn(cl, []string{dead})
	if r.Passed || !slices.Equal(r.Failed, []string{"source cluster reachable"}) {
		t.Fatalf("failed checks %v, want only the source's reachability", r.Failed)
	}
	wantCheck(t, checks, "source cluster reachable", CheckFail, "tried "+dead+": connection refused", "nothing listens there: check SourceBootstrapServers")
	wantCheck(t, checks, "source: list offsets, describe configs, describe groups", CheckSkip, "not reachable")
	wantCheck(t, checks, "groups", CheckSkip, "not reachable")
	wantCheck(t, checks, "target cluster reachable", CheckPass)
	wantCheck(t, checks, "target: list offsets", CheckPass)
	if !strings.Contains(r.Cause, "[source cluster reachable]") || !strings.Contains(r.Cause, "Fix: ") {
		t.Errorf("cause %q does not name the failed check and its fix", r.Cause)
	}
}

// refuse makes c answer every request of key as a broker whose authorizer
// refuses the cutover's principal does: DescribeGroups and DescribeConfigs
// with code on each group or resource, DescribeCluster with DESCRIBE as
// the principal's only cluster operation.
func refuse(c *kfake.Cluster, key kmsg.Key, code int16) {
	c.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		switch r := req.(type) {
		case *kmsg.DescribeGroupsRequest:
			resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
			for _, g := range r.Groups {
				dg := kmsg.NewDescribeGroupsResponseGroup()
				dg.Group, dg.ErrorCode = g, code
				resp.Groups = append(resp.Groups, dg)
			}
			return resp, nil, true
		case *kmsg.DescribeConfigsRequest:
			resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
			for _, rr := range r.Resources {
				dr := kmsg.NewDescribeConfigsResponseResource()
				dr.ResourceType, dr.ResourceName, dr.ErrorCode = rr.ResourceType, rr.ResourceName, code
				resp.Resources = append(resp.Resources, dr)
			}
			return resp, nil, true
		case *kmsg.DescribeClusterRequest:
			// Served, with the principal's cluster operations: DESCRIBE
			// only.
			resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
			resp.ClusterID = "kfake"
			resp.ClusterAuthorizedOperations = int32(1 << kmsg.ACLOperationDescribe)
			return resp, nil, true
		}
		return nil, nil, false
	})
}

// TestPreflightAuthorizationRefused: where the source's authorizer
// refuses the cutover's principal, the check fails with the refusal and a
// fix naming the grant: DESCRIBE on the groups, DESCRIBE and READ on the
// topics, ALTER on the cluster for the acl fence.
func TestPreflightAuthorizationRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		key   kmsg.Key
		code  int16
		check string
		want  []string
	}{
		{name: "groups", key: kmsg.DescribeGroups, code: kerr.GroupAuthorizationFailed.Code, check: "source: describe groups",
			want: []string{"GROUP_AUTHORIZATION_FAILED", "grant the cutover's principal DESCRIBE (and on the target READ) on group(s) billing on the source"}},
		{name: "topics", key: kmsg.DescribeConfigs, code: kerr.TopicAuthorizationFailed.Code, check: "source: describe configs",
			want: []string{"TOPIC_AUTHORIZATION_FAILED", "grant the cutover's principal DESCRIBE and READ on topic(s) orders, payments on the source"}},
		{name: "cluster", key: kmsg.DescribeCluster, check: "source: create ACLs (fence acl)",
			want: []string{"may perform DESCRIBE on the cluster; CreateAcls needs ALTER", "grant the cutover's principal ALTER on the source cluster resource"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProc(t)
			p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
			refuse(p.srcC, tc.key, tc.code)
			r, checks := p.preflightOn(nil, nil)
			if r.Passed || !slices.Equal(r.Failed, []string{tc.check}) {
				t.Fatalf("failed checks %v, want only %q", r.Failed, tc.check)
			}
			wantCheck(t, checks, tc.check, CheckFail, tc.want...)
			wantCheck(t, checks, "source cluster reachable", CheckPass)
		})
	}
}

// fakeSecrets answers GetSecretValue with values, or err for the ARNs in
// refused.
type fakeSecrets struct {
	values  map[string]string
	refused map[string]error
}

func (s *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	id := aws.ToString(in.SecretId)
	if err := s.refused[id]; err != nil {
		return nil, err
	}
	return &secretsmanager.GetSecretValueOutput{ARN: in.SecretId, SecretString: aws.String(s.values[id])}, nil
}

// fakeTopicAttributes answers GetTopicAttributes with err, or an empty
// success.
type fakeTopicAttributes struct{ err error }

func (s *fakeTopicAttributes) GetTopicAttributes(context.Context, *sns.GetTopicAttributesInput, ...func(*sns.Options)) (*sns.GetTopicAttributesOutput, error) {
	if s.err != nil {
		return nil, s.err
	}
	return &sns.GetTopicAttributesOutput{Attributes: map[string]string{}}, nil
}

// TestPreflightAWSAPIs: the secrets are read and their contents appear
// nowhere in the report; a secret the role may not read fails with the
// grant to add; so does an approval topic the role may not describe; STS
// names the role the cutover runs as.
func TestPreflightAWSAPIs(t *testing.T) {
	const (
		srcSecret  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kmig/source-AbCdEf"
		tgtSecret  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kmig/target-GhIjKl"
		secretText = `{"username":"cutover","password":"pa55-w0rd-do-not-log"}`
	)
	p := newProc(t)
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform secretsmanager:GetSecretValue"}
	r, checks := p.preflightWith(Deps{SNS: &fakeSNS{}, ApprovalTopicArn: approvalTopic, Preflight: PreflightDeps{
		STS:        &stubSTS{},
		Secrets:    &fakeSecrets{values: map[string]string{srcSecret: secretText}, refused: map[string]error{tgtSecret: denied}},
		SecretArns: map[string]string{"SOURCE_SECRET_ARN": srcSecret, "TARGET_SECRET_ARN": tgtSecret},
		SNS:        &fakeTopicAttributes{err: &smithy.GenericAPIError{Code: "AuthorizationError", Message: "not authorized to perform SNS:GetTopicAttributes"}},
	}}, procInput(approvalHooks))
	wantCheck(t, checks, "secrets manager: SOURCE_SECRET_ARN", CheckPass, "read "+srcSecret+" (contents not shown)")
	wantCheck(t, checks, "secrets manager: TARGET_SECRET_ARN", CheckFail, "AccessDeniedException", "grant the cutover role secretsmanager:GetSecretValue on "+tgtSecret)
	wantCheck(t, checks, "approval topic", CheckFail, "AuthorizationError", "grant the cutover role sns:GetTopicAttributes and sns:Publish on "+approvalTopic)
	wantCheck(t, checks, "sts", CheckPass, "the cutover runs as arn:aws:sts::123456789012:assumed-role/cutover/fn")
	if !slices.Equal(r.Failed, []string{"secrets manager: TARGET_SECRET_ARN", "approval topic"}) {
		t.Errorf("failed checks %v, want the target secret and the approval topic", r.Failed)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"pa55-w0rd-do-not-log", hookSecret} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the preflight report holds %q: %s", secret, b)
		}
	}
}

// TestPreflightIAMRoles: for the iam fence, each producer role is looked
// up: an existing one passes, a missing one fails with the fix to correct
// producerRoles, and the fence plan, which needs every role, fails naming
// the input field.
func TestPreflightIAMRoles(t *testing.T) {
	p := newProc(t)
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	f := newFakeIAM(roleA, roleC)
	r, checks := p.preflightWith(Deps{SourceAuth: kafkaconn.AuthIAM, IAM: f, SourceClusterArn: iamCluster,
		ProducerRoleArns: []string{roleARN(roleA), roleARN(roleB), roleARN(roleC)}}, iamInput(""))
	wantCheck(t, checks, "fence iam: role "+roleA, CheckPass)
	wantCheck(t, checks, "fence iam: role "+roleB, CheckFail, "the role does not exist", "correct producerRoles in the input")
	wantCheck(t, checks, "fence iam: plan", CheckFail, "correct the input field producerRoles")
	if !slices.Equal(r.Failed, []string{"fence iam: role " + roleB, "fence iam: plan"}) {
		t.Errorf("failed checks %v", r.Failed)
	}
	if c := f.changed(); len(c) != 0 {
		t.Errorf("the preflight changed IAM: %v", c)
	}
}

// TestPreflightNoAuthorizer: a source without an authorizer refuses ACL
// administration (SECURITY_DISABLED): the acl fence's plan fails with the
// reason and the fix to use fence none, and Validate refuses the run with
// *FenceUnavailableError naming none.
func TestPreflightNoAuthorizer(t *testing.T) {
	p := newProc(t)
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	p.srcC.ControlKey(int16(kmsg.DescribeACLs), func(req kmsg.Request) (kmsg.Response, error, bool) {
		p.srcC.KeepControl()
		resp := req.(*kmsg.DescribeACLsRequest).ResponseKind().(*kmsg.DescribeACLsResponse)
		resp.ErrorCode = kerr.SecurityDisabled.Code
		return resp, nil, true
	})
	_, checks := p.preflightOn(nil, nil)
	wantCheck(t, checks, "fence acl: plan", CheckFail, "the source has no authorizer (SECURITY_DISABLED)", `set "fence": "none" in the input`)
	_, err := p.h.Handle(p.ctx, Request{Step: StepValidate, Input: []byte(procInput(""))})
	var fu *FenceUnavailableError
	if !errors.As(err, &fu) || fu.Kind != FenceKindACL || fu.Use != FenceKindNone {
		t.Errorf("Validate: %v, want *FenceUnavailableError for acl naming none", err)
	}
}
