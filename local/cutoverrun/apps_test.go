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

func startProducer(t *testing.T, c *kafkalocal.Cluster, l *ledger, partitions int32, app bool) *apps.App {
	t.Helper()
	as := kafkalocal.Admin()
	if app {
		as = kafkalocal.App()
	}
	p, err := apps.StartProducer(c, as, l, topic, partitions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func startConsumer(t *testing.T, c *kafkalocal.Cluster, l *ledger) *apps.App {
	t.Helper()
	a, err := apps.StartConsumer(c, kafkalocal.App(), l, topic, appGroup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a
}
