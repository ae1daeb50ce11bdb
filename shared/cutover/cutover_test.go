package cutover

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
)

// TestParseInput checks input validation names the offending field.
func TestParseInput(t *testing.T) {
	for _, tc := range []struct {
		name, in, field string
	}{
		{"unknown field", `{"topics":["a"],"groups":["g"],"bogus":1}`, "bogus"},
		{"case-folded field", `{"topics":["a"],"groups":["g"],"dryrun":true}`, "dryrun"},
		{"unknown hook field", `{"topics":["a"],"groups":["g"],"hooks":{"stopProducers":{"type":"none","arn":"x"}}}`, "hooks.stopProducers.arn"},
		{"unknown hook", `{"topics":["a"],"groups":["g"],"hooks":{"pauseEverything":{"type":"none"}}}`, "hooks.pauseEverything"},
		{"negative timeout", `{"topics":["a"],"groups":["g"],"drainTimeoutSeconds":-1}`, "drainTimeoutSeconds"},
		{"zero quiet", `{"topics":["a"],"groups":["g"],"quietSeconds":0}`, "quietSeconds"},
		{"unknown hook type", `{"topics":["a"],"groups":["g"],"hooks":{"startConsumers":{"type":"email"}}}`, "hooks.startConsumers.type"},
		{"lambda without arn", `{"topics":["a"],"groups":["g"],"hooks":{"startConsumers":{"type":"lambda"}}}`, "hooks.startConsumers.functionArn"},
		{"empty groups", `{"topics":["a"],"groups":[]}`, "groups"},
		{"empty topics", `{"topics":[],"groups":["g"]}`, "topics"},
		{"duplicate topic", `{"topics":["a","a"],"groups":["g"]}`, "topics[1]"},
		{"bad pattern", `{"topics":["orders","orders.("],"groups":["g"]}`, "topics[1]"},
		{"empty pattern", `{"topics":["orders"," "],"groups":["g"]}`, "topics[1]"},
		{"bad fence", `{"topics":["a"],"groups":["g"],"fence":"wall"}`, "fence"},
		{"wrong type", `{"topics":"a","groups":["g"]}`, "topics"},
		{"iam without roles", `{"topics":["a"],"groups":["g"],"fence":"iam"}`, "producerRoles"},
		{"roles without iam", `{"topics":["a"],"groups":["g"],"producerRoles":["p"]}`, "producerRoles"},
		{"bad role", `{"topics":["a"],"groups":["g"],"fence":"iam","producerRoles":["p","a role"]}`, "producerRoles[1]"},
		{"bad role arn", `{"topics":["a"],"groups":["g"],"fence":"iam","producerRoles":["arn:aws:iam::1:user/u"]}`, "producerRoles[0]"},
		{"allow-everyone without acl", `{"topics":["a"],"groups":["g"],"fence":"none","allowEveryoneIfNoAclFound":true}`, "allowEveryoneIfNoAclFound"},
		{"allow-everyone not bool", `{"topics":["a"],"groups":["g"],"allowEveryoneIfNoAclFound":"yes"}`, "allowEveryoneIfNoAclFound"},
		{"not an object", `[1]`, "$"},
		{"trailing", `{"topics":["a"],"groups":["g"]} {}`, "$"},
		{"zero mapping timeout", `{"topics":["a"],"groups":["g"],"mappingTimeoutSeconds":0}`, "mappingTimeoutSeconds"},
		{"mapping timeout over an hour", `{"topics":["a"],"groups":["g"],"mappingTimeoutSeconds":3601}`, "mappingTimeoutSeconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseInput([]byte(tc.in), true)
			var ie *InvalidInputError
			if !errors.As(err, &ie) {
				t.Fatalf("err %v, want *InvalidInputError", err)
			}
			if ie.Field != tc.field {
				t.Errorf("field %q, want %q (%v)", ie.Field, tc.field, err)
			}
		})
	}
	c, err := ParseInput([]byte(`{"topics":["a"],"groups":["g"]}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Fence != FenceKindACL || c.QuietSeconds != DefaultQuietSeconds || c.MappingTimeoutSeconds != DefaultMappingTimeoutSeconds || c.Hooks.StopProducers.Type != HookNone {
		t.Errorf("defaults not applied: %+v", c)
	}
	c, err = ParseInput([]byte(`{"topics":["a"],"groups":["g"],"fence":"iam","producerRoles":["orders-producer","arn:aws:iam::123456789012:role/apps/billing"]}`), false)
	if err != nil || c.Fence != FenceKindIAM || len(c.ProducerRoles) != 2 {
		t.Errorf("iam fence input: %+v, %v", c, err)
	}
	c, err = ParseInput([]byte(`{"fence":"none"}`), false)
	if err != nil || len(c.TopicPatterns) != 0 || len(c.Topics) != 0 || len(c.Groups) != 0 {
		t.Errorf("topics and groups left out: %+v, %v; want both unresolved for Validate", c, err)
	}
	c, err = ParseInput([]byte(`{"topics":["orders\\..*","payments"],"groups":["z","a"]}`), false)
	if err != nil || !reflect.DeepEqual(c.TopicPatterns, []string{`orders\..*`, "payments"}) || !reflect.DeepEqual(c.Groups, []string{"a", "z"}) {
		t.Errorf("patterns: %+v, %v; want the entries as given and the groups sorted", c, err)
	}
	if _, err := ParseInput([]byte(`{"topics":["a"],"groups":["g"],"hooks":{"stopProducers":{"type":"approval"}}}`), false); err == nil {
		t.Error("approval hook accepted without APPROVAL_TOPIC_ARN")
	}
}

// TestACLMatchesTopic follows Kafka's resource pattern rules.
func TestACLMatchesTopic(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pattern kadm.ACLPattern
		topic   string
		want    bool
	}{
		{"orders", kadm.ACLPatternLiteral, "orders", true},
		{"orders", kadm.ACLPatternLiteral, "orders.v2", false},
		{"*", kadm.ACLPatternLiteral, "orders", true},
		{"ord", kadm.ACLPatternPrefixed, "orders", true},
		{"orders.", kadm.ACLPatternPrefixed, "orders", false},
		{"*", kadm.ACLPatternPrefixed, "orders", false}, // a prefix, not a wildcard
	} {
		d := kadm.DescribedACL{Type: kmsg.ACLResourceTypeTopic, Name: tc.name, Pattern: tc.pattern}
		if got := aclMatchesTopic(d, tc.topic); got != tc.want {
			t.Errorf("%v %q matches %q = %v, want %v", tc.pattern, tc.name, tc.topic, got, tc.want)
		}
	}
}

// TestSampleEvents keeps events/ valid input for the state machine.
func TestSampleEvents(t *testing.T) {
	for _, f := range []string{"cutover-input.json", "cutover-dry-run.json", "cutover-input-msk-iam.json", "cutover-input-open-cluster.json"} {
		raw, err := os.ReadFile("../../events/" + f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseInput(raw, true)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if c.DryRun != strings.Contains(f, "dry-run") {
			t.Errorf("%s: dryRun %v", f, c.DryRun)
		}
	}
}

// TestErrorNamesMatchDefinition checks the error types the cutover function
// can return against the names the state machines catch and retry by, in
// both directions. The types are read from this package's source: every
// exported type whose name ends in Error and that has an Error() string
// method, as its Go type name is the errorType Step Functions matches. Each
// must be caught by name in cutover.asl.json, unless its doc comment says it
// never occurs in a deployed function; and every name either definition
// catches or retries (other than States.* and Lambda.*) must be one of them.
func TestErrorNamesMatchDefinition(t *testing.T) {
	types, undeployed := errorTypes(t, ".")
	if len(types) == 0 {
		t.Fatal("no error types found in the package source")
	}
	for _, def := range []string{"cutover.asl.json", "preflight.asl.json"} {
		caught := caughtNames(t, "../../statemachine/"+def)
		if def == "cutover.asl.json" {
			for name := range types {
				if !caught[name] && !undeployed[name] {
					t.Errorf("%s is never caught by name in %s", name, def)
				}
			}
		}
		for name := range caught {
			if !types[name] {
				t.Errorf("%s catches or retries %s, which is no error type of package cutover", def, name)
			}
		}
	}
}

// errorTypes parses the non-test Go files in dir and returns the exported
// type names ending in Error that have an Error() string method, and those
// of them whose doc comment says they never occur in a deployed function.
func errorTypes(t *testing.T, dir string) (types, undeployed map[string]bool) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]string{} // type name -> doc comment
	hasError := map[string]bool{}
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					ts, ok := spec.(*ast.TypeSpec)
					if !ok || !ts.Name.IsExported() || !strings.HasSuffix(ts.Name.Name, "Error") {
						continue
					}
					doc := ts.Doc
					if doc == nil {
						doc = d.Doc
					}
					named[ts.Name.Name] = doc.Text()
				}
			case *ast.FuncDecl:
				if d.Recv == nil || d.Name.Name != "Error" || d.Type.Params.NumFields() != 0 || d.Type.Results.NumFields() != 1 {
					continue
				}
				if res, ok := d.Type.Results.List[0].Type.(*ast.Ident); !ok || res.Name != "string" {
					continue
				}
				recv := d.Recv.List[0].Type
				if star, ok := recv.(*ast.StarExpr); ok {
					recv = star.X
				}
				if id, ok := recv.(*ast.Ident); ok {
					hasError[id.Name] = true
				}
			}
		}
	}
	types, undeployed = map[string]bool{}, map[string]bool{}
	for name, doc := range named {
		if hasError[name] {
			types[name] = true
			if strings.Contains(strings.Join(strings.Fields(doc), " "), "never occurs in a deployed function") {
				undeployed[name] = true
			}
		}
	}
	return types, undeployed
}

// caughtNames returns every error name in an ErrorEquals of a Catch or
// Retry anywhere in the state machine definition at path, other than the
// States.* and Lambda.* names.
func caughtNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var def any
	if err := json.Unmarshal(raw, &def); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	caught := map[string]bool{}
	var walk func(v any, inRule bool)
	walk = func(v any, inRule bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				switch {
				case k == "Catch" || k == "Retry":
					walk(x, true)
				case k == "ErrorEquals" && inRule:
					list, ok := x.([]any)
					if !ok {
						t.Fatalf("%s: ErrorEquals %v is not a list", path, x)
					}
					for _, e := range list {
						name, ok := e.(string)
						if !ok {
							t.Fatalf("%s: ErrorEquals holds %v", path, e)
						}
						if !strings.HasPrefix(name, "States.") && !strings.HasPrefix(name, "Lambda.") {
							caught[name] = true
						}
					}
				default:
					walk(x, false)
				}
			}
		case []any:
			for _, x := range v {
				walk(x, inRule)
			}
		}
	}
	walk(def, false)
	return caught
}

// TestLoadConfigReadsExactly proves which variables LoadConfig reads.
func TestLoadConfigReadsExactly(t *testing.T) {
	seen := map[string]bool{}
	c, err := LoadConfig(config.Recording(map[string]string{
		"SOURCE_BOOTSTRAP_SERVERS": "s:9092", "SOURCE_AUTH": "plaintext",
		"TARGET_BOOTSTRAP_SERVERS": "t:9092", "TARGET_AUTH": "plaintext",
		"REPLICATOR_FUNCTION_NAME": "kmig-replicator",
		"APPROVAL_TOPIC_ARN":       "arn:aws:sns:us-east-1:1:t",
		"SOURCE_CLUSTER_ARN":       "arn:aws:kafka:us-east-1:1:cluster/src/uuid-1",
		"PRODUCER_ROLE_ARNS":       "arn:aws:iam::123456789012:role/a, arn:aws:iam::123456789012:role/team/b",
		"CUTOVER_DETAILS_TOPIC":    "ops.cutover-details",
		"TRANSFORMS":               `[{"type":"hook","name":"only-in-the-replicator"},{"type":"rename","topics":{"legacy.orders":"orders"}}]`,
	}, seen))
	if err != nil {
		t.Fatal(err)
	}
	if c.ReplicatorFunction != "kmig-replicator" || c.ApprovalTopicArn == "" || c.DetailsTopic != "ops.cutover-details" || len(c.ProducerRoleArns) != 2 || c.ProducerRoleArns[1] != "arn:aws:iam::123456789012:role/team/b" ||
		c.Renames.Target("legacy.orders") != "orders" || len(c.Renames) != 1 {
		t.Errorf("config %+v", c)
	}
	want := []string{"SOURCE_BOOTSTRAP_SERVERS", "SOURCE_AUTH", "SOURCE_SECRET_ARN", "SOURCE_CA_SECRET_ARN", "TARGET_BOOTSTRAP_SERVERS", "TARGET_AUTH",
		"TARGET_SECRET_ARN", "TARGET_CA_SECRET_ARN", "REPLICATOR_FUNCTION_NAME", "APPROVAL_TOPIC_ARN", "SOURCE_CLUSTER_ARN", "PRODUCER_ROLE_ARNS", "CUTOVER_DETAILS_TOPIC", "TRANSFORMS", "AWS_REGION"}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("%s not read", w)
		}
		delete(seen, w)
	}
	if len(seen) > 0 {
		t.Errorf("also read %v", seen)
	}
	_, err = LoadConfig(config.Map(map[string]string{"SOURCE_BOOTSTRAP_SERVERS": "s:1", "SOURCE_AUTH": "plaintext", "TARGET_BOOTSTRAP_SERVERS": "t:1", "TARGET_AUTH": "plaintext"}))
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Variable != "REPLICATOR_FUNCTION_NAME" {
		t.Errorf("missing replicator: %v", err)
	}
	_, err = LoadConfig(config.Map(map[string]string{"SOURCE_BOOTSTRAP_SERVERS": "s:1", "SOURCE_AUTH": "plaintext", "TARGET_BOOTSTRAP_SERVERS": "t:1",
		"TARGET_AUTH": "plaintext", "REPLICATOR_FUNCTION_NAME": "r", "PRODUCER_ROLE_ARNS": "orders-producer"}))
	if !errors.As(err, &ce) || ce.Variable != "PRODUCER_ROLE_ARNS" {
		t.Errorf("producer role not an ARN: %v", err)
	}
	_, err = LoadConfig(config.Map(map[string]string{"SOURCE_BOOTSTRAP_SERVERS": "s:1", "SOURCE_AUTH": "plaintext", "TARGET_BOOTSTRAP_SERVERS": "t:1",
		"TARGET_AUTH": "plaintext", "REPLICATOR_FUNCTION_NAME": "r", "TRANSFORMS": `[{"type":"rename","topics":{"a":"b"}},{"type":"rename","topics":{"b":"c"}}]`}))
	if !errors.As(err, &ce) || ce.Variable != "TRANSFORMS" || !strings.Contains(err.Error(), "chained") {
		t.Errorf("chained renames: %v", err)
	}
}
