package reconcile

import (
	"io"
	"sort"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/telemetry"
)

// Metric names of a run's report (EMF, dimension FunctionName).
const (
	MetricTopicsSelected      = "TopicsSelected"
	MetricMappingsCreated     = "MappingsCreated"
	MetricMappingsPolling     = "MappingsPolling"
	MetricMappingsNotPolling  = "MappingsNotPolling"
	MetricPartitionsAdded     = "PartitionsAdded"
	MetricDeletedSourceTopics = "DeletedSourceTopics"
	MetricUnselectedMappings  = "UnselectedMappings"
	MetricReconcileSeconds    = "ReconcileSeconds"
	// MetricReplicationGaps counts partitions reported as a *GapError;
	// alarm on it.
	MetricReplicationGaps = "ReplicationGaps"
)

// Problem is a topic and what is wrong with it.
type Problem struct {
	Topic  string `json:"topic"`
	Reason string `json:"reason"`
}

// MappingStatus is a mapping that does not poll, and why.
type MappingStatus struct {
	Topic  string `json:"topic"`
	UUID   string `json:"uuid"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	// Stuck marks a mapping still Creating after MappingStartTimeout.
	Stuck bool `json:"stuck,omitempty"`
}

// PartitionOffset is a committed start offset.
type PartitionOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Report is what a run found and did. It holds names, counts and offsets
// only, never a secret.
type Report struct {
	// TopicsSelected counts the source topics the patterns select.
	TopicsSelected int `json:"topicsSelected"`
	// TargetTopicsCreated counts target topics created.
	TargetTopicsCreated int `json:"targetTopicsCreated"`
	// PartitionsAdded counts partitions added to existing target topics.
	PartitionsAdded int `json:"partitionsAdded"`
	// MappingsCreated are the topics whose mapping this run created.
	MappingsCreated []string `json:"mappingsCreated,omitempty"`
	// MappingsPolling counts earlier mappings Enabled with a member in
	// their group.
	MappingsPolling int `json:"mappingsPolling"`
	// MappingsNotPolling are the earlier mappings that do not poll.
	MappingsNotPolling []MappingStatus `json:"mappingsNotPolling,omitempty"`
	// MappingsPaused are the topics whose mapping this run disabled to
	// seed new partitions, and enabled again.
	MappingsPaused []string `json:"mappingsPaused,omitempty"`
	// PartitionsSeeded are the commits this run made.
	PartitionsSeeded []PartitionOffset `json:"partitionsSeeded,omitempty"`
	// Gaps are new partitions read past their log start without the
	// records on the target.
	Gaps []*GapError `json:"gaps,omitempty"`
	// DeletedSourceTopics are topics of mappings that no longer exist on
	// the source; their target topics are left alone.
	DeletedSourceTopics []string `json:"deletedSourceTopics,omitempty"`
	// UnselectedMappings are topics with a mapping that the patterns no
	// longer select; the mappings are left alone.
	UnselectedMappings []string `json:"unselectedMappings,omitempty"`
	// Skipped are selected topics left out: a consumer group ID Lambda
	// would refuse, or a target topic topicsync refuses.
	Skipped []Problem `json:"skipped,omitempty"`
	// Pending are topics whose work waits for a later run.
	Pending []Problem `json:"pending,omitempty"`
	// Failed are topics whose work failed in this run.
	Failed []Problem `json:"failed,omitempty"`
	// Error is the run's error, if any.
	Error string `json:"error,omitempty"`
	// ListsCut says the log line's copy lists only the first
	// MaxLoggedItems of some list; the counts and metrics are whole.
	ListsCut bool `json:"listsCut,omitempty"`
	// Seconds is how long the run took.
	Seconds float64 `json:"seconds"`
}

func (r *Report) sort() {
	sort.Strings(r.MappingsCreated)
	sort.Strings(r.MappingsPaused)
	sort.Slice(r.MappingsNotPolling, func(i, j int) bool { return r.MappingsNotPolling[i].Topic < r.MappingsNotPolling[j].Topic })
	sort.Slice(r.PartitionsSeeded, func(i, j int) bool {
		a, b := r.PartitionsSeeded[i], r.PartitionsSeeded[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	sort.Slice(r.Gaps, func(i, j int) bool {
		a, b := r.Gaps[i], r.Gaps[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	sortedProblems(r.Skipped)
	sortedProblems(r.Pending)
	sortedProblems(r.Failed)
}

// WriteEMF writes the report's metrics as one EMF line, with the
// dimension FunctionName = functionName (the stack's alarms watch them so).
func (r Report) WriteEMF(w io.Writer, namespace, functionName string, now time.Time) error {
	return telemetry.WriteMetrics(w, namespace, map[string]string{telemetry.DimensionFunctionName: functionName}, r.Metrics(), now)
}

// Metrics are the report's metrics, every one a run emits.
func (r Report) Metrics() []telemetry.Metric {
	return []telemetry.Metric{
		{Name: MetricTopicsSelected, Unit: "Count", Value: float64(r.TopicsSelected)},
		{Name: MetricMappingsCreated, Unit: "Count", Value: float64(len(r.MappingsCreated))},
		{Name: MetricMappingsPolling, Unit: "Count", Value: float64(r.MappingsPolling)},
		{Name: MetricMappingsNotPolling, Unit: "Count", Value: float64(len(r.MappingsNotPolling))},
		{Name: MetricPartitionsAdded, Unit: "Count", Value: float64(r.PartitionsAdded)},
		{Name: MetricDeletedSourceTopics, Unit: "Count", Value: float64(len(r.DeletedSourceTopics))},
		{Name: MetricUnselectedMappings, Unit: "Count", Value: float64(len(r.UnselectedMappings))},
		{Name: MetricReplicationGaps, Unit: "Count", Value: float64(len(r.Gaps))},
		{Name: MetricReconcileSeconds, Unit: "Seconds", Value: r.Seconds},
	}
}

// MaxLoggedItems bounds each list of the report's log line, so the line
// stays well under CloudWatch Logs' 256 KB event limit at any topic count.
const MaxLoggedItems = 200

// forLog returns the report with each list cut to MaxLoggedItems.
func (r Report) forLog() Report {
	r.MappingsCreated = cut(r.MappingsCreated, &r.ListsCut)
	r.MappingsNotPolling = cut(r.MappingsNotPolling, &r.ListsCut)
	r.MappingsPaused = cut(r.MappingsPaused, &r.ListsCut)
	r.PartitionsSeeded = cut(r.PartitionsSeeded, &r.ListsCut)
	r.Gaps = cut(r.Gaps, &r.ListsCut)
	r.DeletedSourceTopics = cut(r.DeletedSourceTopics, &r.ListsCut)
	r.UnselectedMappings = cut(r.UnselectedMappings, &r.ListsCut)
	r.Skipped = cut(r.Skipped, &r.ListsCut)
	r.Pending = cut(r.Pending, &r.ListsCut)
	r.Failed = cut(r.Failed, &r.ListsCut)
	return r
}

func cut[T any](s []T, cutAny *bool) []T {
	if len(s) <= MaxLoggedItems {
		return s
	}
	*cutAny = true
	return s[:MaxLoggedItems]
}
