package cutoverrun

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// TestBadInputFailsInValidate proves that bad inputs end in the InvalidInput
// Fail state straight from Validate, with the field named, and that nothing
// on either cluster or any mapping changed.
func TestBadInputFailsInValidate(t *testing.T) {
	r := newRig(t, kafkalocal.SecuritySCRAMACL, 2)
	ctx := ctxFor(t, 90*time.Second)
	r.produce(ctx, 0, 20, 2)
	r.waitReplicated(ctx)
	before := r.snapshot(ctx)
	for _, tc := range []struct {
		name  string
		mod   func(map[string]any)
		field string
	}{
		{"unknown field", func(m map[string]any) { m["dryrun"] = true }, "dryrun"},
		{"negative timeout", func(m map[string]any) { m["drainTimeoutSeconds"] = -5 }, "drainTimeoutSeconds"},
		{"unknown hook type", func(m map[string]any) { m["hooks"] = map[string]any{"stopConsumers": map[string]any{"type": "email"}} }, "hooks.stopConsumers.type"},
		{"empty group list", func(m map[string]any) { m["groups"] = []string{} }, "groups"},
		{"missing topic", func(m map[string]any) { m["topics"] = []string{"nope"} }, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := r.baseInput()
			tc.mod(in)
			res := r.run(ctx, in, Options{})
			if res.Status != "FAILED" {
				t.Fatalf("status %s, want FAILED", res.Status)
			}
			if got, want := res.Entered(), []string{"Validate", "InvalidInput"}; !reflect.DeepEqual(got, want) {
				t.Errorf("states %v, want %v", got, want)
			}
			if !strings.Contains(res.Cause, tc.field) {
				t.Errorf("cause %q does not name %q", res.Cause, tc.field)
			}
		})
	}
	if after := r.snapshot(ctx); !reflect.DeepEqual(before, after) {
		t.Errorf("state changed:\nbefore %+v\nafter  %+v", before, after)
	}
}
