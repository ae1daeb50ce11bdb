package realkafka

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// Profile names a source set-up of the real Kafka tier: how the source authorizes. Every profile's
// source is a single-node Kafka broker with the same SASL_PLAINTEXT SCRAM listener and users
// (admin, a super user where there is an authorizer, and app); the TARGET is shared by all.
type Profile string

// The source profiles. brokers.sh starts the open and no-authorizer sources next to SOURCE and TARGET
// (`brokers.sh start-profile NAME`); deny-by-default is SOURCE itself.
const (
	// ProfileDenyByDefault is SOURCE: StandardAuthorizer with allow.everyone.if.no.acl.found=false,
	// and the app user holds explicit ALLOW ACLs.
	ProfileDenyByDefault Profile = "deny-by-default"
	// ProfileOpen is StandardAuthorizer with allow.everyone.if.no.acl.found=true, and the app user
	// holds no ACLs at all: it works only because the cluster is open.
	ProfileOpen Profile = "open"
	// ProfileNoAuthorizer has no authorizer.class.name: ACL requests fail with SECURITY_DISABLED.
	ProfileNoAuthorizer Profile = "no-authorizer"
)

// Environment variables naming the sources of the open and no-authorizer profiles. brokers.sh env
// prints them while those brokers run; with user-given brokers (KMIG_REAL_SOURCE_BOOTSTRAP and
// KMIG_REAL_TARGET_BOOTSTRAP set), set them to run those profiles.
const (
	EnvSourceOpenBootstrap   = "KMIG_REAL_SOURCE_OPEN_BOOTSTRAP"
	EnvSourceNoAuthBootstrap = "KMIG_REAL_SOURCE_NOAUTH_BOOTSTRAP"
)

// Profiles returns every profile, in the order they are usually run.
func Profiles() []Profile {
	return []Profile{ProfileDenyByDefault, ProfileOpen, ProfileNoAuthorizer}
}

