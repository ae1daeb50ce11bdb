// Package rehearsal is the local migration rehearsal behind `make demo`
// (Demo, on embedded clusters) and `make rehearse-real` (Rehearse, on
// real brokers): a plan's topics seeded on the source; the reconciler
// (shared/reconcile, wired by local/reconcilerun) selecting them by
// pattern, creating their target topics and one emulated event source
// mapping each through the emulated Lambda API, as a deployed stack does;
// a topic created later found by the next reconcile run; source and target
// compared record for record; and the cutover of every mapped topic
// through the real state machine while numbered-message apps produce and
// consume. It is for local runs only and must never be imported by a
// Lambda binary.
package rehearsal

import (
	"fmt"
	"regexp"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// Plan is what a rehearsal puts on the source and which of it the stack's
// topic selection must pick, as a deployed stack finds its topics: by
// pattern, at run time.
type Plan struct {
	// Topics are seeded with Options.PerPartition records each; the apps
	// produce to and consume Topics[0].
	Topics []kafkalocal.Topic
	// Bulk are many small topics the patterns select too, seeded with
	// Options.BulkPerPartition records each.
	Bulk []kafkalocal.Topic
	// Unselected are topics on the source that the selection must leave
	// alone (an internal-looking one, an excluded one): seeded like Bulk,
	// and checked to get neither a mapping nor a target topic.
	Unselected []kafkalocal.Topic
	// Late is a topic the patterns select that is created, and written
	// to, only after replication runs: the next reconcile run finds it
	// and it arrives complete.
	Late kafkalocal.Topic
	// Patterns and Excluded are the selection (TOPIC_PATTERNS,
	// EXCLUDED_TOPIC_PATTERNS).
	Patterns, Excluded []string
}

// bulkNames are the stems of the bulk topics' names, used in turn.
var bulkNames = []string{"clicks", "carts", "invoices", "shipments"}

// NewPlan names every topic under the prefix ns (for example "demo."):
// ns+"orders" (6 partitions, the apps' topic), ns+"payments" (3) and
// ns+"audit.events" (2); bulk topics ns+"<stem>-NN" of 2 partitions; the
// unselected ns+"cache-internal" (internal by its suffix) and
// ns+"scratch-00" (excluded); the late ns+"returns-00" (2 partitions).
// The selection includes the pattern QuoteMeta(ns)+".+" and excludes
// QuoteMeta(ns)+"scratch-.*".
func NewPlan(ns string, bulk int) Plan {
	p := Plan{
		Topics:     []kafkalocal.Topic{{Name: ns + "orders", Partitions: 6}, {Name: ns + "payments", Partitions: 3}, {Name: ns + "audit.events", Partitions: 2}},
		Unselected: []kafkalocal.Topic{{Name: ns + "cache-internal", Partitions: 1}, {Name: ns + "scratch-00", Partitions: 1}},
		Late:       kafkalocal.Topic{Name: ns + "returns-00", Partitions: 2},
		Patterns:   []string{regexp.QuoteMeta(ns) + ".+"},
		Excluded:   []string{regexp.QuoteMeta(ns) + "scratch-.*"},
	}
	per := (bulk + len(bulkNames) - 1) / len(bulkNames)
	for i := 0; i < bulk; i++ {
		name := fmt.Sprintf("%s%s-%02d", ns, bulkNames[i/max(per, 1)], i%max(per, 1))
		p.Bulk = append(p.Bulk, kafkalocal.Topic{Name: name, Partitions: 2})
	}
	return p
}

// DemoBulkTopics is how many bulk topics the demo's plan has.
const DemoBulkTopics = 60

// DemoPlan is `make demo`'s plan: NewPlan("demo.", DemoBulkTopics).
func DemoPlan() Plan { return NewPlan("demo.", DemoBulkTopics) }

// Selected are the topics the selection must pick before Late exists:
// Topics, then Bulk.
func (p Plan) Selected() []kafkalocal.Topic {
	return append(append([]kafkalocal.Topic{}, p.Topics...), p.Bulk...)
}

// SourceTopics are the topics created on the source at the start: every
// topic but Late.
func (p Plan) SourceTopics() []kafkalocal.Topic {
	return append(p.Selected(), p.Unselected...)
}

// All are every topic of the plan, Late included.
func (p Plan) All() []kafkalocal.Topic {
	return append(p.SourceTopics(), p.Late)
}

func names(ts []kafkalocal.Topic) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

func partitionCount(ts []kafkalocal.Topic) int {
	n := 0
	for _, t := range ts {
		n += int(t.Partitions)
	}
	return n
}
