package iamfence

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const testCluster = "arn:aws:kafka:us-east-1:123456789012:cluster/src-cluster/7d3b2a10-1c2d-4e5f-8a9b-0c1d2e3f4a5b-3"

func TestTopicARNs(t *testing.T) {
	got, err := TopicARNs(testCluster, []string{"orders", "payments.v1", "a_b-c"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"arn:aws:kafka:us-east-1:123456789012:topic/src-cluster/7d3b2a10-1c2d-4e5f-8a9b-0c1d2e3f4a5b-3/orders",
		"arn:aws:kafka:us-east-1:123456789012:topic/src-cluster/7d3b2a10-1c2d-4e5f-8a9b-0c1d2e3f4a5b-3/payments.v1",
		"arn:aws:kafka:us-east-1:123456789012:topic/src-cluster/7d3b2a10-1c2d-4e5f-8a9b-0c1d2e3f4a5b-3/a_b-c",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("TopicARNs =\n%q\nwant\n%q", got, want)
	}

	// Other partitions keep their partition.
	got, err = TopicARNs("arn:aws-cn:kafka:cn-north-1:123456789012:cluster/c/u", []string{"t"})
	if err != nil || len(got) != 1 || got[0] != "arn:aws-cn:kafka:cn-north-1:123456789012:topic/c/u/t" {
		t.Fatalf("aws-cn: %q, %v", got, err)
	}
}

func TestTopicARNsRejects(t *testing.T) {
	for _, tc := range []struct {
		name, arn string
		problem   string // in ClusterARNError.Problem
	}{
		{"empty", "", "6 colon-separated fields"},
		{"not an ARN", "src-cluster", "6 colon-separated fields"},
		{"too many fields", testCluster + ":x", "6 colon-separated fields"},
		{"bad partition", "arn:gcp:kafka:us-east-1:123456789012:cluster/c/u", `partition "gcp"`},
		{"other service", "arn:aws:iam:us-east-1:123456789012:cluster/c/u", `service is "iam"`},
		{"no region", "arn:aws:kafka::123456789012:cluster/c/u", `region ""`},
		{"short account", "arn:aws:kafka:us-east-1:12345:cluster/c/u", `account "12345"`},
		{"topic ARN", "arn:aws:kafka:us-east-1:123456789012:topic/c/u/t", "not cluster/NAME/UUID"},
		{"no UUID", "arn:aws:kafka:us-east-1:123456789012:cluster/c", "not cluster/NAME/UUID"},
		{"empty name", "arn:aws:kafka:us-east-1:123456789012:cluster//u", `cluster name ""`},
		{"wildcard UUID", "arn:aws:kafka:us-east-1:123456789012:cluster/c/*", `cluster UUID "*"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TopicARNs(tc.arn, []string{"t"})
			var e *ClusterARNError
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T), want *ClusterARNError", err, err)
			}
			if e.ARN != tc.arn || !strings.Contains(e.Problem, tc.problem) {
				t.Fatalf("ClusterARNError{%q, %q}, want ARN %q and a problem with %q", e.ARN, e.Problem, tc.arn, tc.problem)
			}
		})
	}

	for _, topic := range []string{"", ".", "..", "a*", "a?b", "a/b", "a b", strings.Repeat("t", 250)} {
		_, err := TopicARNs(testCluster, []string{"ok", topic})
		var e *TopicNameError
		if !errors.As(err, &e) || e.Topic != topic {
			t.Errorf("topic %q: err = %v, want *TopicNameError naming it", topic, err)
		}
	}
	if _, err := TopicARNs(testCluster, []string{strings.Repeat("t", 249)}); err != nil {
		t.Errorf("a 249-character topic: %v", err)
	}
	if _, err := TopicARNs(testCluster, nil); !errors.Is(err, ErrNoTopics) {
		t.Errorf("no topics: err = %v, want ErrNoTopics", err)
	}
}

func TestRoleName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"producer-orders", "producer-orders"},
		{"a+b=c,d.e@f_g-h", "a+b=c,d.e@f_g-h"},
		{strings.Repeat("r", 64), strings.Repeat("r", 64)},
		{"arn:aws:iam::123456789012:role/producer", "producer"},
		{"arn:aws:iam::123456789012:role/team/kafka/producer", "producer"},
		{"arn:aws-us-gov:iam::123456789012:role/service-role/p", "p"},
	} {
		got, err := RoleName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("RoleName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestRoleNameRejects(t *testing.T) {
	for _, tc := range []struct{ in, problem string }{
		{"", "1 to 64"},
		{strings.Repeat("r", 65), "1 to 64"},
		{"has space", "1 to 64"},
		{"a/b", "1 to 64"},
		{"arn:aws:iam::123456789012", "6 colon-separated"},
		{"arn:aws:sts::123456789012:assumed-role/producer/session", "assumed-role"},
		{"arn:aws:kafka::123456789012:role/p", `service is "kafka"`},
		{"arn:aws:iam:us-east-1:123456789012:role/p", "no region"},
		{"arn:aws:iam::12345678901x:role/p", "12 digits"},
		{"arn:aws:iam::123456789012:user/p", "not role/"},
		{"arn:aws:iam::123456789012:role/", `role name ""`},
		{"arn:aws:iam::123456789012:role/path/", `role name ""`},
		{"arn:foo:iam::123456789012:role/p", "partition"},
	} {
		_, err := RoleName(tc.in)
		var e *RoleNameError
		if !errors.As(err, &e) || e.Input != tc.in || !strings.Contains(e.Problem, tc.problem) {
			t.Errorf("RoleName(%q): err = %v, want *RoleNameError with %q", tc.in, err, tc.problem)
		}
	}
}
