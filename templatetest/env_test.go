package templatetest

import (
	"strconv"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provision"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/replicate"
)

// lambdaProvided are set by the Lambda runtime, never by the template.
var lambdaProvided = map[string]bool{
	"AWS_REGION": true, "AWS_DEFAULT_REGION": true, "AWS_LAMBDA_FUNCTION_NAME": true,
	"AWS_LAMBDA_LOG_LEVEL": true, "AWS_LAMBDA_LOG_FORMAT": true, "AWS_XRAY_CONTEXT_MISSING": true,
	"_X_AMZN_TRACE_ID": true,
}

// sampleValues are valid values for each variable, so that a loader reads
// every variable instead of stopping at the first error.
var sampleValues = map[string]string{
	"AWS_REGION":                      "eu-west-1",
	"SOURCE_BOOTSTRAP_SERVERS":        "kafka-1.example.internal:9096,kafka-2.example.internal:9096",
	"SOURCE_AUTH":                     "scram-sha-512",
	"SOURCE_SECRET_ARN":               "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_source-AbCdEf",
	"SOURCE_CA_SECRET_ARN":            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kmig-source-ca-AbCdEf",
	"TARGET_CA_SECRET_ARN":            "",
	"TARGET_BOOTSTRAP_SERVERS":        "b-1.target.abc123.c2.kafka.eu-west-1.amazonaws.com:9098",
	"TARGET_AUTH":                     "iam",
	"TARGET_SECRET_ARN":               "",
	"TARGET_COMPRESSION":              "lz4",
	"TARGET_MAX_MESSAGE_BYTES":        "1048588",
	"TRANSFORMS":                      "[]",
	"RECORD_ERROR_POLICY":             "dead-letter",
	"DEAD_LETTER_TOPIC":               "kmig.dead-letter",
	"PROVENANCE_HEADER":               "true",
	"METRICS_NAMESPACE":               "KafkaMskMigrator",
	"TRANSACTIONAL_ID_PREFIX":         "kmig-",
	"REPLICATOR_FUNCTION_NAME":        "kmig-ReplicatorFunction-AbCdEf",
	"APPROVAL_TOPIC_ARN":              "arn:aws:sns:eu-west-1:123456789012:kmig-ApprovalTopic-AbCdEf",
	"SOURCE_CLUSTER_ARN":              "arn:aws:kafka:eu-west-1:123456789012:cluster/source/abcd1234-ab12-cd34-ef56-abcdef123456-1",
	"CUTOVER_DETAILS_TOPIC":           "kmig.cutover-details",
	"PRODUCER_ROLE_ARNS":              "arn:aws:iam::123456789012:role/orders-producer,arn:aws:iam::123456789012:role/apps/billing",
	"TOPIC_PATTERNS":                  `orders\..*,payments`,
	"EXCLUDED_TOPIC_PATTERNS":         `orders\.test\..*`,
	"CONSUMER_GROUP_ID_PREFIX":        "kmig-",
	"SOURCE_KIND":                     "SELF_MANAGED",
	"SUBNET_IDS":                      "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
	"SECURITY_GROUP_IDS":              "sg-0123456789abcdef0",
	"BATCH_SIZE":                      "500",
	"MAXIMUM_BATCHING_WINDOW_SECONDS": "1",
	"STARTING_POSITION":               "TRIM_HORIZON",
	"STARTING_POSITION_TIMESTAMP":     "0",
	"STACK_NAME":                      "kafka-msk-migrator",
	"TOPIC_CONFIG_OVERRIDES":          "{}",
	"TOPIC_REPLICATION_FACTOR":        "-1",
	"COPY_ACLS":                       "false",
}

type loader func(config.Env) error

// functionLoaders maps each function's logical ID to the LoadConfig its
// main calls.
var functionLoaders = map[string]loader{
	"ReplicatorFunction":  func(e config.Env) error { _, err := replicate.LoadConfig(e); return err },
	"CutoverFunction":     func(e config.Env) error { _, err := cutover.LoadConfig(e); return err },
	"ProvisionerFunction": func(e config.Env) error { _, err := provision.LoadConfig(e); return err },
}

// knownGaps lists variables the template sets (per the fixed contract)
// that a loader does not read yet, with the reason. The test fails when a
// listed gap is closed, so this list cannot go stale.
var knownGaps = map[string]map[string]string{}

func TestEnvironmentContract(t *testing.T) {
	tpl := loadTemplate(t)
	if g := tpl.get("Globals", "Function", "Environment"); g != nil {
		t.Fatal("Globals.Function.Environment is set; keep each function's variables on the function so this test sees them")
	}
	seenFunctions := map[string]bool{}
	for _, r := range resources(tpl) {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		seenFunctions[r.ID] = true
		t.Run(r.ID, func(t *testing.T) {
			load, ok := functionLoaders[r.ID]
			if !ok {
				t.Fatalf("no LoadConfig registered for %s", r.ID)
			}
			vars := r.Node.get("Properties", "Environment", "Variables")
			set := map[string]bool{}
			if vars != nil {
				for _, k := range vars.Keys {
					set[k] = true
					if lambdaProvided[k] {
						t.Errorf("the template sets %s, which Lambda itself provides", k)
					}
				}
			}
			env := map[string]string{}
			for k := range set {
				v, ok := sampleValues[k]
				if !ok {
					t.Fatalf("no sample value for %s; add one to sampleValues", k)
				}
				env[k] = v
			}
			env["AWS_REGION"] = sampleValues["AWS_REGION"]
			read := map[string]bool{}
			if err := load(config.Recording(env, read)); err != nil {
				t.Fatalf("LoadConfig with the template's variables: %v", err)
			}
			for _, k := range sortedSet(read) {
				if !set[k] && !lambdaProvided[k] {
					t.Errorf("%s reads %s, which the template does not set", r.ID, k)
				}
			}
			gaps := knownGaps[r.ID]
			for _, k := range sortedSet(set) {
				switch {
				case !read[k] && gaps[k] == "":
					t.Errorf("the template sets %s on %s, which its LoadConfig never reads", k, r.ID)
				case !read[k]:
					t.Logf("known gap: %s: %s", k, gaps[k])
				case gaps[k] != "":
					t.Errorf("%s now reads %s: remove it from knownGaps", r.ID, k)
				}
			}
		})
	}
	for id := range functionLoaders {
		if !seenFunctions[id] {
			t.Errorf("template.yaml has no function %s", id)
		}
	}
}

// TestCutoverFunctionTimeout: the cutover function's Timeout is the one its
// steps' budgets assume (cutover.FunctionTimeout), which is also the longest
// Task timeout of the definition that runs a step on it.
func TestCutoverFunctionTimeout(t *testing.T) {
	fn := findResource(t, loadTemplate(t), "CutoverFunction")
	got := fn.Node.get("Properties", "Timeout").str()
	if want := strconv.Itoa(int(cutover.FunctionTimeout / time.Second)); got != want {
		t.Errorf("CutoverFunction Timeout %q, want %s (cutover.FunctionTimeout)", got, want)
	}
}
