package iamfence

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
)

// PolicyName is the name of the inline policy the fence puts on each role.
const PolicyName = "kmig-cutover-fence"

// StatementID is the Sid of the fence policy's one statement.
const StatementID = "KmigCutoverFence"

// MaxDocumentChars is IAM's limit on the inline policies of one role, added
// up (whitespace not counted). The fence document alone must fit; a role
// whose other inline policies leave less room makes PutRolePolicy fail
// with LimitExceeded, and Apply then removes what it put.
const MaxDocumentChars = 10240

// TooLargeError says the fence document for the topics does not fit in
// one role's inline policy size limit.
type TooLargeError struct {
	Topics int // topic ARNs asked for (after deduplication)
	Fit    int // how many of them, in sorted order, would fit
	Chars  int // the document's length
	Limit  int // MaxDocumentChars
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the fence policy for %d topics is %d characters, over IAM's %d-character inline policy limit per role; %d topics fit",
		e.Topics, e.Chars, e.Limit, e.Fit)
}

// TopicARNError says a resource given to Document is not the ARN of one
// MSK topic.
type TopicARNError struct {
	ARN     string
	Problem string
}

func (e *TopicARNError) Error() string {
	return fmt.Sprintf("%q is not an MSK topic ARN: %s", e.ARN, e.Problem)
}

// The document's JSON shape. Field order is the output order.
type policyDoc struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid      string   `json:"Sid"`
	Effect   string   `json:"Effect"`
	Action   []string `json:"Action"`
	Resource []string `json:"Resource"`
}

// Document returns the fence policy for the topic ARNs (from TopicARNs) as
// compact JSON:
//
//	{"Version":"2012-10-17","Statement":[{"Sid":"KmigCutoverFence","Effect":"Deny",
//	 "Action":["kafka-cluster:WriteData"],"Resource":[ARN,...]}]}
//
// with the ARNs sorted and deduplicated, so the same topics always give the
// same document. Every ARN must be an MSK topic ARN without IAM wildcards
// ('*', '?'), so the deny covers exactly the named topics (*TopicARNError
// otherwise). No ARNs is ErrNoTopics; a document over MaxDocumentChars is
// a *TooLargeError saying how many topics would fit.
//
// The deny is kafka-cluster:WriteData on the topics only. In MSK IAM
// access control kafka-cluster:WriteDataIdempotently is authorized against
// the cluster resource, not a topic: denying it on the cluster would stop
// the role's idempotent producers on every topic, including ones that are
// not migrated. Denying WriteData on a topic is enough, since every
// produce to it, idempotent or not, needs WriteData on it.
func Document(topicARNs []string) (string, error) {
	if len(topicARNs) == 0 {
		return "", ErrNoTopics
	}
	seen := make(map[string]bool, len(topicARNs))
	arns := make([]string, 0, len(topicARNs))
	for _, a := range topicARNs {
		if err := checkTopicARN(a); err != nil {
			return "", err
		}
		if !seen[a] {
			seen[a] = true
			arns = append(arns, a)
		}
	}
	return fitDocument(arns)
}

// fitDocument sorts the distinct resources arns and returns their
// document, or a *TooLargeError saying how many of them would fit.
func fitDocument(arns []string) (string, error) {
	sort.Strings(arns)
	doc, err := marshalDoc(arns)
	if err != nil {
		return "", err
	}
	if len(doc) <= MaxDocumentChars {
		return doc, nil
	}
	// The largest prefix that fits; a longer prefix is never shorter.
	fit := sort.Search(len(arns)+1, func(n int) bool {
		d, _ := marshalDoc(arns[:n])
		return len(d) > MaxDocumentChars
	}) - 1
	return "", &TooLargeError{Topics: len(arns), Fit: fit, Chars: len(doc), Limit: MaxDocumentChars}
}

func marshalDoc(arns []string) (string, error) {
	b, err := json.Marshal(policyDoc{
		Version: "2012-10-17",
		Statement: []statement{{
			Sid:      StatementID,
			Effect:   "Deny",
			Action:   []string{"kafka-cluster:WriteData"},
			Resource: arns,
		}},
	})
	if err != nil {
		return "", fmt.Errorf("encoding the fence policy: %w", err)
	}
	return string(b), nil
}

// checkTopicARN accepts arn:PARTITION:kafka:REGION:ACCOUNT:topic/NAME/UUID/TOPIC
// as TopicARNs makes it.
func checkTopicARN(a string) error {
	if strings.ContainsAny(a, "*?") {
		return &TopicARNError{ARN: a, Problem: "it has an IAM wildcard ('*' or '?'), so it could deny more than the named topics"}
	}
	i := strings.Index(a, ":topic/")
	if i < 0 {
		return &TopicARNError{ARN: a, Problem: "want arn:PARTITION:kafka:REGION:ACCOUNT:topic/NAME/UUID/TOPIC"}
	}
	r := strings.Split(a[i+len(":topic/"):], "/")
	if len(r) != 3 {
		return &TopicARNError{ARN: a, Problem: "want arn:PARTITION:kafka:REGION:ACCOUNT:topic/NAME/UUID/TOPIC"}
	}
	// The cluster part must be a valid cluster ARN.
	if _, err := topicPrefix(a[:i] + ":cluster/" + r[0] + "/" + r[1]); err != nil {
		return &TopicARNError{ARN: a, Problem: err.Error()}
	}
	if err := checkTopic(r[2]); err != nil {
		return &TopicARNError{ARN: a, Problem: err.Error()}
	}
	return nil
}

// decodeDocument undoes the URL encoding of the PolicyDocument that
// GetRolePolicy returns, with url.QueryUnescape. A document that does not
// decode is returned as it is, so it compares unequal rather than failing.
func decodeDocument(s string) string {
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return s
}

// sameDocument reports whether two policy documents are the same JSON
// value: key order and whitespace do not matter, anything else does.
// A document that is not JSON equals nothing.
func sameDocument(a, b string) bool {
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
