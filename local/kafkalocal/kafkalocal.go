// Package kafkalocal starts embedded Kafka clusters (kfake, in process) that
// stand in for a self-managed source cluster and an Amazon MSK target, for
// tests and for the local demo.
//
// The source is, by default, secured like a production cluster: SASL/SCRAM-
// SHA-512 with an authorizer, a superuser for the migrator ([AdminUser]) and
// an ordinary application user ([AppUser]) that holds ALLOW ACLs, so a DENY
// WRITE ACL for User:* really fences producers. The target is plaintext with
// no authorizer.
//
// The API has no dependency on package testing, so the same code serves a
// command-line demo. This package must never be imported by a Lambda binary.
package kafkalocal

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Credentials of the seeded source users. They are fixed so that a demo
// configuration can name them; they protect nothing but a loopback listener.
const (
	// SCRAMMechanism is the only SASL mechanism the secured source accepts.
	SCRAMMechanism = "SCRAM-SHA-512"

	// AdminUser is the migrator's identity on the source: a superuser that
	// may create and delete ACLs, describe groups and commit offsets.
	AdminUser = "admin"
	// AdminPassword is AdminUser's SCRAM-SHA-512 password.
	AdminPassword = "admin-secret"

	// AppUser is an ordinary application identity on the source. It is
	// subject to ACLs and holds ALLOW for topic READ/WRITE/DESCRIBE and
	// group READ/DESCRIBE on every name, so a DENY ACL overrides it.
	AppUser = "app"
	// AppPassword is AppUser's SCRAM-SHA-512 password.
	AppPassword = "app-secret"
)

// Credentials is a SCRAM user name and password.
type Credentials struct {
	User     string
	Password string
}

// Admin returns the migrator's superuser credentials on a secured source.
func Admin() Credentials { return Credentials{User: AdminUser, Password: AdminPassword} }

// App returns the application user's credentials on a secured source.
func App() Credentials { return Credentials{User: AppUser, Password: AppPassword} }

// Security selects how a source cluster authenticates and authorizes.
type Security int

const (
	// SecuritySCRAMACL (the default) requires SASL/SCRAM-SHA-512 and
	// enforces ACLs: the fence by DENY WRITE ACL works.
	SecuritySCRAMACL Security = iota
	// SecurityPlaintext accepts unauthenticated plaintext connections and
	// has no authorizer: ACL requests fail with SECURITY_DISABLED, as on a
	// real broker without authorizer.class.name.
	SecurityPlaintext
	// SecuritySCRAMNoACL requires SASL/SCRAM-SHA-512 but has no
	// authorizer: ACL requests fail with SECURITY_DISABLED.
	SecuritySCRAMNoACL
)

// String names the security mode.
func (s Security) String() string {
	switch s {
	case SecuritySCRAMACL:
		return "scram+acl"
	case SecurityPlaintext:
		return "plaintext"
	case SecuritySCRAMNoACL:
		return "scram"
	default:
		return fmt.Sprintf("Security(%d)", int(s))
	}
}

// Topic is a topic to create when a cluster starts.
type Topic struct {
	Name       string
	Partitions int32 // < 1 means 1
}

// ClusterOptions configures one embedded cluster.
type ClusterOptions struct {
	// Topics are created before the cluster accepts clients.
	Topics []Topic
	// Brokers is the number of brokers; 0 means 1 (fastest).
	Brokers int
	// Security applies to source clusters only; targets are always
	// plaintext without an authorizer.
	Security Security
	// ClusterID is returned in metadata; empty means "source" or "target".
	ClusterID string
	// Extra kfake options, applied last.
	Extra []kfake.Opt
}

// PairOptions configures a source and a target cluster.
type PairOptions struct {
	Source ClusterOptions
	Target ClusterOptions
}

// Pair is a running source and target cluster.
type Pair struct {
	Source *Cluster
	Target *Cluster
}

