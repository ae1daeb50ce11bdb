package reconcile

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
)

const (
	secretArn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_src-AbCdEf"
	caArn     = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:src-ca-AbCdEf"
	mskArn1   = "arn:aws:kafka:eu-west-1:123456789012:cluster/src/abcd-1234"
)

func baseEnv() map[string]string {
	return map[string]string{
		"SOURCE_BOOTSTRAP_SERVERS": "b1:9096,b2:9096",
		"SOURCE_AUTH":              "scram-sha-512",
		"SOURCE_SECRET_ARN":        secretArn,
		"TARGET_BOOTSTRAP_SERVERS": "t1:9098",
		"TARGET_AUTH":              "iam",
		EnvTopicPatterns:           `orders\..*,payments`,
		EnvReplicatorFunctionName:  "kmig-replicator",
		EnvSourceKind:              "SELF_MANAGED",
		"AWS_REGION":               "eu-west-1",
	}
}

func load(t *testing.T, over map[string]string) (Config, error) {
	t.Helper()
	env := baseEnv()
	for k, v := range over {
		if v == "<unset>" {
			delete(env, k)
			continue
		}
		env[k] = v
	}
	return LoadConfig(config.Map(env))
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.GroupIDPrefix != "kmig-" || c.BatchSize != 500 || c.BatchingWindowSeconds != 1 || c.StartingPosition != TrimHorizon ||
		c.DeadLetterTopic != "kmig.dead-letter" || c.DetailsTopic != "kmig.cutover-details" || c.ReplicationFactor != -1 ||
		c.MetricsNamespace != "KafkaMskMigrator" || c.SourceKind != SourceSelfManaged || c.CreateDeadLetterTopic {
		t.Fatalf("defaults: %+v", c)
	}
	for topic, want := range map[string]bool{"orders.eu": true, "payments": true, "payments.x": false, "kmig.dead-letter": false, "__consumer_offsets": false} {
		if got := c.Selection.Match(topic); got != want {
			t.Errorf("Match(%q) = %v, want %v", topic, got, want)
		}
	}
	c, err = load(t, map[string]string{EnvDeadLetterTopic: "orders.dlq", EnvCutoverDetailsTopic: "orders.details"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Selection.Match("orders.dlq") || c.Selection.Match("orders.details") {
		t.Error("the dead-letter or details topic is selected")
	}
}

// Each bad variable is a *config.Error naming it.
func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		over map[string]string
		want string
	}{
		{map[string]string{EnvTopicPatterns: "<unset>"}, EnvTopicPatterns},
		{map[string]string{EnvTopicPatterns: "orders(["}, EnvTopicPatterns},
		{map[string]string{EnvExcludedTopicPatterns: "a,(("}, EnvExcludedTopicPatterns},
		{map[string]string{EnvReplicatorFunctionName: "<unset>"}, EnvReplicatorFunctionName},
		{map[string]string{EnvSourceKind: "kinesis"}, EnvSourceKind},
		{map[string]string{EnvSourceKind: "MSK"}, EnvSourceClusterArn},
		{map[string]string{EnvSourceKind: "MSK", EnvSourceClusterArn: "arn:aws:kafka:x"}, EnvSourceClusterArn},
		{map[string]string{EnvSourceKind: "MSK", EnvSourceClusterArn: mskArn1, "SOURCE_CA_SECRET_ARN": caArn}, "SOURCE_CA_SECRET_ARN"},
		{map[string]string{EnvSourceKind: "MSK", EnvSourceClusterArn: mskArn1, "SOURCE_AUTH": "scram-sha-256"}, "SOURCE_AUTH"},
		{map[string]string{"SOURCE_AUTH": "iam", "SOURCE_SECRET_ARN": "<unset>"}, "SOURCE_AUTH"},
		{map[string]string{EnvBatchSize: "0"}, EnvBatchSize},
		{map[string]string{EnvBatchSize: "10001"}, EnvBatchSize},
		{map[string]string{EnvMaximumBatchingWindow: "301"}, EnvMaximumBatchingWindow},
		{map[string]string{EnvStartingPosition: "LATEST"}, EnvStartingPosition},
		{map[string]string{EnvStartingPosition: "AT_TIMESTAMP"}, EnvStartingPositionTime},
		{map[string]string{EnvStartingPosition: "AT_TIMESTAMP", EnvStartingPositionTime: "yesterday"}, EnvStartingPositionTime},
		{map[string]string{EnvStartingPositionTime: "1700000000"}, EnvStartingPositionTime},
		{map[string]string{EnvConsumerGroupIDPrefix: "kmig prefix"}, EnvConsumerGroupIDPrefix},
		{map[string]string{EnvDeadLetterTopic: "bad topic"}, EnvDeadLetterTopic},
		{map[string]string{EnvCutoverDetailsTopic: "bad/topic"}, EnvCutoverDetailsTopic},
		{map[string]string{EnvTopicConfigOverrides: "{not json"}, EnvTopicConfigOverrides},
		{map[string]string{EnvTopicConfigOverrides: `{"unclean.leader.election.enable":"true"}`}, EnvTopicConfigOverrides},
		{map[string]string{EnvTopicReplicationFactor: "0"}, EnvTopicReplicationFactor},
		{map[string]string{EnvCopyACLs: "maybe"}, EnvCopyACLs},
		{map[string]string{EnvRecordErrorPolicy: "drop"}, EnvRecordErrorPolicy},
		{map[string]string{EnvTransforms: `[{"type":"rename","topics":{"a":"x","b":"x"}}]`}, EnvTransforms},
	} {
		_, err := load(t, tc.over)
		var ce *config.Error
		if !errors.As(err, &ce) {
			t.Errorf("%v: error %v, want a *config.Error", tc.over, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %q does not name %s", tc.over, err, tc.want)
		}
		if strings.Contains(err.Error(), "admin-secret") {
			t.Errorf("error echoes a secret: %v", err)
		}
	}
}

func TestLoadConfigAtTimestamp(t *testing.T) {
	c, err := load(t, map[string]string{EnvStartingPosition: "AT_TIMESTAMP", EnvStartingPositionTime: "1700000000"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.StartingTime.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("StartingTime %v", c.StartingTime)
	}
	// The mapping still starts at TRIM_HORIZON: its group is seeded at the
	// timestamp's offsets first.
	if p := c.MappingRequest("orders.eu").StartingPosition; p != types.EventSourcePositionTrimHorizon {
		t.Fatalf("StartingPosition %s", p)
	}
}

func sacs(in []types.SourceAccessConfiguration) []string {
	var out []string
	for _, s := range in {
		out = append(out, string(s.Type)+"="+aws.ToString(s.URI))
	}
	return out
}

// The request builder, per source kind and auth kind, as the per-topic
// template built each mapping.
func TestMappingRequest(t *testing.T) {
	self := map[string]string{EnvSubnetIDs: "subnet-1,subnet-2", EnvSecurityGroupIDs: "sg-1", EnvStackName: "mig", EnvBatchSize: "1000", EnvMaximumBatchingWindow: "5"}
	msk := map[string]string{EnvSourceKind: "MSK", EnvSourceClusterArn: mskArn1, EnvSubnetIDs: "subnet-1", EnvSecurityGroupIDs: "sg-1"}
	vpc := []string{"VPC_SUBNET=subnet:subnet-1", "VPC_SUBNET=subnet:subnet-2", "VPC_SECURITY_GROUP=security_group:sg-1"}
	for _, tc := range []struct {
		name string
		over map[string]string
		want []string
	}{
		{"self-managed scram-sha-512", self, append(vpc[:3:3], "SASL_SCRAM_512_AUTH="+secretArn)},
		{"self-managed scram-sha-256", with(self, "SOURCE_AUTH", "scram-sha-256"), append(vpc[:3:3], "SASL_SCRAM_256_AUTH="+secretArn)},
		{"self-managed mtls", with(self, "SOURCE_AUTH", "mtls"), append(vpc[:3:3], "CLIENT_CERTIFICATE_TLS_AUTH="+secretArn)},
		{"self-managed tls", with(with(self, "SOURCE_AUTH", "tls"), "SOURCE_SECRET_ARN", "<unset>"), vpc},
		{"self-managed private CA", with(self, "SOURCE_CA_SECRET_ARN", caArn), append(vpc[:3:3], "SASL_SCRAM_512_AUTH="+secretArn, "SERVER_ROOT_CA_CERTIFICATE="+caArn)},
		{"self-managed without VPC", map[string]string{}, []string{"SASL_SCRAM_512_AUTH=" + secretArn}},
		{"msk scram-sha-512", msk, []string{"SASL_SCRAM_512_AUTH=" + secretArn}},
		{"msk mtls", with(msk, "SOURCE_AUTH", "mtls"), []string{"CLIENT_CERTIFICATE_TLS_AUTH=" + secretArn}},
		{"msk iam", with(with(msk, "SOURCE_AUTH", "iam"), "SOURCE_SECRET_ARN", "<unset>"), nil},
		{"msk tls", with(with(msk, "SOURCE_AUTH", "tls"), "SOURCE_SECRET_ARN", "<unset>"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.over)
			if err != nil {
				t.Fatal(err)
			}
			in := c.MappingRequest("orders.eu")
			if got := sacs(in.SourceAccessConfigurations); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("source access configurations\n got %v\nwant %v", got, tc.want)
			}
			if aws.ToString(in.FunctionName) != "kmig-replicator" || len(in.Topics) != 1 || in.Topics[0] != "orders.eu" ||
				in.StartingPosition != types.EventSourcePositionTrimHorizon || !aws.ToBool(in.Enabled) {
				t.Errorf("request %+v", in)
			}
			wantTags := map[string]string{TagTopic: "orders.eu"}
			if c.StackName != "" {
				wantTags[TagStack] = c.StackName
			}
			if !maps.Equal(in.Tags, wantTags) {
				t.Errorf("tags %v, want %v", in.Tags, wantTags)
			}
			if c.SourceKind == SourceMSK {
				if aws.ToString(in.EventSourceArn) != mskArn1 || in.SelfManagedEventSource != nil || in.SelfManagedKafkaEventSourceConfig != nil ||
					aws.ToString(in.AmazonManagedKafkaEventSourceConfig.ConsumerGroupId) != "kmig-orders.eu" {
					t.Errorf("MSK request %+v", in)
				}
				return
			}
			if in.EventSourceArn != nil || in.AmazonManagedKafkaEventSourceConfig != nil ||
				aws.ToString(in.SelfManagedKafkaEventSourceConfig.ConsumerGroupId) != "kmig-orders.eu" ||
				strings.Join(in.SelfManagedEventSource.Endpoints["KAFKA_BOOTSTRAP_SERVERS"], ",") != "b1:9096,b2:9096" {
				t.Errorf("self-managed request %+v", in)
			}
			if aws.ToInt32(in.BatchSize) != c.BatchSize || aws.ToInt32(in.MaximumBatchingWindowInSeconds) != c.BatchingWindowSeconds {
				t.Errorf("batching %d/%d", aws.ToInt32(in.BatchSize), aws.ToInt32(in.MaximumBatchingWindowInSeconds))
			}
		})
	}
}

