package reconcilerun

// The reconciler's main scenarios on real Apache Kafka brokers (realkafka:
// a SCRAM source with ACLs, a plaintext target). -run RealKafka selects
// them; they skip like the other real-Kafka tests when the brokers are
// unavailable.

import (
	"strings"
	"testing"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka"
)

// pair is realkafka.Pair, with the target known for cleanup.
func pair(t *testing.T) *kafkalocal.Pair {
	p := realkafka.Pair(t)
	targetOf[p.Source] = p.Target
	return p
}

// ns is a run-unique prefix for topic and group names on the shared,
// long-lived brokers.
func ns(prefix string) string { return strings.ReplaceAll(realkafka.UniqueName(prefix), "-", "") }

func TestRealKafkaNewTopicArrivesComplete(t *testing.T) {
	scenarioNewTopic(t, pair(t), ns("rkrec1"))
}

func TestRealKafkaPartitionsAdded(t *testing.T) {
	p := pair(t)
	t.Run("seeded-first-from-end", func(t *testing.T) { scenarioPartitions(t, p, ns("rkrec2"), true, true) })
	t.Run("mapping-first-from-start", func(t *testing.T) { scenarioPartitions(t, p, ns("rkrec3"), false, false) })
	t.Run("mapping-first-from-end-gap-reported", func(t *testing.T) { scenarioPartitions(t, p, ns("rkrec4"), true, false) })
}

func TestRealKafkaPatternChangeAddsTopics(t *testing.T) {
	scenarioPatternChange(t, pair(t), ns("rkrec5"))
}

func TestRealKafkaDeletedSourceTopicReported(t *testing.T) {
	scenarioDeleted(t, pair(t), ns("rkrec6"))
}