// StartPair starts a source (secured per opts.Source.Security) and a
// plaintext target. On error nothing is left running.
func StartPair(opts PairOptions) (*Pair, error) {
	src, err := StartSource(opts.Source)
	if err != nil {
		return nil, err
	}
	tgt, err := StartTarget(opts.Target)
	if err != nil {
		src.Close()
		return nil, err
	}
	return &Pair{Source: src, Target: tgt}, nil
}

// Close stops both clusters. It is safe to call more than once.
func (p *Pair) Close() {
	if p == nil {
		return
	}
	p.Source.Close()
	p.Target.Close()
}

// Cluster is a running embedded cluster plus the identity its helper clients
// use (the superuser on a secured source, nobody on a plaintext cluster).
type Cluster struct {
	name     string
	kc       *kfake.Cluster // nil for a cluster joined with Connect
	security Security
	addrs    []string
	admin    Credentials
	app      Credentials
	sha256   bool          // SCRAM-SHA-256 instead of SCRAM-SHA-512 (Connect only)
	session  time.Duration // consumer group session timeout for test clients
	// topicConfigs are set on topics CreateTopic creates (Connect only).
	topicConfigs map[string]*string
	// tls is the TLS config of every client (Connect only); nil: no TLS.
	tls *tls.Config

	mu       sync.Mutex
	producer *kgo.Client
	closed   bool
}

// StartSource starts a cluster standing in for the self-managed source.
func StartSource(opts ClusterOptions) (*Cluster, error) {
	return start("source", opts, opts.Security)
}

// StartTarget starts a plaintext cluster with no authorizer standing in for
// MSK. opts.Security is ignored.
func StartTarget(opts ClusterOptions) (*Cluster, error) {
	return start("target", opts, SecurityPlaintext)
}

func start(name string, opts ClusterOptions, sec Security) (*Cluster, error) {
	if sec < SecuritySCRAMACL || sec > SecuritySCRAMNoACL {
		return nil, fmt.Errorf("starting %s cluster: unknown security mode %d", name, int(sec))
	}
	brokers := opts.Brokers
	if brokers <= 0 {
		brokers = 1
	}
	id := opts.ClusterID
	if id == "" {
		id = name
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(brokers),
		kfake.ClusterID(id),
		// Let test clients use short sessions so a dead member is
		// noticed quickly; production-like defaults still work.
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}
	for _, t := range opts.Topics {
		if t.Name == "" {
			return nil, fmt.Errorf("starting %s cluster: seed topic with empty name", name)
		}
		p := t.Partitions
		if p < 1 {
			p = 1
		}
		kopts = append(kopts, kfake.SeedTopics(p, t.Name))
	}
	switch sec {
	case SecuritySCRAMACL, SecuritySCRAMNoACL:
		kopts = append(kopts,
			kfake.EnableSASL(),
			kfake.Superuser(SCRAMMechanism, AdminUser, AdminPassword),
			kfake.User(SCRAMMechanism, AppUser, AppPassword, appACLs()...),
		)
		if sec == SecuritySCRAMACL {
			kopts = append(kopts, kfake.EnableACLs())
		}
	}
	kopts = append(kopts, opts.Extra...)
	kc, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("starting %s cluster: %w", name, err)
	}
	if sec != SecuritySCRAMACL {
		disableACLAPIs(kc)
	}
	return &Cluster{name: name, kc: kc, security: sec, addrs: kc.ListenAddrs(),
		admin: Admin(), app: App(), session: 2 * time.Second}, nil
}

// appACLs are the application user's grants: everything an ordinary
// producer/consumer needs, on every topic and group, and nothing on the
// cluster (no ACL administration).
func appACLs() []kfake.ACL {
	var acls []kfake.ACL
	for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe} {
		acls = append(acls, kfake.ACL{
			Resource: kmsg.ACLResourceTypeTopic, Name: "*",
			Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true,
		})
	}
	for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDescribe} {
		acls = append(acls, kfake.ACL{
			Resource: kmsg.ACLResourceTypeGroup, Name: "*",
			Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true,
		})
	}
	return acls
}

