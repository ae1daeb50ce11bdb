package cutoverrun

import (
	"testing"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/apps"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// The numbered-message apps live in local/apps; these wrappers bind them
// to the test's topic and group and stop them at cleanup.

type ledger = apps.Ledger

func newLedger() *ledger { return apps.NewLedger() }

func (r *rig) startProducer(t *testing.T, c *kafkalocal.Cluster, l *ledger, partitions int32, app bool) *apps.App {
	t.Helper()
	as := c.AdminCredentials()
	if app {
		as = c.AppCredentials()
	}
	topic := r.topic
	if c == r.pair.Target {
		topic = r.tgtTopic()
	}
	p, err := apps.StartProducer(c, as, l, topic, partitions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func (r *rig) startConsumer(t *testing.T, c *kafkalocal.Cluster, l *ledger) *apps.App {
	t.Helper()
	topic := r.topic
	if c == r.pair.Target {
		topic = r.tgtTopic()
	}
	a, err := apps.StartConsumer(c, c.AppCredentials(), l, topic, r.group)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a
}
