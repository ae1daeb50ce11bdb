package cutoverrun

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/blackhole"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/iamlocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/rundetails"
)

// The preflight runs the Preflight step of the real cutover handler
// against the embedded clusters, the ESM emulator behind the local Lambda
// endpoint, and moto (local/iamlocal) standing in for IAM, STS, Secrets
// Manager and SNS, through the real aws-sdk-go-v2 clients.

// awsRig is moto with the secrets and approval topic a stack would have.
type awsRig struct {
	srv       *iamlocal.Server
	cfg       aws.Config
	secretArn string
	topicArn  string
}

func newAWSRig(t *testing.T) *awsRig {
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
	a := &awsRig{srv: srv, cfg: aws.Config{Region: iamlocal.Region, Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}}
	sec, err := secretsmanager.NewFromConfig(a.cfg, a.endpoint).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("kmig/source"), SecretString: aws.String(`{"username":"cutover","password":"do-not-print-me"}`)})
	if err != nil {
		t.Fatal(err)
	}
	a.secretArn = aws.ToString(sec.ARN)
	top, err := sns.NewFromConfig(a.cfg, func(o *sns.Options) { o.BaseEndpoint = aws.String(srv.URL) }).CreateTopic(ctx,
		&sns.CreateTopicInput{Name: aws.String("kmig-cutover-approvals")})
	if err != nil {
		t.Fatal(err)
	}
	a.topicArn = aws.ToString(top.TopicArn)
	return a
}

func (a *awsRig) endpoint(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(a.srv.URL) }

// deps are the preflight's AWS clients against moto; the secrets client
// goes to secretsURL when set (an endpoint that never answers).
func (a *awsRig) deps(secretsURL string) cutover.PreflightDeps {
	if secretsURL == "" {
		secretsURL = a.srv.URL
	}
	return cutover.PreflightDeps{
		STS:        sts.NewFromConfig(a.cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(a.srv.URL) }),
		Secrets:    secretsmanager.NewFromConfig(a.cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(secretsURL) }),
		SecretArns: map[string]string{"SOURCE_SECRET_ARN": a.secretArn},
		SNS:        sns.NewFromConfig(a.cfg, func(o *sns.Options) { o.BaseEndpoint = aws.String(a.srv.URL) }),
		Region:     iamlocal.Region,
	}
}

// blackhole accepts connections and never answers, as an address behind a
// security group that drops packets looks to a client: only a deadline
// ends the wait. It returns its host:port.
// budget gives a preflight 20 s, so that its time budget (its deadline
// less 5 s) is 15 s: several times what its checks need when the
// unreachable peer costs CheckTimeout (2 s), and spent if it costs more
// than the budget: the Kafka client alone gives up on a silent broker
// only after about 20 s.
func budget(ctx context.Context, t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// allRan fails if the report has a check left out for want of time: an
// unreachable peer bounded by the step's budget rather than by
// CheckTimeout spends the budget, and the checks after it are not run.
func allRan(t *testing.T, rep *cutover.PreflightReport) {
	t.Helper()
	if rep.Omitted > 0 {
		t.Errorf("%d checks omitted", rep.Omitted)
	}
	for _, c := range rep.Checks {
		if strings.HasPrefix(c.Detail, "not run:") {
			t.Errorf("check %q %s: %s: the unreachable peer was not bounded by the per-check timeout", c.Name, c.Status, c.Detail)
		}
	}
}

// commitAppGroup gives the rig's application group committed offsets on
// the source, as a consumer that read the topic would have.
func (r *rig) commitAppGroup(ctx context.Context) {
	r.t.Helper()
	ends, err := r.srcAdm.ListEndOffsets(ctx, r.topic)
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := r.srcAdm.CommitOffsets(ctx, r.group, ends.Offsets())
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		r.t.Fatal(err)
	}
}

// setMapping enables or disables the rig's mapping and waits until it
// reads so.
func (r *rig) setMapping(ctx context.Context, enabled bool) {
	r.t.Helper()
	want := esm.StateDisabled
	if enabled {
		want = esm.StateEnabled
	}
	if err := r.mapping.SetEnabled(enabled); err != nil {
		r.t.Fatal(err)
	}
	if err := r.mapping.WaitState(ctx, want); err != nil {
		r.t.Fatalf("mapping did not read %s: %v", want, err)
	}
}

