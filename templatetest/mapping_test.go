package templatetest

import (
	"slices"
	"strings"
	"testing"
)

// TestStartingPositionNeverLatest: Lambda's "Kafka starting positions"
// page says a mapping starting at LATEST could miss events while it is
// created or updated, and to specify TRIM_HORIZON or AT_TIMESTAMP so that
// none are missed. The template offers only those, TRIM_HORIZON by
// default, and AT_TIMESTAMP only with a timestamp and a warning; the
// reconciler, which seeds each mapping's group at that position, gets
// both parameters unchanged.
func TestStartingPositionNeverLatest(t *testing.T) {
	tpl := loadTemplate(t)
	sp := tpl.get("Parameters", "StartingPosition")
	var allowed []string
	for _, v := range sp.get("AllowedValues").List {
		allowed = append(allowed, v.str())
	}
	if !slices.Equal(allowed, []string{"TRIM_HORIZON", "AT_TIMESTAMP"}) {
		t.Errorf("StartingPosition AllowedValues %v, want [TRIM_HORIZON AT_TIMESTAMP]", allowed)
	}
	if sp.get("Default").str() != "TRIM_HORIZON" {
		t.Errorf("StartingPosition default %q, want TRIM_HORIZON", sp.get("Default").str())
	}
	if d := sp.get("Description").str(); !strings.Contains(d, "WARNING") || !strings.Contains(d, "never copied") {
		t.Errorf("StartingPosition description lacks the AT_TIMESTAMP warning: %q", d)
	}
	ts := tpl.get("Parameters", "StartingPositionTimestamp")
	if ts.get("Type").str() != "Number" || ts.get("Default").str() != "0" || ts.get("MinValue").str() != "0" {
		t.Errorf("StartingPositionTimestamp must be a Number, default 0, min 0: %s", dump(ts))
	}

	// AT_TIMESTAMP is refused without a timestamp, and a timestamp
	// without AT_TIMESTAMP.
	for _, r := range []string{"AtTimestampNeedsTimestamp", "TimestampOnlyWithAtTimestamp"} {
		rule := tpl.get("Rules", r)
		if rule == nil || !strings.Contains(dump(rule), "StartingPositionTimestamp") || !strings.Contains(dump(rule), "AT_TIMESTAMP") {
			t.Errorf("Rules lack %s on StartingPosition AT_TIMESTAMP and StartingPositionTimestamp", r)
		}
	}

	vars := findResource(t, tpl, "ProvisionerFunction").Node.get("Properties", "Environment", "Variables")
	for env, param := range map[string]string{"STARTING_POSITION": "StartingPosition", "STARTING_POSITION_TIMESTAMP": "StartingPositionTimestamp"} {
		if got := refName(vars.get(env)); got != param {
			t.Errorf("the reconciler's %s must be !Ref %s, got %s", env, param, dump(vars.get(env)))
		}
	}
	if strings.Contains(dump(tpl.get("Resources")), "LATEST") {
		t.Error("a resource mentions LATEST")
	}
}