// disableACLAPIs makes the ACL requests answer SECURITY_DISABLED, as a real
// broker without an authorizer does (kfake would otherwise store ACLs it
// never enforces, which would make an unfenced source look fenced).
func disableACLAPIs(kc *kfake.Cluster) {
	code := kerr.SecurityDisabled.Code
	msg := kmsg.StringPtr("No Authorizer is configured on the broker")
	kc.ControlKey(int16(kmsg.DescribeACLs), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		r := req.(*kmsg.DescribeACLsRequest)
		resp := r.ResponseKind().(*kmsg.DescribeACLsResponse)
		resp.Version = r.Version
		resp.ErrorCode = code
		resp.ErrorMessage = msg
		return resp, nil, true
	})
	kc.ControlKey(int16(kmsg.CreateACLs), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		r := req.(*kmsg.CreateACLsRequest)
		resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
		resp.Version = r.Version
		for range r.Creations {
			res := kmsg.NewCreateACLsResponseResult()
			res.ErrorCode = code
			res.ErrorMessage = msg
			resp.Results = append(resp.Results, res)
		}
		return resp, nil, true
	})
	kc.ControlKey(int16(kmsg.DeleteACLs), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		r := req.(*kmsg.DeleteACLsRequest)
		resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
		resp.Version = r.Version
		for range r.Filters {
			res := kmsg.NewDeleteACLsResponseResult()
			res.ErrorCode = code
			res.ErrorMessage = msg
			resp.Results = append(resp.Results, res)
		}
		return resp, nil, true
	})
}

// Name is "source" or "target".
func (c *Cluster) Name() string { return c.name }

// Security reports how the cluster authenticates and authorizes.
func (c *Cluster) Security() Security { return c.security }

// SASL reports whether clients must authenticate with SCRAM-SHA-512.
func (c *Cluster) SASL() bool { return c.security != SecurityPlaintext }

// ACLsEnforced reports whether the cluster has an authorizer.
func (c *Cluster) ACLsEnforced() bool { return c.security == SecuritySCRAMACL }

// Bootstrap returns the brokers' host:port addresses. The slice is a copy.
func (c *Cluster) Bootstrap() []string { return append([]string(nil), c.addrs...) }

// BootstrapServers returns the addresses comma-joined, the form of the
// *_BOOTSTRAP_SERVERS variables.
func (c *Cluster) BootstrapServers() string { return strings.Join(c.addrs, ",") }

// Kfake exposes the underlying cluster for fault injection and control. It
// is nil for a cluster joined with [Connect] (real brokers): callers that
// inject faults through kfake must check [Cluster.Embedded] first.
func (c *Cluster) Kfake() *kfake.Cluster { return c.kc }

// Embedded reports whether the cluster is an in-process kfake cluster
// (false for one joined with [Connect]).
func (c *Cluster) Embedded() bool { return c.kc != nil }

// AdminCredentials are the superuser credentials the helper clients use on
// a SASL cluster ([Admin] on an embedded one).
func (c *Cluster) AdminCredentials() Credentials { return c.admin }

// AppCredentials are the ACL-limited application user's credentials on a
// SASL cluster ([App] on an embedded one).
func (c *Cluster) AppCredentials() Credentials { return c.app }

// SessionTimeout is a consumer group session timeout the cluster accepts
// and that notices a dead member quickly: 2 s on an embedded cluster, and
// on a connected one what ConnectOptions.SessionTimeout says (default 6 s,
// Kafka's default group.min.session.timeout.ms).
func (c *Cluster) SessionTimeout() time.Duration { return c.session }

// Close stops the cluster and any helper client. Safe to call more than once.
// For a cluster joined with [Connect] it closes the helper client only; the
// brokers keep running.
func (c *Cluster) Close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	p := c.producer
	c.producer = nil
	c.mu.Unlock()
	if p != nil {
		p.Close()
	}
	if c.kc != nil {
		c.kc.Close()
	}
}

