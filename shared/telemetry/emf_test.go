package telemetry

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// lambdaSeverity orders the application log levels Lambda filters on,
// from most detail to least.
var lambdaSeverity = map[string]int{"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "ERROR": 4, "FATAL": 5}

// lambdaKeeps models Lambda's application log-level filtering of one line
// written to stdout by a function with LoggingConfig LogFormat JSON and
// ApplicationLogLevel appLevel, as the Lambda Developer Guide documents it
// in "Log-level filtering":
//
//	"your function code must output log events to stdout or stderr as JSON
//	formatted objects that contain a key value pair with the key "level"."
//	"If the "level" value field is invalid or missing, Lambda will assign
//	the log output the level INFO. For Lambda to use the timestamp field,
//	you must specify the time in valid RFC 3339 timestamp format. If you
//	don't supply a valid timestamp, Lambda will assign the log the level
//	INFO and add a timestamp for you."
//	"When you select a log level, Lambda sends logs at that level and lower
//	to CloudWatch Logs. For example, if you set a function's application
//	log level to WARN, Lambda doesn't send log outputs at the INFO and
//	DEBUG levels."
//
// ("Lower" is lower in detail: TRACE, DEBUG, INFO, WARN, ERROR, FATAL.)
// The page makes no exception for Embedded Metric Format lines.
func lambdaKeeps(t *testing.T, line []byte, appLevel string) bool {
	t.Helper()
	threshold, ok := lambdaSeverity[appLevel]
	if !ok {
		t.Fatalf("%q is not a Lambda application log level", appLevel)
	}
	level := "INFO"
	var doc map[string]any
	if json.Unmarshal(line, &doc) == nil {
		l, _ := doc["level"].(string)
		ts, _ := doc["timestamp"].(string)
		_, tsErr := time.Parse(time.RFC3339Nano, ts)
		if _, known := lambdaSeverity[strings.ToUpper(l)]; known && tsErr == nil {
			level = strings.ToUpper(l)
		}
	}
	return lambdaSeverity[level] >= threshold
}

func TestLambdaKeepsModelsTheDocumentedRule(t *testing.T) {
	ts := `"timestamp":"2026-11-02T16:51:31.587199Z"`
	for _, tc := range []struct {
		line, appLevel string
		keep           bool
	}{
		{`{"msg":"no level"}`, "INFO", true},
		{`{"msg":"no level"}`, "WARN", false},
		{`{"level":"debug",` + ts + `}`, "INFO", false},
		{`{"level":"warn",` + ts + `}`, "WARN", true},
		{`{"level":"ERROR",` + ts + `}`, "ERROR", true},
		{`{"level":"WARN",` + ts + `}`, "ERROR", false},
		{`{"level":"NOTICE",` + ts + `}`, "WARN", false},             // invalid level: INFO
		{`{"level":"ERROR"}`, "WARN", false},                         // no timestamp: INFO
		{`{"level":"ERROR","timestamp":"yesterday"}`, "WARN", false}, // invalid timestamp: INFO
		{`not json`, "WARN", false},
	} {
		if got := lambdaKeeps(t, []byte(tc.line), tc.appLevel); got != tc.keep {
			t.Errorf("%s at %s: keep = %v, want %v", tc.line, tc.appLevel, got, tc.keep)
		}
	}
}

// TestEMFSurvivesLogLevelFiltering: at every application log level the
// template offers (and TRACE and FATAL), the metrics line is one Lambda
// keeps, and it still carries the metrics.
func TestEMFSurvivesLogLevelFiltering(t *testing.T) {
	m := BatchMetrics{RecordsWritten: 7, BytesWritten: 700, RecordsDeadLettered: 1, Latencies: []time.Duration{3 * time.Millisecond}}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, appLevel := range []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"} {
		t.Run(appLevel, func(t *testing.T) {
			t.Setenv("AWS_LAMBDA_LOG_LEVEL", appLevel)
			var buf bytes.Buffer
			if err := m.WriteEMF(&buf, "KafkaMskMigrator", "kmig-replicator", now); err != nil {
				t.Fatal(err)
			}
			line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			if bytes.Contains(line, []byte("\n")) {
				t.Fatalf("not one line: %s", buf.Bytes())
			}
			if !lambdaKeeps(t, line, appLevel) {
				t.Fatalf("Lambda drops this metrics line at log level %s: %s", appLevel, line)
			}
			var doc struct {
				AWS struct {
					Timestamp         int64
					CloudWatchMetrics []struct{ Namespace string }
				} `json:"_aws"`
				FunctionName        string
				RecordsWritten      int64
				BytesWritten        int64
				RecordsDeadLettered int64
				ReplicationLatency  []float64
				Level               string `json:"level"`
			}
			if err := json.Unmarshal(line, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.AWS.Timestamp != now.UnixMilli() || len(doc.AWS.CloudWatchMetrics) != 1 || doc.AWS.CloudWatchMetrics[0].Namespace != "KafkaMskMigrator" ||
				doc.FunctionName != "kmig-replicator" || doc.RecordsWritten != 7 || doc.BytesWritten != 700 || doc.RecordsDeadLettered != 1 ||
				len(doc.ReplicationLatency) != 1 || doc.ReplicationLatency[0] != 3 {
				t.Errorf("metrics changed: %s", line)
			}
			if want := map[string]string{"WARN": "WARN", "ERROR": "ERROR", "FATAL": "FATAL"}[appLevel]; want != "" && doc.Level != want || want == "" && doc.Level != "INFO" {
				t.Errorf("level %q at application log level %s", doc.Level, appLevel)
			}
		})
	}
}

func TestEMFLevelWithoutLoggingConfig(t *testing.T) {
	for _, in := range []string{"", "bogus", "debug", "info"} {
		if got := EMFLevel(in); got != "INFO" {
			t.Errorf("EMFLevel(%q) = %q, want INFO", in, got)
		}
	}
	if got := EMFLevel(" warn "); got != "WARN" {
		t.Errorf("EMFLevel(warn) = %q", got)
	}
}
