package replicate

import (
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
)

// encodeEvent builds a self-managed Kafka event for recs exactly as the
// event source mapping emulator does.
func encodeEvent(t *testing.T, recs []*kgo.Record) []byte {
	t.Helper()
	return esm.NewEncoder("", []string{"localhost:9092"}).Append(nil, recs)
}

// errorType is the errorType Lambda reports for err: the Go type name.
func errorType(err error) string {
	t := reflect.TypeOf(err)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

var _ = errors.New