// ClientOpts returns the options a franz-go client needs to reach this
// cluster as the given user: seed brokers, TLS when the cluster was joined
// with it, SASL when the cluster requires it, and a short metadata min age
// so that tests do not wait out the 5 s default. Credentials are ignored on
// a plaintext cluster; with none given on a SASL cluster the superuser is
// used.
func (c *Cluster) ClientOpts(as ...Credentials) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.addrs...),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	}
	if c.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(c.tls.Clone()))
	}
	if c.SASL() {
		cr := c.admin
		if len(as) > 0 {
			cr = as[0]
		}
		auth := scram.Auth{User: cr.User, Pass: cr.Password}
		if c.sha256 {
			opts = append(opts, kgo.SASL(auth.AsSha256Mechanism()))
		} else {
			opts = append(opts, kgo.SASL(auth.AsSha512Mechanism()))
		}
	}
	return opts
}

// NewClient builds a client authenticated as the superuser (on a SASL
// cluster) with extra options applied last. The caller closes it.
func (c *Cluster) NewClient(extra ...kgo.Opt) (*kgo.Client, error) {
	return c.NewClientAs(c.admin, extra...)
}

// NewAppClient builds a client authenticated as the application user
// ([AppUser] on an embedded cluster, on a SASL cluster), subject to ACLs. The caller closes it.
func (c *Cluster) NewAppClient(extra ...kgo.Opt) (*kgo.Client, error) {
	return c.NewClientAs(c.app, extra...)
}

// NewClientAs builds a client authenticated as the given user. The caller
// closes it.
func (c *Cluster) NewClientAs(cr Credentials, extra ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append(c.ClientOpts(cr), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("building %s client as %q: %w", c.name, cr.User, err)
	}
	return cl, nil
}

// AdminClient builds a kadm client as the superuser. Closing it closes its
// underlying client.
func (c *Cluster) AdminClient(extra ...kgo.Opt) (*kadm.Client, error) {
	cl, err := c.NewClient(extra...)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// CreateTopic creates a topic with the given partition count as the
// superuser, and succeeds only if the topic now exists as asked.
func (c *Cluster) CreateTopic(ctx context.Context, topic string, partitions int32) error {
	adm, err := c.AdminClient()
	if err != nil {
		return err
	}
	defer adm.Close()
	resp, err := adm.CreateTopic(ctx, partitions, -1, c.topicConfigs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("creating topic %q on %s: %w", topic, c.name, err)
	}
	if c.kc == nil {
		// A real broker answers CreateTopics once the controller has the
		// topic; wait until the metadata shows it with every partition
		// led, so the caller can produce and consume at once.
		if err := waitTopic(ctx, adm, topic, partitions); err != nil {
			return fmt.Errorf("creating topic %q on %s: %w", topic, c.name, err)
		}
	}
	return nil
}

// CreateTopics creates each topic as [Cluster.CreateTopic] does (a
// partition count below 1 means 1).
func (c *Cluster) CreateTopics(ctx context.Context, topics ...Topic) error {
	for _, t := range topics {
		p := t.Partitions
		if p < 1 {
			p = 1
		}
		if err := c.CreateTopic(ctx, t.Name, p); err != nil {
			return err
		}
	}
	return nil
}

// ErrClosed is returned by helpers called after Close; the caller should
// stop using the cluster.
var ErrClosed = errors.New("kafkalocal: cluster closed")

// ProduceSync writes records as the superuser through a shared idempotent
// client (acks=all) and returns the first error. The client partitions
// manually: each record goes to its Partition field (zero means 0).
func (c *Cluster) ProduceSync(ctx context.Context, rs ...*kgo.Record) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.producer == nil {
		cl, err := c.NewClient(
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(0),
		)
		if err != nil {
			c.mu.Unlock()
			return err
		}
		c.producer = cl
	}
	p := c.producer
	c.mu.Unlock()
	if err := p.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return fmt.Errorf("producing to %s: %w", c.name, err)
	}
	return nil
}