// preflight runs the Preflight step once, directly on the handler, and
// returns its report.
func (r *rig) preflight(ctx context.Context, input map[string]any, o Options) *cutover.PreflightReport {
	r.t.Helper()
	o.Source, o.Target, o.Mappings = r.pair.Source, r.pair.Target, r.reg
	if o.Preflight.CheckTimeout == 0 {
		o.Preflight.CheckTimeout = 5 * time.Second
	}
	fn, err := startFunction(o, r.log, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	defer fn.close()
	raw, _ := json.Marshal(input)
	start := time.Now()
	out, err := fn.h.Handle(ctx, cutover.Request{Step: cutover.StepPreflight, Input: raw})
	took := time.Since(start)
	if err != nil {
		r.t.Fatalf("Preflight returned an error instead of a report: %v", err)
	}
	rep := out.(*cutover.PreflightReport)
	b, _ := json.Marshal(rep)
	if len(b) > 64<<10 {
		r.t.Errorf("report is %d bytes", len(b))
	}
	r.t.Logf("report: %d checks, %d bytes, preflight took %v", len(rep.Checks), len(b), took.Round(time.Millisecond))
	if strings.Contains(string(b), "do-not-print-me") {
		r.t.Error("the report shows a secret's contents")
	}
	for _, c := range rep.Checks {
		r.t.Logf("%-4s %s: %s%s", c.Status, c.Name, c.Detail, map[bool]string{true: " FIX: " + c.Fix, false: ""}[c.Fix != ""])
	}
	return rep
}

func check(rep *cutover.PreflightReport, name string) (cutover.Check, bool) {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return cutover.Check{}, false
}

// wantCheck asserts check name has status and its fix (for a failure) or
// detail contains each of want.
func wantCheck(t *testing.T, rep *cutover.PreflightReport, name, status string, want ...string) {
	t.Helper()
	c, ok := check(rep, name)
	if !ok {
		t.Errorf("no check %q in the report", name)
		return
	}
	if c.Status != status {
		t.Errorf("check %q is %s, want %s (%s)", name, c.Status, status, c.Detail)
	}
	for _, w := range want {
		if !strings.Contains(c.Fix+" "+c.Detail, w) {
			t.Errorf("check %q does not say %q: detail %q, fix %q", name, w, c.Detail, c.Fix)
		}
	}
	if status == cutover.CheckFail && c.Fix == "" {
		t.Errorf("failed check %q has no fix", name)
	}
}

// TestPreflight: on a healthy rig every check passes or is skipped with its
// reason; each broken deployment fails the check that names it, with a fix,
// within the per-check deadline; and no run changes ACLs, offsets or
// mapping states.
func TestPreflight(t *testing.T) {
	r := newRig(t, kafkalocal.SecuritySCRAMACL, 2)
	ar := newAWSRig(t)
	ctx := ctxFor(t, 3*time.Minute)
	r.produce(ctx, 0, 40, 2)
	r.waitReplicated(ctx)
	r.commitAppGroup(ctx)
	approval := func() map[string]any {
		in := r.baseInput()
		in["hooks"] = map[string]any{"stopProducers": map[string]any{"type": "approval"}}
		return in
	}
	healthy := Options{Preflight: ar.deps(""), ApprovalTopicArn: ar.topicArn}
	before := r.snapshot(ctx)

	t.Run("healthy", func(t *testing.T) {
		rep := r.preflight(ctx, approval(), healthy)
		if !rep.Passed || len(rep.Failed) > 0 || rep.Cause != "" {
			t.Fatalf("healthy rig failed: %v: %s", rep.Failed, rep.Cause)
		}
		for _, name := range []string{"input", "source cluster reachable", "target cluster reachable", "secrets manager: SOURCE_SECRET_ARN", "sts",
			"lambda api: list mappings", "source: list offsets", "source: describe configs", "source: describe groups",
			"target: list offsets", "target: describe configs", "target: describe groups", "source: describe ACLs",
			"source: create ACLs (fence acl)", "fence acl: plan", "target: details topic " + rundetails.DefaultTopic, "mapping " + r.mapping.UUID() + " (" + r.topic + ")",
			"mapping group kmig-replicator-" + r.topic + " on source", "group " + r.group + " on source", "approval topic"} {
			wantCheck(t, rep, name, cutover.CheckPass)
		}
		wantCheck(t, rep, "source cluster reachable", cutover.CheckPass, r.pair.Source.Bootstrap()[0])
		for _, c := range rep.Checks {
			if c.Status == cutover.CheckSkip && c.Detail == "" {
				t.Errorf("check %q skipped without a reason", c.Name)
			}
		}
	})

	t.Run("unreachable target", func(t *testing.T) {
		addr := blackhole.Addr(t)
		o := healthy
		o.TargetSeeds = []string{addr}
		o.Preflight.CheckTimeout = 2 * time.Second
		rep := r.preflight(budget(ctx, t), r.baseInput(), o)
		if rep.Passed {
			t.Fatal("passed with an unreachable target")
		}
		wantCheck(t, rep, "target cluster reachable", cutover.CheckFail, addr, "SecurityGroupIds", "SubnetIds")
		wantCheck(t, rep, "source cluster reachable", cutover.CheckPass)
		if c, _ := check(rep, "target: list offsets, describe configs, describe groups"); c.Status != cutover.CheckSkip {
			t.Errorf("target checks not skipped after the target failed: %+v", c)
		}
		allRan(t, rep)
		if !strings.Contains(rep.Cause, "target cluster reachable") || !strings.Contains(rep.Cause, addr) {
			t.Errorf("cause %q does not list the failed check", rep.Cause)
		}
	})

	t.Run("unreachable secrets manager", func(t *testing.T) {
		o := healthy
		o.Preflight = ar.deps("http://" + blackhole.Addr(t))
		o.Preflight.CheckTimeout = 2 * time.Second
		rep := r.preflight(budget(ctx, t), r.baseInput(), o)
		wantCheck(t, rep, "secrets manager: SOURCE_SECRET_ARN", cutover.CheckFail, "com.amazonaws.us-east-1.secretsmanager", "NAT gateway")
		allRan(t, rep)
		wantCheck(t, rep, "sts", cutover.CheckPass)
	})

	t.Run("mapping disabled", func(t *testing.T) {
		r.setMapping(ctx, false)
		defer r.setMapping(ctx, true)
		rep := r.preflight(ctx, r.baseInput(), healthy)
		wantCheck(t, rep, "mapping "+r.mapping.UUID()+" ("+r.topic+")", cutover.CheckFail, "Disabled", "update-event-source-mapping --uuid "+r.mapping.UUID()+" --enabled")
	})

	t.Run("missing group", func(t *testing.T) {
		in := r.baseInput()
		in["groups"] = []string{r.group, "bilings"}
		rep := r.preflight(ctx, in, healthy)
		wantCheck(t, rep, "group bilings on source", cutover.CheckFail, "correct the group name")
		wantCheck(t, rep, "group "+r.group+" on source", cutover.CheckPass)
	})

	t.Run("ACL describe denied on the SCRAM source", func(t *testing.T) {
		o := healthy
		app := r.pair.Source.AppCredentials()
		o.SourceAs = &app
		rep := r.preflight(ctx, r.baseInput(), o)
		wantCheck(t, rep, "source: describe ACLs", cutover.CheckFail, "CLUSTER_AUTHORIZATION_FAILED", "DESCRIBE on the source cluster")
		if c, _ := check(rep, "source: create ACLs (fence acl)"); c.Status == cutover.CheckPass {
			t.Errorf("the application user may create ACLs? %+v", c)
		}
	})

	t.Run("wrong source password", func(t *testing.T) {
		o := healthy
		o.SourceAs = &kafkalocal.Credentials{User: r.pair.Source.AdminCredentials().User, Password: "not-the-password"}
		rep := r.preflight(ctx, r.baseInput(), o)
		wantCheck(t, rep, "source cluster reachable", cutover.CheckFail, "SOURCE_SECRET_ARN", "SOURCE_AUTH")
		if c, _ := check(rep, "source: list offsets, describe configs, describe groups"); c.Status != cutover.CheckSkip {
			t.Errorf("source checks not skipped after the source failed: %+v", c)
		}
	})

	t.Run("details topic with 3 partitions", func(t *testing.T) {
		if _, err := r.tgtAdm.CreateTopic(ctx, 3, -1, nil, rundetails.DefaultTopic); err != nil {
			t.Fatal(err)
		}
		defer func() { _, _ = r.tgtAdm.DeleteTopics(ctx, rundetails.DefaultTopic) }()
		rep := r.preflight(ctx, r.baseInput(), healthy)
		wantCheck(t, rep, "target: details topic "+rundetails.DefaultTopic, cutover.CheckFail, "3 partitions", "CutoverDetailsTopic")
	})

	t.Run("input", func(t *testing.T) {
		in := r.baseInput()
		in["drainTimeoutSeconds"] = -1
		rep := r.preflight(ctx, in, healthy)
		wantCheck(t, rep, "input", cutover.CheckFail, "drainTimeoutSeconds")
		wantCheck(t, rep, "source cluster reachable", cutover.CheckPass)
	})

	t.Run("iam fence role missing", func(t *testing.T) {
		arn, err := ar.srv.CreateRole(ctx, "orders-producer", "")
		if err != nil {
			t.Fatal(err)
		}
		o := healthy
		o.SourceAuth = kafkaconn.AuthIAM
		o.IAM = ar.srv.Client()
		o.SourceClusterArn = testClusterArn
		o.ProducerRoleArns = []string{arn, strings.Replace(arn, "orders-producer", "ghost-producer", 1)}
		in := r.baseInput()
		in["fence"] = "iam"
		in["producerRoles"] = []string{"orders-producer", "ghost-producer"}
		rep := r.preflight(ctx, in, o)
		wantCheck(t, rep, "fence iam: role orders-producer", cutover.CheckPass)
		wantCheck(t, rep, "fence iam: role ghost-producer", cutover.CheckFail, "does not exist", "producerRoles")
	})

	if after := r.snapshot(ctx); !reflect.DeepEqual(before, after) {
		t.Errorf("the preflight changed something:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestPreflightStateMachine runs statemachine/preflight.asl.json under the
// interpreter: a healthy rig succeeds with the report as output; a broken
// one (a mapping disabled, the target unreachable) ends in PreflightFailed
// whose cause names each failed check and its fix. Nothing changes.
func TestPreflightStateMachine(t *testing.T) {
	r := newRig(t, kafkalocal.SecuritySCRAMACL, 2)
	ctx := ctxFor(t, 3*time.Minute)
	r.produce(ctx, 0, 30, 2)
	r.waitReplicated(ctx)
	r.commitAppGroup(ctx)
	before := r.snapshot(ctx)
	o := Options{Definition: PreflightDefinition, Preflight: cutover.PreflightDeps{CheckTimeout: 5 * time.Second}}

	res := r.run(ctx, r.baseInput(), o)
	if res.Status != "SUCCEEDED" || res.Preflight == nil || !res.Preflight.Passed {
		t.Fatalf("healthy rig: %s %s %s", res.Status, res.Error, res.Cause)
	}
	if got, want := res.Entered(), []string{"Preflight", "AllPassed", "Passed"}; !reflect.DeepEqual(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}

	r.setMapping(ctx, false)
	addr := blackhole.Addr(t)
	o.TargetSeeds = []string{addr}
	res = r.run(ctx, r.baseInput(), o)
	r.setMapping(ctx, true)
	if res.Status != "FAILED" || res.Error != "PreflightFailed" {
		t.Fatalf("broken rig: %s %s %s", res.Status, res.Error, res.Cause)
	}
	if got, want := res.Entered(), []string{"Preflight", "AllPassed", "PreflightFailed"}; !reflect.DeepEqual(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
	for _, w := range []string{"2 preflight check(s) failed", "[target cluster reachable]", addr, "SecurityGroupIds",
		"[mapping " + r.mapping.UUID(), "update-event-source-mapping --uuid " + r.mapping.UUID() + " --enabled"} {
		if !strings.Contains(res.Cause, w) {
			t.Errorf("cause lacks %q: %s", w, res.Cause)
		}
	}
	if after := r.snapshot(ctx); !reflect.DeepEqual(before, after) {
		t.Errorf("the preflight changed something:\nbefore %+v\nafter  %+v", before, after)
	}
}
