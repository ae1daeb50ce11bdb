package rundetails

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func cluster(t *testing.T) *kgo.Client {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

type value struct {
	Name  string  `json:"name"`
	Items []int64 `json:"items"`
}

// A value read back by its Ref equals what was put, also when it spans
// several records, and a second Put under the same key leaves the first
// readable.
func TestPutGetRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := New(cluster(t), "")
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Ensure(ctx); err != nil {
		t.Fatalf("Ensure on an existing topic: %v", err)
	}
	cfg, err := kadm.NewClient(s.cl).DescribeTopicConfigs(ctx, DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := cfg.On(DefaultTopic, nil); err != nil || !hasConfig(c, "cleanup.policy", "delete") || !hasConfig(c, "retention.ms", "7776000000") {
		t.Fatalf("details topic configs: %+v %v", c, err)
	}
	small := value{Name: "small", Items: []int64{1, 2, 3}}
	big := value{Name: strings.Repeat("x", 10), Items: make([]int64, 200_000)} // ~400 KiB of JSON
	for i := range big.Items {
		big.Items[i] = int64(i) * 7919
	}
	r1, err := s.Put(ctx, "run/a", small)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Put(ctx, "run/b", big)
	if err != nil {
		t.Fatal(err)
	}
	r3, err := s.Put(ctx, "run/a", value{Name: "again"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r2.Offsets) < 2 {
		t.Fatalf("a %d-byte value took %d record(s); want it split", r2.Bytes, len(r2.Offsets))
	}
	for _, c := range []struct {
		ref  Ref
		want value
	}{{r1, small}, {r2, big}, {r3, value{Name: "again"}}} {
		var got value
		if err := s.Get(ctx, c.ref, &got); err != nil {
			t.Fatal(err)
		}
		if got.Name != c.want.Name || len(got.Items) != len(c.want.Items) {
			t.Fatalf("Get(%s) = %q with %d items; want %q with %d", c.ref.Key, got.Name, len(got.Items), c.want.Name, len(c.want.Items))
		}
		for i := range got.Items {
			if got.Items[i] != c.want.Items[i] {
				t.Fatalf("Get(%s) item %d = %d; want %d", c.ref.Key, i, got.Items[i], c.want.Items[i])
			}
		}
	}
	// A Ref pointing at another value's record is refused, not misread.
	bad := r1
	bad.Offsets = []int64{r3.Offsets[0]}
	var got value
	var me *MissingError
	if err := s.Get(ctx, bad, &got); !errors.As(err, &me) {
		t.Fatalf("Get with a wrong offset = %v; want *MissingError", err)
	}
}

func hasConfig(c kadm.ResourceConfig, k, v string) bool {
	for _, x := range c.Configs {
		if x.Key == k && x.Value != nil && *x.Value == v {
			return true
		}
	}
	return false
}
