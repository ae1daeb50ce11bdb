package realkafka_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka"
)

func scramMech(mech, user, pass string) kgo.Opt {
	a := scram.Auth{User: user, Pass: pass}
	if strings.EqualFold(mech, "SCRAM-SHA-256") {
		return kgo.SASL(a.AsSha256Mechanism())
	}
	return kgo.SASL(a.AsSha512Mechanism())
}

func sourceClient(t *testing.T, ep realkafka.Endpoints, user, pass string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.SeedBrokers(ep.SourceBootstrap),
		scramMech(ep.SourceMechanism, user, pass),
		kgo.RecordDeliveryTimeout(15 * time.Second),
		kgo.RequestRetries(3),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func targetClient(t *testing.T, ep realkafka.Endpoints, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(ep.TargetBootstrap), kgo.RecordDeliveryTimeout(15 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// until calls try until it returns nil. bound only guards against a
// condition that never comes: past it the test fails saying what it
// waited for, with try's last error. ACL changes reach the authorizer
// through the metadata log, so their effect is observed, not timed.
func until(t *testing.T, bound time.Duration, what string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", bound, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func uniqueTopic(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

func createTopic(t *testing.T, adm *kadm.Client, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func produce(ctx context.Context, cl *kgo.Client, topic string, n int) error {
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("value-%d", i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			return err
		}
	}
	return nil
}

func consume(t *testing.T, cl *kgo.Client, want int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before timeout", len(got), want)
		}
		for _, e := range fs.Errors() {
			// A broker just started answers NOT_COORDINATOR while it
			// creates __consumer_offsets; the client retries that.
			if kerr.IsRetriable(e.Err) {
				t.Logf("retrying after %s/%d: %v", e.Topic, e.Partition, e.Err)
				continue
			}
			t.Fatalf("fetch error on %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		got = append(got, fs.Records()...)
	}
	return got
}

// Admin and the ACL-limited app user both authenticate with SCRAM; app can create, produce and consume
// in a group thanks to the ALLOW ACLs created by brokers.sh start.
func TestSourceSCRAMAdminAndApp(t *testing.T) {
	ep := realkafka.Brokers(t)
	admin := sourceClient(t, ep, ep.SourceUser, ep.SourcePassword)
	adm := kadm.NewClient(admin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if _, err := adm.ListBrokers(ctx); err != nil {
		t.Fatalf("admin metadata: %v", err)
	}
	topic := uniqueTopic("kmig-scram")
	createTopic(t, adm, topic)
	if err := produce(ctx, admin, topic, 5); err != nil {
		t.Fatalf("admin produce: %v", err)
	}

	app := sourceClient(t, ep, ep.AppUser, ep.AppPassword)
	if err := produce(ctx, app, topic, 5); err != nil {
		t.Fatalf("app produce: %v", err)
	}
	group := uniqueTopic("kmig-group")
	appConsumer := sourceClient(t, ep, ep.AppUser, ep.AppPassword,
		kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	recs := consume(t, appConsumer, 10)
	if len(recs) != 10 {
		t.Fatalf("got %d records, want 10", len(recs))
	}
	if err := appConsumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("app commit: %v", err)
	}

	// A wrong password is refused.
	bad := sourceClient(t, ep, ep.AppUser, "wrong-password", kgo.RequestRetries(0))
	if err := bad.Ping(ctx); err == nil {
		t.Fatal("ping with a wrong password succeeded")
	} else {
		t.Logf("wrong password refused as expected: %v", err)
	}
}

// The fence: a DENY WRITE for User:* on a topic stops app (which has ALLOW WRITE on *) from producing;
// the super user still can; deleting the DENY lets app produce again.
func TestDenyWriteFenceBlocksApp(t *testing.T) {
	ep := realkafka.Brokers(t)
	admin := sourceClient(t, ep, ep.SourceUser, ep.SourcePassword)
	adm := kadm.NewClient(admin)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	topic := uniqueTopic("kmig-fence")
	createTopic(t, adm, topic)
	app := sourceClient(t, ep, ep.AppUser, ep.AppPassword)
	if err := produce(ctx, app, topic, 1); err != nil {
		t.Fatalf("app produce before fence: %v", err)
	}

	fence := kadm.NewACLs().Topics(topic).Deny("User:*").DenyHosts("*").
		Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)
	res, err := adm.CreateACLs(ctx, fence)
	if err != nil {
		t.Fatalf("create DENY ACL: %v", err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create DENY ACL: %v", r.Err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteACLs(ctx, kadm.NewACLs().Topics(topic).Deny("User:*").DenyHosts("*").
			Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	})

	// ACLs reach the authorizer through the metadata log: wait until the fence bites.
	var lastErr error
	until(t, 30*time.Second, "the DENY WRITE to refuse the app's writes", func() error {
		fresh := sourceClient(t, ep, ep.AppUser, ep.AppPassword)
		defer fresh.Close()
		pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
		defer pcancel()
		lastErr = produce(pctx, fresh, topic, 1)
		if errors.Is(lastErr, kerr.TopicAuthorizationFailed) {
			return nil
		}
		return fmt.Errorf("app produce: got %v, want TOPIC_AUTHORIZATION_FAILED", lastErr)
	})
	t.Logf("app blocked by the fence as expected: %v", lastErr)

	// Super users bypass ACLs.
	if err := produce(ctx, admin, topic, 1); err != nil {
		t.Fatalf("admin produce with fence in place: %v", err)
	}
	// app can still read (the fence only denies WRITE).
	group := uniqueTopic("kmig-fence-group")
	reader := sourceClient(t, ep, ep.AppUser, ep.AppPassword,
		kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	consume(t, reader, 2)

	// Lift the fence.
	if _, err := adm.DeleteACLs(ctx, kadm.NewACLs().Topics(topic).Deny("User:*").DenyHosts("*").
		Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil {
		t.Fatalf("delete DENY ACL: %v", err)
	}
	until(t, 30*time.Second, "the app to write again once the DENY is deleted", func() error {
		fresh := sourceClient(t, ep, ep.AppUser, ep.AppPassword)
		defer fresh.Close()
		return produce(ctx, fresh, topic, 1)
	})
}

// app is not a super user: with allow.everyone.if.no.acl.found=false and no ALTER on the cluster,
// its attempt to create an ACL is refused.
func TestAppIsNotSuperUser(t *testing.T) {
	ep := realkafka.Brokers(t)
	app := sourceClient(t, ep, ep.AppUser, ep.AppPassword)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := kadm.NewClient(app).CreateACLs(ctx, kadm.NewACLs().Topics("x").Allow("User:app").AllowHosts("*").
		Operations(kadm.OpAlter).ResourcePatternType(kadm.ACLPatternLiteral))
	if err == nil {
		for _, r := range res {
			err = r.Err
		}
	}
	if !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("app CreateACLs: got %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
}

func TestTargetPlaintext(t *testing.T) {
	ep := realkafka.Brokers(t)
	cl := targetClient(t, ep)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic := uniqueTopic("kmig-target")
	createTopic(t, adm, topic)
	if err := produce(ctx, cl, topic, 3); err != nil {
		t.Fatalf("target produce: %v", err)
	}
	c := targetClient(t, ep, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	consume(t, c, 3)
}

// MirrorMaker 2 (dedicated mode, from the same jars) mirrors a SOURCE topic to the TARGET under the
// same name. Slow (starts a JVM with Connect): skipped with -short.
func TestMirrorMaker2Mirrors(t *testing.T) {
	if testing.Short() {
		t.Skip("MirrorMaker 2 test skipped in -short mode")
	}
	ep := realkafka.Brokers(t)
	if ep.KafkaLibs == "" {
		t.Skip("KMIG_REAL_KAFKA_LIBS unknown (external brokers without jars)")
	}
	admin := sourceClient(t, ep, ep.SourceUser, ep.SourcePassword)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topic := uniqueTopic("kmig-mm2")
	createTopic(t, kadm.NewClient(admin), topic)
	const n = 200
	if err := produce(ctx, admin, topic, n); err != nil {
		t.Fatalf("produce: %v", err)
	}

	dir := t.TempDir()
	props := filepath.Join(dir, "mm2.properties")
	script := filepath.Join(realkafka.Dir(), "mm2.sh")
	render := exec.Command("bash", script, "render", props)
	render.Env = append(os.Environ(),
		"KMIG_REAL_SOURCE_BOOTSTRAP="+ep.SourceBootstrap,
		"KMIG_REAL_TARGET_BOOTSTRAP="+ep.TargetBootstrap,
		"KMIG_REAL_SOURCE_USER="+ep.SourceUser,
		"KMIG_REAL_SOURCE_PASSWORD="+ep.SourcePassword,
		"KMIG_REAL_SOURCE_MECHANISM="+ep.SourceMechanism,
		"KMIG_MM2_TOPICS="+topic,
	)
	if out, err := render.CombinedOutput(); err != nil {
		t.Fatalf("mm2.sh render: %v\n%s", err, out)
	}
	mm2 := exec.Command("bash", script, "run", props)
	mm2.Env = append(os.Environ(), "KMIG_REAL_KAFKA_LIBS="+ep.KafkaLibs)
	logPath := filepath.Join(dir, "mm2.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	mm2.Stdout, mm2.Stderr = logFile, logFile
	if err := mm2.Start(); err != nil {
		t.Fatal(err)
	}
	// mm2.sh run execs java, so this PID is the JVM: stop it by PID.
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = mm2.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = mm2.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = mm2.Process.Kill()
			<-done
		}
	}
	defer stop()

	// No auto topic creation: the topic must be created on the target by MM2 itself.
	c := targetClient(t, ep, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	cctx, ccancel := context.WithTimeout(ctx, 150*time.Second)
	defer ccancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := c.PollFetches(cctx)
		if cctx.Err() != nil {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("target got %d of %d mirrored records; MM2 log tail:\n%s", len(got), n, tail(string(log), 60))
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	for i, r := range got {
		if string(r.Key) != fmt.Sprint(i) || r.Offset != int64(i) {
			t.Fatalf("record %d: key %q offset %d", i, r.Key, r.Offset)
		}
	}
	stop()
	t.Logf("MirrorMaker 2 mirrored %d records %s -> %s (topic %s)", n, ep.SourceBootstrap, ep.TargetBootstrap, topic)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
