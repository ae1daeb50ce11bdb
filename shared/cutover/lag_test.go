package cutover

import (
	"encoding/json"
	"reflect"
	"testing"
)

// Each lag reason reads as the sentence errors and the plan show, and a
// partition's reasons survive the JSON of the details topic and report.
func TestLagReasons(t *testing.T) {
	reasons := map[LagReason]string{
		{Kind: LagOpenTransaction, At: 7, Want: 9}:                    "a transaction is open on the source from offset 7",
		{Kind: LagTargetBehind, At: -1, Want: 4}:                      "target holds source offsets up to -1, source last is 4",
		{Kind: LagReplicatorGroup, Group: "esm-1", At: -1, Want: 12}:  "replicator group esm-1 committed nothing of 12",
		{Kind: LagReplicatorGroup, Group: "esm-1", At: 0, Want: 12}:   "replicator group esm-1 committed 0 of 12",
		{Kind: LagGroup, Group: "billing committed", At: 3, Want: 12}: "group billing committed committed 3 of 12",
	}
	p := PartitionReport{Topic: "orders", Partition: 2}
	for r, want := range reasons {
		if got := r.String(); got != want {
			t.Errorf("%+v reads %q, want %q", r, got, want)
		}
		p.Lag = append(p.Lag, r)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back PartitionReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Fatalf("round trip through %s: %+v, want %+v", b, back, p)
	}
}
