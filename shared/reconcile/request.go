package reconcile

import (
	"fmt"
	"regexp"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
)

// Tags every mapping the reconciler creates carries.
const (
	TagTopic = "kmig:topic" // the source topic
	TagStack = "kmig:stack" // STACK_NAME, when set
)

// MappingRequest is the CreateEventSourceMapping request for topic's
// mapping: the replicator, the one topic, consumer group
// GroupIDPrefix+topic, StartingPosition TRIM_HORIZON (the group is seeded
// before the mapping is created, so Lambda starts from its commits), the
// batch settings, the source access configurations, and the tags.
//
// Source access configurations, as the per-topic template built them:
//   - MSK: SASL_SCRAM_512_AUTH (scram-sha-512) or
//     CLIENT_CERTIFICATE_TLS_AUTH (mtls) with SOURCE_SECRET_ARN; none for
//     iam (the function's role) and tls.
//   - self-managed: one VPC_SUBNET per subnet, one VPC_SECURITY_GROUP per
//     group; SASL_SCRAM_512_AUTH, SASL_SCRAM_256_AUTH or
//     CLIENT_CERTIFICATE_TLS_AUTH with SOURCE_SECRET_ARN; and
//     SERVER_ROOT_CA_CERTIFICATE with SOURCE_CA_SECRET_ARN when set.
//
// The mapping is created Enabled.
func (c Config) MappingRequest(topic string) *lambda.CreateEventSourceMappingInput {
	in := &lambda.CreateEventSourceMappingInput{
		FunctionName:                   aws.String(c.ReplicatorFunction),
		Topics:                         []string{topic},
		StartingPosition:               types.EventSourcePositionTrimHorizon,
		BatchSize:                      aws.Int32(c.BatchSize),
		MaximumBatchingWindowInSeconds: aws.Int32(c.BatchingWindowSeconds),
		Enabled:                        aws.Bool(true),
		Tags:                           map[string]string{TagTopic: topic},
	}
	if c.StackName != "" {
		in.Tags[TagStack] = c.StackName
	}
	group := c.GroupID(topic)
	var authType types.SourceAccessType
	switch c.Source.Auth {
	case kafkaconn.AuthSCRAM512:
		authType = types.SourceAccessTypeSaslScram512Auth
	case kafkaconn.AuthSCRAM256:
		authType = types.SourceAccessTypeSaslScram256Auth
	case kafkaconn.AuthMTLS:
		authType = types.SourceAccessTypeClientCertificateTlsAuth
	}
	if c.SourceKind == SourceMSK {
		in.EventSourceArn = aws.String(c.SourceClusterArn)
		in.AmazonManagedKafkaEventSourceConfig = &types.AmazonManagedKafkaEventSourceConfig{ConsumerGroupId: aws.String(group)}
		if authType != "" && authType != types.SourceAccessTypeSaslScram256Auth {
			in.SourceAccessConfigurations = []types.SourceAccessConfiguration{{Type: authType, URI: aws.String(c.Source.SecretARN)}}
		}
		return in
	}
	in.SelfManagedEventSource = &types.SelfManagedEventSource{Endpoints: map[string][]string{
		string(types.EndPointTypeKafkaBootstrapServers): append([]string(nil), c.Source.Bootstrap...),
	}}
	in.SelfManagedKafkaEventSourceConfig = &types.SelfManagedKafkaEventSourceConfig{ConsumerGroupId: aws.String(group)}
	var sac []types.SourceAccessConfiguration
	for _, s := range c.SubnetIDs {
		sac = append(sac, types.SourceAccessConfiguration{Type: types.SourceAccessTypeVpcSubnet, URI: aws.String("subnet:" + s)})
	}
	for _, g := range c.SecurityGroupIDs {
		sac = append(sac, types.SourceAccessConfiguration{Type: types.SourceAccessTypeVpcSecurityGroup, URI: aws.String("security_group:" + g)})
	}
	if authType != "" {
		sac = append(sac, types.SourceAccessConfiguration{Type: authType, URI: aws.String(c.Source.SecretARN)})
	}
	if c.Source.CASecretARN != "" {
		sac = append(sac, types.SourceAccessConfiguration{Type: types.SourceAccessTypeServerRootCaCertificate, URI: aws.String(c.Source.CASecretARN)})
	}
	in.SourceAccessConfigurations = sac
	return in
}

// MaxGroupIDLength is Lambda's limit on a mapping's ConsumerGroupId
// (AmazonManagedKafkaEventSourceConfig and
// SelfManagedKafkaEventSourceConfig: "Maximum length of 200").
const MaxGroupIDLength = 200

// groupIDPattern is Lambda's documented pattern for ConsumerGroupId,
// [a-zA-Z0-9-\/*:_+=.@-]*, anchored.
var groupIDPattern = regexp.MustCompile(`^[a-zA-Z0-9\-/*:_+=.@]*$`)

// GroupIDError is a mapping's consumer group ID (prefix + topic) that
// Lambda would refuse: longer than MaxGroupIDLength, or with a character
// outside Lambda's pattern. The reconciler reports such a topic and skips
// it; the other topics proceed.
type GroupIDError struct {
	Topic   string // "" when the prefix alone is at fault
	GroupID string
	Length  int  // GroupID's length in characters
	BadChar rune // the first character Lambda does not allow; 0 when only too long
}

func (e *GroupIDError) Error() string {
	what := fmt.Sprintf("the consumer group ID %q of topic %q", e.GroupID, e.Topic)
	if e.Topic == "" {
		what = fmt.Sprintf("the consumer group ID prefix %q", e.GroupID)
	}
	if e.BadChar != 0 {
		return fmt.Sprintf("%s contains %q, which Lambda does not allow in a ConsumerGroupId (allowed: letters, digits and - / * : _ + = . @)", what, e.BadChar)
	}
	return fmt.Sprintf("%s is %d characters, over Lambda's ConsumerGroupId limit of %d; use a shorter %s", what, e.Length, MaxGroupIDLength, EnvConsumerGroupIDPrefix)
}

// CheckGroupID returns a *GroupIDError when id, the consumer group ID of
// topic's mapping, breaks Lambda's ConsumerGroupId limits.
func CheckGroupID(topic, id string) error {
	n := utf8.RuneCountInString(id)
	if n > MaxGroupIDLength {
		return &GroupIDError{Topic: topic, GroupID: id, Length: n}
	}
	if !groupIDPattern.MatchString(id) {
		e := &GroupIDError{Topic: topic, GroupID: id, Length: n}
		for _, r := range id {
			if !groupIDPattern.MatchString(string(r)) {
				e.BadChar = r
				break
			}
		}
		return e
	}
	return nil
}
