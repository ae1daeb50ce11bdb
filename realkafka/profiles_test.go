package realkafka_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka"
)

func TestParseProfiles(t *testing.T) {
	all, err := realkafka.ParseProfiles("")
	if err != nil || !reflect.DeepEqual(all, realkafka.Profiles()) {
		t.Fatalf(`ParseProfiles("") = %v, %v`, all, err)
	}
	got, err := realkafka.ParseProfiles(" open,no-authorizer")
	if want := []realkafka.Profile{realkafka.ProfileOpen, realkafka.ProfileNoAuthorizer}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseProfiles = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"closed", "open,open", "open,"} {
		if _, err := realkafka.ParseProfiles(bad); err == nil {
			t.Errorf("ParseProfiles(%q) accepted", bad)
		}
	}
	for p, fence := range map[realkafka.Profile]string{realkafka.ProfileDenyByDefault: "acl", realkafka.ProfileOpen: "acl", realkafka.ProfileNoAuthorizer: "none"} {
		if got := p.CutoverInput()["fence"]; got != fence {
			t.Errorf("%s fence %v, want %s", p, got, fence)
		}
	}
}

// profileTopic creates a one-partition topic on the profile's source as the super user and deletes
// it at cleanup.
func profileTopic(t *testing.T, src *kafkalocal.Cluster) (string, *kadm.Client) {
	t.Helper()
	adm, err := src.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adm.Close)
	topic := realkafka.UniqueName("kmig-profile")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := src.CreateTopic(ctx, topic, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, topic)
	})
	return topic, adm
}

func appClient(t *testing.T, src *kafkalocal.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := src.NewAppClient(append([]kgo.Opt{kgo.RecordDeliveryTimeout(10 * time.Second), kgo.RequestRetries(2)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// readErr reads topic from the start as the app user, without a group, until it gets a record
// (nil) or a fetch error, within d.
func readErr(t *testing.T, src *kafkalocal.Cluster, topic string, d time.Duration) error {
	t.Helper()
	cl := appClient(t, src, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, e := range fs.Errors() {
			return e.Err
		}
		if fs.NumRecords() > 0 {
			return nil
		}
	}
}

// The open profile: the app user holds no ACLs and still produces and consumes in a group, because
// the cluster is open (allow.everyone.if.no.acl.found=true). A DENY WRITE for User:* on a topic
// stops its writes, and also ends "no ACL found" for that topic: the app user can no longer read it
// either, while the super user can. Deleting the DENY opens the topic again.
func TestProfileOpen(t *testing.T) {
	pair := realkafka.ProfilePair(t, realkafka.ProfileOpen)
	src := pair.Source
	topic, adm := profileTopic(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	appUser := "User:" + src.AppCredentials().User
	acls, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow(appUser).AllowHosts().Deny(appUser).DenyHosts().
		Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range acls {
		if r.Err != nil || len(r.Described) > 0 {
			t.Fatalf("ACLs of the app user: %v %v, want none", r.Err, r.Described)
		}
	}
	app := appClient(t, src)
	if err := produce(ctx, app, topic, 2); err != nil {
		t.Fatalf("app produce on the open source: %v", err)
	}
	group := appClient(t, src, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(realkafka.UniqueName("kmig-profile-group")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	consume(t, group, 2)
	if err := group.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("app commit on the open source: %v", err)
	}

	fence := kadm.NewACLs().Topics(topic).Deny("User:*").DenyHosts("*").
		Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)
	if res, err := adm.CreateACLs(ctx, fence); err != nil || res[0].Err != nil {
		t.Fatalf("create DENY ACL: %v %v", err, res)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteACLs(ctx, fence)
	})
	until(t, 30*time.Second, "the DENY WRITE to refuse the app's writes", func() error {
		err := produce(ctx, appClient(t, src), topic, 1)
		if errors.Is(err, kerr.TopicAuthorizationFailed) {
			return nil
		}
		return fmt.Errorf("app produce: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
	})
	if err := readErr(t, src, topic, 20*time.Second); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("app read with a DENY WRITE on the open source: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	admin, err := src.NewClient(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	consume(t, admin, 2)

	if _, err := adm.DeleteACLs(ctx, fence); err != nil {
		t.Fatalf("delete DENY ACL: %v", err)
	}
	until(t, 30*time.Second, "the app to read again once the DENY is deleted", func() error {
		return readErr(t, src, topic, 10*time.Second)
	})
}

// The no-authorizer profile: ACL requests fail with SECURITY_DISABLED, and the app user produces and
// consumes in a group.
func TestProfileNoAuthorizer(t *testing.T) {
	pair := realkafka.ProfilePair(t, realkafka.ProfileNoAuthorizer)
	src := pair.Source
	if src.ACLsEnforced() || !src.SASL() {
		t.Fatalf("no-authorizer source: ACLsEnforced %v SASL %v", src.ACLsEnforced(), src.SASL())
	}
	topic, adm := profileTopic(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := adm.DescribeACLs(ctx, kadm.NewACLs().Topics(topic).Deny("User:*").DenyHosts("*").
		Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	for _, r := range res {
		if err == nil {
			err = r.Err
		}
	}
	if !errors.Is(err, kerr.SecurityDisabled) {
		t.Fatalf("DescribeACLs on the no-authorizer source: %v, want SECURITY_DISABLED", err)
	}
	if err := produce(ctx, appClient(t, src), topic, 2); err != nil {
		t.Fatalf("app produce: %v", err)
	}
	group := appClient(t, src, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(realkafka.UniqueName("kmig-profile-group")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	consume(t, group, 2)
}