// ParseProfiles reads a comma-separated list of profile names; empty means every profile.
func ParseProfiles(list string) ([]Profile, error) {
	if strings.TrimSpace(list) == "" {
		return Profiles(), nil
	}
	var out []Profile
	for _, s := range strings.Split(list, ",") {
		p := Profile(strings.TrimSpace(s))
		if !p.valid() {
			return nil, fmt.Errorf("unknown profile %q (profiles: %s)", s, profileNames())
		}
		for _, q := range out {
			if q == p {
				return nil, fmt.Errorf("profile %q given twice", s)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func (p Profile) valid() bool {
	for _, q := range Profiles() {
		if p == q {
			return true
		}
	}
	return false
}

func profileNames() string {
	var names []string
	for _, p := range Profiles() {
		names = append(names, string(p))
	}
	return strings.Join(names, ", ")
}

// Description says in a few words how the profile's source authorizes.
func (p Profile) Description() string {
	switch p {
	case ProfileDenyByDefault:
		return "SCRAM, StandardAuthorizer, allow.everyone.if.no.acl.found=false, app user with ALLOW ACLs"
	case ProfileOpen:
		return "SCRAM, StandardAuthorizer, allow.everyone.if.no.acl.found=true, app user with no ACLs"
	case ProfileNoAuthorizer:
		return "SCRAM, no authorizer"
	}
	return "unknown profile"
}

// Security is the kafkalocal security mode of the profile's source. The open profile is
// SecuritySCRAMACL like deny-by-default: it has an authorizer (ACL requests work, a DENY ACL is
// enforced); only its ACLs and allow.everyone.if.no.acl.found differ, which brokers.sh sets up.
func (p Profile) Security() kafkalocal.Security {
	if p == ProfileNoAuthorizer {
		return kafkalocal.SecuritySCRAMNoACL
	}
	return kafkalocal.SecuritySCRAMACL
}

// CutoverInput returns the cutover input fields a migration from this profile's source sets: the
// fence kind, and for the open profile allowEveryoneIfNoAclFound (the broker reports
// allow.everyone.if.no.acl.found as sensitive in DescribeConfigs, so the cutover cannot read it).
// The map is the caller's.
func (p Profile) CutoverInput() map[string]any {
	switch p {
	case ProfileOpen:
		return map[string]any{"fence": "acl", "allowEveryoneIfNoAclFound": true}
	case ProfileNoAuthorizer:
		return map[string]any{"fence": "none"}
	}
	return map[string]any{"fence": "acl"}
}

// BootstrapEnv is the environment variable that names the profile's source.
func (p Profile) BootstrapEnv() string {
	switch p {
	case ProfileOpen:
		return EnvSourceOpenBootstrap
	case ProfileNoAuthorizer:
		return EnvSourceNoAuthBootstrap
	}
	return EnvSourceBootstrap
}

// ErrProfileNotGiven says the brokers are user-given and no bootstrap is given for the profile's
// source (its BootstrapEnv is unset): there is nothing of ours to start.
var ErrProfileNotGiven = errors.New("real Kafka tier: brokers are user-given and the profile's source is not")

// ProfileSource returns host:port of profile p's source. For local brokers it starts (or reuses) the
// profile's broker with `brokers.sh start-profile`, after Start; it is left running, stopped by
// `brokers.sh stop`. With user-given brokers it reads p.BootstrapEnv(), or fails with
// ErrProfileNotGiven.
func ProfileSource(p Profile) (string, error) {
	if !p.valid() {
		return "", fmt.Errorf("unknown profile %q (profiles: %s)", p, profileNames())
	}
	ep, err := Start()
	if err != nil {
		return "", err
	}
	return profileSource(ep, p)
}

func profileSource(ep Endpoints, p Profile) (string, error) {
	if p == ProfileDenyByDefault {
		return ep.SourceBootstrap, nil
	}
	if !ep.Local {
		if b := os.Getenv(p.BootstrapEnv()); b != "" {
			return b, nil
		}
		return "", fmt.Errorf("%w: set %s for profile %s", ErrProfileNotGiven, p.BootstrapEnv(), p)
	}
	out, err := script("start-profile", string(p))
	if err != nil {
		return "", err
	}
	b := strings.TrimSpace(out)
	if b == "" {
		return "", fmt.Errorf("brokers.sh start-profile %s printed no address", p)
	}
	return b, nil
}

// ConnectProfile is ProfilePair for commands: profile p's source and the shared TARGET as a
// *kafkalocal.Pair, starting what is needed (Start, ProfileSource) and leaving it running. Closing
// the pair closes helper clients only.
func ConnectProfile(ctx context.Context, p Profile) (*kafkalocal.Pair, error) {
	b, err := ProfileSource(p)
	if err != nil {
		return nil, err
	}
	ep, err := Start()
	if err != nil {
		return nil, err
	}
	return connectPair(ctx, ep, p, b)
}

// ProfilePair is Pair for profile p's source: its source (as the super user, with the app user as
// its application user, in p.Security()) and the shared TARGET. Skips like Brokers, and also when the
// brokers are user-given and p's source is not (unless KMIG_REQUIRE_REAL_KAFKA=1, then it fails).
// The pair is closed at cleanup.
func ProfilePair(t testing.TB, p Profile) *kafkalocal.Pair {
	t.Helper()
	ep := Brokers(t)
	b, err := profileSource(ep, p)
	if errors.Is(err, ErrProfileNotGiven) && os.Getenv(EnvRequire) != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("real Kafka tier: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pair, err := connectPair(ctx, ep, p, b)
	if err != nil {
		t.Fatalf("real Kafka tier: %v", err)
	}
	t.Cleanup(pair.Close)
	return pair
}

// connectPair joins the source at bootstrap as profile p's and the TARGET of ep.
func connectPair(ctx context.Context, ep Endpoints, p Profile, bootstrap string) (*kafkalocal.Pair, error) {
	src, err := kafkalocal.Connect(ctx, "source", strings.Split(bootstrap, ","), kafkalocal.ConnectOptions{
		Security:  p.Security(),
		Admin:     kafkalocal.Credentials{User: ep.SourceUser, Password: ep.SourcePassword},
		App:       kafkalocal.Credentials{User: ep.AppUser, Password: ep.AppPassword},
		Mechanism: ep.SourceMechanism,
		// Test records may carry old CreateTime timestamps (fidelity suites use 2023): without this,
		// the brokers' time retention deletes them at its next check, mid-test.
		TopicConfigs: TopicConfigs,
	})
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", p, err)
	}
	tgt, err := connectTarget(ctx, ep.TargetBootstrap)
	if err != nil {
		src.Close()
		return nil, err
	}
	return &kafkalocal.Pair{Source: src, Target: tgt}, nil
}
