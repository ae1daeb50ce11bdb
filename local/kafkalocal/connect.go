package kafkalocal

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ConnectOptions describe an existing cluster joined with [Connect].
type ConnectOptions struct {
	// Security says how the cluster authenticates and authorizes:
	// SecuritySCRAMACL for a SASL/SCRAM listener with an authorizer (the
	// fence by DENY WRITE ACL works), SecuritySCRAMNoACL for SCRAM without
	// one, SecurityPlaintext for neither.
	Security Security
	// Admin is the superuser the helper clients use on a SASL cluster;
	// the zero value means [Admin].
	Admin Credentials
	// App is the ACL-limited application user; the zero value means [App].
	App Credentials
	// Mechanism is "SCRAM-SHA-512" (the default, also when empty) or
	// "SCRAM-SHA-256".
	Mechanism string
	// SessionTimeout is what [Cluster.SessionTimeout] returns; 0 means 6 s,
	// Kafka's default group.min.session.timeout.ms.
	SessionTimeout time.Duration
	// TopicConfigs are set on every topic [Cluster.CreateTopic] creates,
	// for example {"retention.ms": "-1"} so that records with old
	// CreateTime timestamps are not deleted by time retention mid-test.
	TopicConfigs map[string]string
	// TLS, when set, makes every client of the cluster speak TLS with this
	// config (for a listener such as SASL_SSL, whose certificate it must
	// verify); nil means no TLS.
	TLS *tls.Config
	// Ping, when positive, bounds a metadata request Connect makes to check
	// the brokers answer and accept the credentials; 0 means 30 s, a
	// negative value skips the check.
	Ping time.Duration
}

// Connect wraps an existing cluster (for example real Apache Kafka brokers,
// see realkafka/) in a *Cluster, so that everything built on embedded
// clusters (rigs, the ESM emulator, local/verify, local/apps, cutoverrun)
// runs on it unchanged. name is what errors call it ("source", "target").
//
// Such a cluster is not embedded: [Cluster.Kfake] returns nil, so kfake
// fault injection and control are unavailable, and [Cluster.Close] closes
// only the helper client, never the brokers. Nothing is seeded: create
// topics with [Cluster.CreateTopics], and since the brokers may be shared
// and outlive the process, use topic and group names unique to the run.
func Connect(ctx context.Context, name string, bootstrap []string, opts ConnectOptions) (*Cluster, error) {
	if len(bootstrap) == 0 {
		return nil, fmt.Errorf("connecting to %s cluster: no bootstrap servers", name)
	}
	if opts.Security < SecuritySCRAMACL || opts.Security > SecuritySCRAMNoACL {
		return nil, fmt.Errorf("connecting to %s cluster: unknown security mode %d", name, int(opts.Security))
	}
	c := &Cluster{
		name: name, security: opts.Security, addrs: append([]string(nil), bootstrap...),
		admin: opts.Admin, app: opts.App, session: opts.SessionTimeout,
	}
	if opts.TLS != nil {
		c.tls = opts.TLS.Clone()
	}
	if len(opts.TopicConfigs) > 0 {
		c.topicConfigs = map[string]*string{}
		for k, v := range opts.TopicConfigs {
			c.topicConfigs[k] = &v
		}
	}
	if c.admin == (Credentials{}) {
		c.admin = Admin()
	}
	if c.app == (Credentials{}) {
		c.app = App()
	}
	if c.session <= 0 {
		c.session = 6 * time.Second
	}
	switch opts.Mechanism {
	case "", SCRAMMechanism:
	case "SCRAM-SHA-256":
		c.sha256 = true
	default:
		return nil, fmt.Errorf("connecting to %s cluster: SASL mechanism %q is not SCRAM-SHA-512 or SCRAM-SHA-256", name, opts.Mechanism)
	}
	if opts.Ping >= 0 {
		d := opts.Ping
		if d == 0 {
			d = 30 * time.Second
		}
		pctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		adm, err := c.AdminClient()
		if err != nil {
			return nil, err
		}
		defer adm.Close()
		if _, err := adm.BrokerMetadata(pctx); err != nil {
			return nil, fmt.Errorf("connecting to %s cluster at %v: %w", name, bootstrap, err)
		}
	}
	return c, nil
}

// waitTopic waits until the metadata shows topic with partitions partitions,
// each with a leader.
func waitTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td, ok := md.Topics[topic]
			if ok && td.Err == nil && int32(len(td.Partitions)) == partitions {
				led := true
				for _, p := range td.Partitions {
					if p.Err != nil || p.Leader < 0 {
						led = false
					}
				}
				if led {
					return nil
				}
			} else if ok && td.Err != nil && !errors.Is(td.Err, kerr.UnknownTopicOrPartition) && !errors.Is(td.Err, kerr.LeaderNotAvailable) {
				return td.Err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for its metadata: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
