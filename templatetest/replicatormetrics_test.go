package templatetest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/telemetry"
)

// replicatorEmits returns the metric names the replicator's EMF line
// declares, read from a line the emitter writes for a batch with every
// count and a latency.
func replicatorEmits(t *testing.T) map[string]bool {
	t.Helper()
	var buf bytes.Buffer
	m := telemetry.BatchMetrics{RecordsWritten: 1, BytesWritten: 1, DuplicatesSkipped: 1, RecordsFiltered: 1, RecordsDeadLettered: 1, RecordsAborted: 1, Latencies: []time.Duration{time.Millisecond}}
	if err := m.WriteEMF(&buf, "ns", "fn", time.Now()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Metrics []struct{ Name string }
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("EMF line %s: %v", buf.Bytes(), err)
	}
	emitted := map[string]bool{}
	for _, d := range doc.AWS.CloudWatchMetrics {
		for _, m := range d.Metrics {
			emitted[m.Name] = true
		}
	}
	if len(emitted) == 0 {
		t.Fatalf("the EMF line %s declares no metric", buf.Bytes())
	}
	return emitted
}

// TestReplicatorMetricsMatchTemplate: every alarm and dashboard graph on a
// metric in the MetricsNamespace names a metric its function emits (the
// replicator's EMF line, or the reconciler's report), every metric the
// replicator emits is on the dashboard, and an alarm tells the user when
// records are dead-lettered.
func TestReplicatorMetricsMatchTemplate(t *testing.T) {
	tpl := loadTemplate(t)
	emits := map[string]map[string]bool{ // function resource -> metric names
		"ReplicatorFunction":  replicatorEmits(t),
		"ProvisionerFunction": {},
	}
	for _, m := range (reconcile.Report{}).Metrics() {
		emits["ProvisionerFunction"][m.Name] = true
	}

	alarmed := map[string]bool{}
	for _, r := range resources(tpl) {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		p := r.Node.get("Properties")
		if p.get("Namespace").get("Ref").str() != "MetricsNamespace" {
			continue
		}
		fn := ""
		for _, d := range p.get("Dimensions").List {
			if d.get("Name").str() == telemetry.DimensionFunctionName {
				fn = d.get("Value").get("Ref").str()
			}
		}
		name := p.get("MetricName").str()
		switch emitted, ok := emits[fn]; {
		case !ok:
			t.Errorf("%s watches %q of %q, no function whose metrics are known", r, name, fn)
		case !emitted[name]:
			t.Errorf("%s watches %q, which %s never emits (it emits %v)", r, name, fn, sortedSet(emitted))
		case fn == "ReplicatorFunction":
			alarmed[name] = true
		}
	}
	if !alarmed[telemetry.MetricRecordsDeadLettered] {
		t.Errorf("no alarm watches the replicator's %s", telemetry.MetricRecordsDeadLettered)
	}

	shown := map[string]bool{}
	graphs := 0
	for _, g := range dashboardMetrics(t, findResource(t, tpl, "Dashboard")) {
		if g.namespace != "MetricsNamespace" {
			continue
		}
		graphs++
		emitted, ok := emits[g.function]
		switch {
		case !ok:
			t.Errorf("the dashboard graphs %q of %q, no function whose metrics are known", g.metric, g.function)
		case !emitted[g.metric]:
			t.Errorf("the dashboard graphs %q, which %s never emits (it emits %v)", g.metric, g.function, sortedSet(emitted))
		case g.function == "ReplicatorFunction":
			shown[g.metric] = true
		}
	}
	if graphs == 0 {
		t.Fatal("the dashboard graphs no metric of the MetricsNamespace")
	}
	for name := range emits["ReplicatorFunction"] {
		if !shown[name] {
			t.Errorf("the replicator emits %s, which the dashboard does not show", name)
		}
	}
}

// graphed is one metric a dashboard graph shows, with the namespace and the
// FunctionName dimension as the template resources (parameter or resource
// logical IDs) they refer to.
type graphed struct{ namespace, metric, function string }

// dashboardMetrics reads the metrics of every graph in the dashboard's
// body, an Fn::Sub of a JSON document and its variables. It expands the
// dashboard shorthand ("." repeats the entry above it, "..." the whole row
// above) and maps each ${Var} to what the variable refers to.
func dashboardMetrics(t *testing.T, r resource) []graphed {
	t.Helper()
	sub := r.Node.get("Properties", "DashboardBody", "Fn::Sub")
	if sub == nil || len(sub.List) != 2 {
		t.Fatalf("%s: DashboardBody is not an Fn::Sub of a body and its variables", r)
	}
	refs := map[string]string{}
	for name, v := range sub.List[1].Map {
		refs["${"+name+"}"] = v.get("Ref").str()
	}
	resolve := func(s string) string {
		if ref, ok := refs[s]; ok {
			return ref
		}
		return s
	}
	var body struct {
		Widgets []struct {
			Properties struct {
				Metrics [][]any
			}
		}
	}
	if err := json.Unmarshal([]byte(sub.List[0].str()), &body); err != nil {
		t.Fatalf("%s: body: %v", r, err)
	}
	var out []graphed
	for _, w := range body.Widgets {
		var above []string
		for _, row := range w.Properties.Metrics {
			var labels []string
			for _, e := range row {
				s, ok := e.(string)
				if !ok {
					continue // rendering options, or a metric math expression
				}
				switch {
				case s == "...":
					labels = append(labels, above...)
				case s == "." && len(labels) < len(above):
					labels = append(labels, above[len(labels)])
				default:
					labels = append(labels, s)
				}
			}
			if len(labels) == 0 {
				continue // an expression
			}
			if len(labels) < 2 || len(labels)%2 != 0 {
				t.Fatalf("%s: dashboard metric %v is not namespace, name and dimension pairs", r, row)
			}
			above = labels
			g := graphed{namespace: resolve(labels[0]), metric: labels[1]}
			for i := 2; i+1 < len(labels); i += 2 {
				if labels[i] == telemetry.DimensionFunctionName {
					g.function = resolve(labels[i+1])
				}
			}
			if strings.HasPrefix(g.namespace, "${") {
				t.Fatalf("%s: %s is not a variable of the Fn::Sub", r, g.namespace)
			}
			out = append(out, g)
		}
	}
	return out
}