func with(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	out[k] = v
	return out
}

func TestCheckGroupID(t *testing.T) {
	if err := CheckGroupID("t", "kmig-"+strings.Repeat("a", 195)); err != nil {
		t.Errorf("200 characters refused: %v", err)
	}
	var ge *GroupIDError
	if err := CheckGroupID("t", "kmig-"+strings.Repeat("a", 196)); !errors.As(err, &ge) || ge.Length != 201 || ge.BadChar != 0 {
		t.Errorf("201 characters: %v", err)
	}
	if err := CheckGroupID("t", "kmig prefix-t"); !errors.As(err, &ge) || ge.BadChar != ' ' {
		t.Errorf("a space: %v", err)
	}
}

func TestReportEMF(t *testing.T) {
	rep := Report{TopicsSelected: 3, MappingsCreated: []string{"a"}, MappingsPolling: 2, PartitionsAdded: 4,
		DeletedSourceTopics: []string{"x"}, Gaps: []*GapError{{Topic: "a", Partition: 1, From: 0, To: 5}}, Seconds: 1.5}
	var buf bytes.Buffer
	if err := rep.WriteEMF(&buf, "NS", "kmig-provisioner", time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{MetricTopicsSelected: 3, MetricMappingsCreated: 1, MetricMappingsPolling: 2, MetricMappingsNotPolling: 0,
		MetricPartitionsAdded: 4, MetricDeletedSourceTopics: 1, MetricUnselectedMappings: 0, MetricReplicationGaps: 1, MetricReconcileSeconds: 1.5}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	cw := doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if cw["Namespace"] != "NS" || len(cw["Metrics"].([]any)) != len(want) || doc["FunctionName"] != "kmig-provisioner" || doc["level"] != "INFO" {
		t.Errorf("EMF envelope %v", buf.String())
	}
}

// The log line's lists are cut; the report itself and its counts are not.
func TestReportLogLineBounded(t *testing.T) {
	var rep Report
	for i := range 3 * MaxLoggedItems {
		rep.PartitionsSeeded = append(rep.PartitionsSeeded, PartitionOffset{Topic: "a-rather-long-topic-name-for-the-test", Partition: int32(i)})
	}
	l := rep.forLog()
	if len(l.PartitionsSeeded) != MaxLoggedItems || !l.ListsCut || len(rep.PartitionsSeeded) != 3*MaxLoggedItems {
		t.Fatalf("cut to %d (ListsCut %v), report keeps %d", len(l.PartitionsSeeded), l.ListsCut, len(rep.PartitionsSeeded))
	}
}
