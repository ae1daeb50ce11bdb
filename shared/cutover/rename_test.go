package cutover

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

// TestValidateRefusesRenameOntoMigratedTopic: a run whose topics include
// both a renamed topic and a topic of its target name would commit two
// source partitions' offsets onto one target partition; Validate refuses
// it as invalid input before reading either cluster (it reads only the
// replicator's mappings, among whose topics the input chooses).
func TestValidateRefusesRenameOntoMigratedTopic(t *testing.T) {
	f := newFakeLambda(t0)
	f.add("a", "Enabled", 0)
	f.add("b", "Enabled", 0)
	f.topics = map[string][]string{"a": {"legacy.orders"}, "b": {"orders"}}
	h := New(Deps{Lambda: f, ReplicatorFunction: "kmig-replicator", Renames: transform.TopicMap{"legacy.orders": "orders"}})
	_, err := h.Handle(context.Background(), Request{Step: StepValidate,
		Input: []byte(`{"topics":["legacy.orders","orders"],"groups":["billing"],"fence":"none"}`)})
	var ie *InvalidInputError
	if !errors.As(err, &ie) || ie.Field != "topics" || !strings.Contains(err.Error(), `rename "legacy.orders" -> "orders"`) {
		t.Fatalf("Validate = %v, want *InvalidInputError on topics naming the rename", err)
	}
}
