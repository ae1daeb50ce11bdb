package telemetry

import (
	"encoding/json"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Metric names the replicator publishes. Alarms and the dashboard in
// template.yaml use these names.
const (
	MetricRecordsWritten      = "RecordsWritten"
	MetricBytesWritten        = "BytesWritten"
	MetricDuplicatesSkipped   = "DuplicatesSkipped"
	MetricRecordsFiltered     = "RecordsFiltered"
	MetricRecordsDeadLettered = "RecordsDeadLettered"
	MetricRecordsAborted      = "RecordsAborted"
	MetricReplicationLatency  = "ReplicationLatency"
	DimensionFunctionName     = "FunctionName"
)

// BatchMetrics are one batch's counts. Every record of a successful batch
// ends in exactly one of written, skipped as a duplicate, filtered,
// dead-lettered or skipped as aborted, so the five counts add up to the
// batch size.
type BatchMetrics struct {
	RecordsWritten      int64
	BytesWritten        int64
	DuplicatesSkipped   int64
	RecordsFiltered     int64
	RecordsDeadLettered int64
	// RecordsAborted counts records of aborted source transactions
	// (and transaction markers) the poller delivered and the replicator
	// skipped. A poller reading read_committed never delivers any.
	RecordsAborted int64
	// Latencies holds now − source timestamp for written records,
	// sampled to at most 100 values (the EMF limit per metric).
	Latencies []time.Duration
}

// Add accumulates o into m.
func (m *BatchMetrics) Add(o BatchMetrics) {
	m.RecordsWritten += o.RecordsWritten
	m.BytesWritten += o.BytesWritten
	m.DuplicatesSkipped += o.DuplicatesSkipped
	m.RecordsFiltered += o.RecordsFiltered
	m.RecordsDeadLettered += o.RecordsDeadLettered
	m.RecordsAborted += o.RecordsAborted
	m.Latencies = append(m.Latencies, o.Latencies...)
}

// WriteEMF writes one Embedded Metric Format line to w (stdout in Lambda,
// where CloudWatch turns it into metrics without an API call).
//
// The line survives Lambda's application log-level filtering at every
// level: it carries a "level" (EMFLevel of the function's
// AWS_LAMBDA_LOG_LEVEL) and an RFC 3339 "timestamp". Lambda treats a JSON
// line without a valid level or timestamp as INFO, and drops INFO lines
// when the function's log level is WARN or ERROR.
func (m BatchMetrics) WriteEMF(w io.Writer, namespace, functionName string, now time.Time) error {
	type metric struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	lat := make([]float64, 0, len(m.Latencies))
	for _, d := range m.Latencies {
		lat = append(lat, float64(d.Milliseconds()))
	}
	sort.Float64s(lat)
	if len(lat) > 100 {
		sampled := make([]float64, 100)
		for i := range sampled {
			sampled[i] = lat[i*len(lat)/100]
		}
		sampled[99] = lat[len(lat)-1]
		lat = sampled
	}
	metrics := []metric{
		{MetricRecordsWritten, "Count"}, {MetricBytesWritten, "Bytes"}, {MetricDuplicatesSkipped, "Count"},
		{MetricRecordsFiltered, "Count"}, {MetricRecordsDeadLettered, "Count"}, {MetricRecordsAborted, "Count"},
	}
	doc := map[string]any{
		"level":     EMFLevel(os.Getenv(LogLevelEnv)),
		"timestamp": now.UTC().Format(time.RFC3339Nano),
		"_aws": map[string]any{
			"Timestamp": now.UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  namespace,
				"Dimensions": [][]string{{DimensionFunctionName}},
				"Metrics":    append(metrics, metric{MetricReplicationLatency, "Milliseconds"}),
			}},
		},
		DimensionFunctionName:     functionName,
		MetricRecordsWritten:      m.RecordsWritten,
		MetricBytesWritten:        m.BytesWritten,
		MetricDuplicatesSkipped:   m.DuplicatesSkipped,
		MetricRecordsFiltered:     m.RecordsFiltered,
		MetricRecordsDeadLettered: m.RecordsDeadLettered,
		MetricRecordsAborted:      m.RecordsAborted,
	}
	if len(lat) > 0 {
		doc[MetricReplicationLatency] = lat
	} else {
		// A metric declared without a value is dropped by CloudWatch
		// with a warning; declare latency only when there is some.
		doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Metrics"] = metrics
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// LogLevelEnv is the variable in which Lambda gives a function the
// application log level of its logging configuration.
const LogLevelEnv = "AWS_LAMBDA_LOG_LEVEL"

// EMFLevel is the "level" of a metrics line for a function whose
// application log level is appLevel: INFO, or appLevel itself when that
// is more severe (WARN, ERROR, FATAL). Lambda sends a line to CloudWatch
// Logs when its level is at or above the function's log level, so a
// metrics line is never filtered out, and it is labelled INFO whenever
// INFO lines are kept. An empty or unknown appLevel gives INFO.
func EMFLevel(appLevel string) string {
	switch l := strings.ToUpper(strings.TrimSpace(appLevel)); l {
	case "WARN", "ERROR", "FATAL":
		return l
	}
	return "INFO"
}
