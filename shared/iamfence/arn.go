package iamfence

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ClusterARNError says a cluster ARN is not an MSK cluster ARN
// (arn:PARTITION:kafka:REGION:ACCOUNT:cluster/NAME/UUID).
type ClusterARNError struct {
	ARN     string
	Problem string // what is wrong, e.g. "the service is "iam", not "kafka""
}

func (e *ClusterARNError) Error() string {
	return fmt.Sprintf("%q is not an MSK cluster ARN (arn:PARTITION:kafka:REGION:ACCOUNT:cluster/NAME/UUID): %s", e.ARN, e.Problem)
}

// TopicNameError says a topic name is not a legal Kafka topic name, so it
// cannot name a topic ARN.
type TopicNameError struct {
	Topic   string
	Problem string
}

func (e *TopicNameError) Error() string {
	return fmt.Sprintf("topic %q: %s", e.Topic, e.Problem)
}

// RoleNameError says a role is neither an IAM role name nor an IAM role ARN
// (arn:PARTITION:iam::ACCOUNT:role/optional/path/NAME).
type RoleNameError struct {
	Input   string
	Problem string
}

func (e *RoleNameError) Error() string {
	return fmt.Sprintf("%q is not an IAM role name or role ARN: %s", e.Input, e.Problem)
}

// ErrNoTopics is returned when there is no topic to fence: a fence on no
// topic would deny nothing.
var ErrNoTopics = errors.New("no topics to fence")

var (
	partitionRe   = regexp.MustCompile(`^aws(-[a-z]+)*$`)
	regionRe      = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountRe     = regexp.MustCompile(`^[0-9]{12}$`)
	clusterPartRe = regexp.MustCompile(`^[0-9A-Za-z-]+$`)
	topicRe       = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	roleNameRe    = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
)

// maxTopicLen is Kafka's limit on a topic name's length.
const maxTopicLen = 249

// TopicARNs returns the IAM resource ARN of each topic on the MSK cluster
// clusterARN, in the order given: cluster
// arn:PARTITION:kafka:REGION:ACCOUNT:cluster/NAME/UUID and topic T give
// arn:PARTITION:kafka:REGION:ACCOUNT:topic/NAME/UUID/T, the topic resource
// form of MSK IAM access control. A malformed cluster ARN is a
// *ClusterARNError, an illegal topic name a *TopicNameError, and no topics
// at all is ErrNoTopics. Since a legal topic name has no '*' or '?', every
// ARN names exactly one topic, never a pattern.
func TopicARNs(clusterARN string, topics []string) ([]string, error) {
	prefix, err := topicPrefix(clusterARN)
	if err != nil {
		return nil, err
	}
	if len(topics) == 0 {
		return nil, ErrNoTopics
	}
	out := make([]string, 0, len(topics))
	for _, t := range topics {
		if err := checkTopic(t); err != nil {
			return nil, err
		}
		out = append(out, prefix+t)
	}
	return out, nil
}

// topicPrefix checks a cluster ARN and returns its topic ARN prefix,
// arn:PARTITION:kafka:REGION:ACCOUNT:topic/NAME/UUID/.
func topicPrefix(clusterARN string) (string, error) {
	bad := func(format string, a ...any) error {
		return &ClusterARNError{ARN: clusterARN, Problem: fmt.Sprintf(format, a...)}
	}
	f := strings.Split(clusterARN, ":")
	if len(f) != 6 || f[0] != "arn" {
		return "", bad("want 6 colon-separated fields starting with arn, got %d", len(f))
	}
	partition, service, region, account, resource := f[1], f[2], f[3], f[4], f[5]
	switch {
	case !partitionRe.MatchString(partition):
		return "", bad("partition %q is not aws or aws-*", partition)
	case service != "kafka":
		return "", bad("the service is %q, not kafka", service)
	case !regionRe.MatchString(region):
		return "", bad("region %q is not a region name", region)
	case !accountRe.MatchString(account):
		return "", bad("account %q is not 12 digits", account)
	}
	r := strings.Split(resource, "/")
	if len(r) != 3 || r[0] != "cluster" {
		return "", bad("the resource %q is not cluster/NAME/UUID", resource)
	}
	if !clusterPartRe.MatchString(r[1]) {
		return "", bad("cluster name %q is empty or has characters other than letters, digits and '-'", r[1])
	}
	if !clusterPartRe.MatchString(r[2]) {
		return "", bad("cluster UUID %q is empty or has characters other than letters, digits and '-'", r[2])
	}
	return strings.Join([]string{"arn", partition, "kafka", region, account, "topic/" + r[1] + "/" + r[2] + "/"}, ":"), nil
}

func checkTopic(t string) error {
	switch {
	case t == "":
		return &TopicNameError{Topic: t, Problem: "empty"}
	case t == "." || t == "..":
		return &TopicNameError{Topic: t, Problem: `"." and ".." are not topic names`}
	case len(t) > maxTopicLen:
		return &TopicNameError{Topic: t, Problem: fmt.Sprintf("longer than Kafka's %d characters", maxTopicLen)}
	case !topicRe.MatchString(t):
		return &TopicNameError{Topic: t, Problem: "a Kafka topic name has only letters, digits, '.', '_' and '-'"}
	}
	return nil
}

// RoleName returns the role name of an IAM role name or role ARN: a name
// (1 to 64 of letters, digits and +=,.@_-) is returned as it is, and
// arn:PARTITION:iam::ACCOUNT:role/optional/path/NAME gives NAME, which is
// what PutRolePolicy takes. Anything else, including an STS assumed-role
// ARN, is a *RoleNameError.
//
// The ARN's account is not compared with the caller's: a role ARN of
// another account names the caller's role of the same name.
func RoleName(arnOrName string) (string, error) {
	bad := func(format string, a ...any) error {
		return &RoleNameError{Input: arnOrName, Problem: fmt.Sprintf(format, a...)}
	}
	if !strings.HasPrefix(arnOrName, "arn:") {
		if !roleNameRe.MatchString(arnOrName) {
			return "", bad("a role name is 1 to 64 of letters, digits and +=,.@_-")
		}
		return arnOrName, nil
	}
	f := strings.SplitN(arnOrName, ":", 6)
	if len(f) != 6 {
		return "", bad("want 6 colon-separated fields, got %d", len(f))
	}
	partition, service, region, account, resource := f[1], f[2], f[3], f[4], f[5]
	switch {
	case !partitionRe.MatchString(partition):
		return "", bad("partition %q is not aws or aws-*", partition)
	case service == "sts":
		return "", bad("an STS assumed-role ARN names a session; give the role's IAM ARN or name")
	case service != "iam":
		return "", bad("the service is %q, not iam", service)
	case region != "":
		return "", bad("an IAM ARN has no region, got %q", region)
	case !accountRe.MatchString(account):
		return "", bad("account %q is not 12 digits", account)
	case !strings.HasPrefix(resource, "role/"):
		return "", bad("the resource %q is not role/[path/]NAME", resource)
	}
	name := resource[strings.LastIndexByte(resource, '/')+1:]
	if !roleNameRe.MatchString(name) {
		return "", bad("role name %q is not 1 to 64 of letters, digits and +=,.@_-", name)
	}
	return name, nil
}
