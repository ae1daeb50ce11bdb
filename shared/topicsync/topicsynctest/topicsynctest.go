// Package topicsynctest holds test helpers for code that creates and checks
// topics with kadm: the provisioner's and topicsync's own tests. Tests only.
package topicsynctest

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

// CreateTopic creates a topic with the partition count and configs, or
// fails the test.
func CreateTopic(t testing.TB, cl *kadm.Client, name string, partitions int32, configs map[string]string) {
	t.Helper()
	m := map[string]*string{}
	for k, v := range configs {
		m[k] = kadm.StringPtr(v)
	}
	r, err := cl.CreateTopic(context.Background(), partitions, -1, m, name)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
}

// Partitions returns the topic's partition count, read fresh (not from the
// client's metadata cache), or 0 if the topic does not exist.
func Partitions(t testing.TB, cl *kadm.Client, topic string) int {
	t.Helper()
	td, err := cl.ListTopics(kadm.WithAuthorizedOps(context.Background()), topic)
	if err != nil {
		t.Fatal(err)
	}
	if td[topic].Err != nil {
		return 0
	}
	return len(td[topic].Partitions)
}

// Config returns the topic's value for a config key, or "".
func Config(t testing.TB, cl *kadm.Client, topic, key string) string {
	t.Helper()
	rcs, err := cl.DescribeTopicConfigs(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rcs[0].Configs {
		if c.Key == key {
			return c.MaybeValue()
		}
	}
	return ""
}
