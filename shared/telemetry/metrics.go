package telemetry

import (
	"encoding/json"
	"io"
	"os"
	"slices"
	"time"
)

// Metric is one value of a metrics line.
type Metric struct {
	Name  string
	Unit  string // a CloudWatch unit: Count, Seconds, Milliseconds, Bytes
	Value float64
}

// WriteMetrics writes one Embedded Metric Format line with metrics under
// namespace and the dimensions (one dimension set holding every key), with
// a "level" and "timestamp" as WriteEMF writes them, so Lambda's log-level
// filtering keeps it.
func WriteMetrics(w io.Writer, namespace string, dimensions map[string]string, metrics []Metric, now time.Time) error {
	type def struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	defs := make([]def, 0, len(metrics))
	doc := map[string]any{
		"level":     EMFLevel(os.Getenv(LogLevelEnv)),
		"timestamp": now.UTC().Format(time.RFC3339Nano),
	}
	keys := make([]string, 0, len(dimensions))
	for k, v := range dimensions {
		keys = append(keys, k)
		doc[k] = v
	}
	slices.Sort(keys)
	for _, m := range metrics {
		defs = append(defs, def{m.Name, m.Unit})
		doc[m.Name] = m.Value
	}
	doc["_aws"] = map[string]any{
		"Timestamp": now.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  namespace,
			"Dimensions": [][]string{keys},
			"Metrics":    defs,
		}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
