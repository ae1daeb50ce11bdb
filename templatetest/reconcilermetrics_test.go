package templatetest

import (
	"testing"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
)

// TestReconcilerAlarmsWatchEmittedMetrics: every alarm on the reconciler's
// own metrics (namespace MetricsNamespace, dimension FunctionName = the
// provisioner function) names a metric the reconciler's report emits, and
// the alarms cover the two a user must hear about: mappings that do not
// poll and partitions whose first records were never copied.
func TestReconcilerAlarmsWatchEmittedMetrics(t *testing.T) {
	emitted := map[string]bool{}
	for _, m := range (reconcile.Report{}).Metrics() {
		emitted[m.Name] = true
	}
	watched := map[string]bool{}
	for _, r := range resources(loadTemplate(t)) {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		p := r.Node.get("Properties")
		if p.get("Namespace").get("Ref").str() != "MetricsNamespace" {
			continue
		}
		onReconciler := false
		for _, d := range p.get("Dimensions").List {
			if d.get("Name").str() == "FunctionName" && d.get("Value").get("Ref").str() == "ProvisionerFunction" {
				onReconciler = true
			}
		}
		if !onReconciler {
			continue
		}
		name := p.get("MetricName").str()
		if !emitted[name] {
			t.Errorf("%s watches %q, which the reconciler never emits (it emits %v)", r, name, sortedSet(emitted))
		}
		watched[name] = true
	}
	for _, want := range []string{reconcile.MetricMappingsNotPolling, reconcile.MetricReplicationGaps} {
		if !watched[want] {
			t.Errorf("no alarm watches the reconciler's %s", want)
		}
	}
}
