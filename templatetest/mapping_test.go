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
// default, and AT_TIMESTAMP only with a timestamp and a warning.
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

	// Each mapping passes the timestamp exactly when it starts AT_TIMESTAMP.
	p := findResource(t, tpl, "Mapping&{TopicName}").Node.get("Properties")
	if fn, arg := p.get("StartingPosition").intrinsic(); fn != "Ref" || arg.str() != "StartingPosition" {
		t.Errorf("the mapping's StartingPosition must be !Ref StartingPosition")
	}
	fn, arg := p.get("StartingPositionTimestamp").intrinsic()
	if fn != "Fn::If" || len(arg.List) != 3 || arg.List[0].str() != "IsAtTimestamp" ||
		strings.TrimSpace(dump(arg.List[1])) != "Ref StartingPositionTimestamp" || strings.TrimSpace(dump(arg.List[2])) != "Ref AWS::NoValue" {
		t.Errorf("the mapping's StartingPositionTimestamp must be !If [IsAtTimestamp, !Ref StartingPositionTimestamp, !Ref AWS::NoValue], got %s", dump(p.get("StartingPositionTimestamp")))
	}
	if c := strings.Join(strings.Fields(dump(tpl.get("Conditions", "IsAtTimestamp"))), " "); c != "Fn::Equals Ref StartingPosition AT_TIMESTAMP" {
		t.Errorf("condition IsAtTimestamp is %q", c)
	}
	if strings.Contains(dump(tpl.get("Resources")), "LATEST") {
		t.Error("a resource mentions LATEST")
	}
}
