package templatetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// deployment evaluates the template's Conditions and Rules for one set of
// parameter values (defaults for the rest), and resolves Fn::If in a
// resource's properties as CloudFormation would for that stack.
type deployment struct {
	t      *testing.T
	tpl    *node
	params map[string]string
	conds  map[string]bool
}

func deploy(t *testing.T, tpl *node, params map[string]string) *deployment {
	t.Helper()
	d := &deployment{t: t, tpl: tpl, params: map[string]string{}, conds: map[string]bool{}}
	for _, name := range tpl.get("Parameters").Keys {
		d.params[name] = tpl.get("Parameters", name, "Default").str()
	}
	for k, v := range params {
		if _, ok := d.params[k]; !ok {
			t.Fatalf("template has no parameter %s", k)
		}
		d.params[k] = v
	}
	return d
}

// value evaluates the intrinsics Conditions and Rules use here: Ref to a
// parameter, Fn::Join, Fn::Split, Fn::Select, Fn::Equals, Fn::Not, Fn::And,
// Fn::Or, Condition. A string or a []string; a bool for the logical ones.
func (d *deployment) value(n *node) any {
	fn, arg := n.intrinsic()
	switch fn {
	case "":
		if n.Kind == yaml.SequenceNode {
			var out []string
			for _, e := range n.List {
				switch v := d.value(e).(type) {
				case string:
					out = append(out, v)
				case []string:
					out = append(out, v...)
				}
			}
			return out
		}
		return n.Scalar
	case "Ref":
		v, ok := d.params[arg.str()]
		if !ok {
			d.t.Fatalf("line %d: Ref %s is not a parameter", n.Line, arg.str())
		}
		if d.tpl.get("Parameters", arg.str(), "Type").str() == "CommaDelimitedList" || strings.HasPrefix(d.tpl.get("Parameters", arg.str(), "Type").str(), "List<") {
			if v == "" {
				return []string{""}
			}
			return strings.Split(v, ",")
		}
		return v
	case "Fn::Join":
		parts, _ := d.value(arg.List[1]).([]string)
		return strings.Join(parts, arg.List[0].str())
	case "Fn::Split":
		return strings.Split(d.value(arg.List[1]).(string), arg.List[0].str())
	case "Fn::Select":
		var i int
		fmt.Sscan(arg.List[0].str(), &i)
		return d.value(arg.List[1]).([]string)[i]
	case "Fn::Equals":
		return fmt.Sprint(d.value(arg.List[0])) == fmt.Sprint(d.value(arg.List[1]))
	case "Fn::Not":
		return !d.bool(arg.List[0])
	case "Fn::And", "Fn::Or":
		all, any := true, false
		for _, e := range arg.List {
			b := d.bool(e)
			all, any = all && b, any || b
		}
		if fn == "Fn::And" {
			return all
		}
		return any
	case "Condition":
		return d.cond(arg.str())
	}
	d.t.Fatalf("line %d: %s is not evaluated here", n.Line, fn)
	return nil
}

func (d *deployment) bool(n *node) bool {
	b, ok := d.value(n).(bool)
	if !ok {
		d.t.Fatalf("line %d: not a condition", n.Line)
	}
	return b
}

func (d *deployment) cond(name string) bool {
	if v, ok := d.conds[name]; ok {
		return v
	}
	c := d.tpl.get("Conditions", name)
	if c == nil {
		d.t.Fatalf("template has no condition %s", name)
	}
	v := d.bool(c)
	d.conds[name] = v
	return v
}

// refused returns the AssertDescription of every rule that refuses the
// parameters.
func (d *deployment) refused() []string {
	var out []string
	rules := d.tpl.get("Rules")
	for _, name := range rules.Keys {
		r := rules.Map[name]
		if rc := r.get("RuleCondition"); rc != nil && !d.bool(rc) {
			continue
		}
		for _, a := range r.get("Assertions").List {
			if !d.bool(a.get("Assert")) {
				out = append(out, name+": "+a.get("AssertDescription").str())
			}
		}
	}
	return out
}

// resolve returns n with every Fn::If replaced by its branch and every
// AWS::NoValue removed (nil); other intrinsics stay as they are.
func (d *deployment) resolve(n *node) *node {
	if n == nil {
		return nil
	}
	if fn, arg := n.intrinsic(); fn == "Fn::If" && len(arg.List) == 3 {
		if d.cond(arg.List[0].str()) {
			return d.resolve(arg.List[1])
		}
		return d.resolve(arg.List[2])
	} else if fn == "Ref" && arg.str() == "AWS::NoValue" {
		return nil
	}
	out := *n
	if n.Map != nil {
		out.Map, out.Keys = map[string]*node{}, nil
		for _, k := range n.Keys {
			if v := d.resolve(n.Map[k]); v != nil {
				out.Map[k] = v
				out.Keys = append(out.Keys, k)
			}
		}
	}
	if n.List != nil {
		out.List = nil
		for _, e := range n.List {
			if v := d.resolve(e); v != nil {
				out.List = append(out.List, v)
			}
		}
	}
	return &out
}

func refName(n *node) string {
	if fn, arg := n.intrinsic(); fn == "Ref" {
		return arg.str()
	}
	return ""
}

const (
	sampleCA       = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kmig-source-ca-AbCdEf"
	sampleTargetCA = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kmig-target-ca-AbCdEf"
	sampleSecret   = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kmig-source-AbCdEf"
	sampleSourceCl = "arn:aws:kafka:eu-west-1:123456789012:cluster/source/abcd1234-ab12-cd34-ef56-abcdef123456-1"
)

// The reconciler builds each mapping's access configurations (a
// SERVER_ROOT_CA_CERTIFICATE entry for SOURCE_CA_SECRET_ARN on a
// self-managed source) from its environment: it gets the source kind, the
// CA secret and the network as the parameters give them, and the Rules
// accept every valid combination and refuse a CA for an MSK source
// (Lambda takes SERVER_ROOT_CA_CERTIFICATE for self-managed Kafka only).
func TestSourceCAForMappings(t *testing.T) {
	tpl := loadTemplate(t)
	vars := findResource(t, tpl, "ProvisionerFunction").Node.get("Properties", "Environment", "Variables")
	for _, tc := range []struct {
		name     string
		params   map[string]string
		wantKind string
	}{
		{"self-managed SCRAM with a CA", map[string]string{"SourceSecretArn": sampleSecret, "SourceCaSecretArn": sampleCA}, "SELF_MANAGED"},
		{"self-managed tls with a CA", map[string]string{"SourceAuth": "tls", "SourceCaSecretArn": sampleCA}, "SELF_MANAGED"},
		{"self-managed mtls with a CA", map[string]string{"SourceAuth": "mtls", "SourceSecretArn": sampleSecret, "SourceCaSecretArn": sampleCA}, "SELF_MANAGED"},
		{"MSK without a CA", map[string]string{"SourceKind": "MSK", "SourceClusterArn": sampleSourceCl, "SourceSecretArn": sampleSecret}, "MSK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := deploy(t, tpl, tc.params)
			if r := d.refused(); len(r) > 0 {
				t.Fatalf("the Rules refuse a valid deployment: %v", r)
			}
			env := d.resolve(vars)
			if got := env.get("SOURCE_KIND").str(); got != tc.wantKind {
				t.Errorf("SOURCE_KIND %q, want %q", got, tc.wantKind)
			}
			for v, p := range map[string]string{"SOURCE_CA_SECRET_ARN": "SourceCaSecretArn", "SOURCE_SECRET_ARN": "SourceSecretArn", "SOURCE_AUTH": "SourceAuth", "SOURCE_CLUSTER_ARN": "SourceClusterArn"} {
				if got := refName(env.get(v)); got != p {
					t.Errorf("%s = Ref %q, want Ref %s", v, got, p)
				}
			}
			for v, p := range map[string]string{"SUBNET_IDS": "SubnetIds", "SECURITY_GROUP_IDS": "SecurityGroupIds"} {
				fn, arg := env.get(v).intrinsic()
				if fn != "Fn::Join" || arg.List[0].str() != "," || refName(arg.List[1]) != p {
					t.Errorf("%s must be !Join [\",\", !Ref %s], got %s", v, p, dump(env.get(v)))
				}
			}
		})
	}

	d := deploy(t, tpl, map[string]string{"SourceKind": "MSK", "SourceClusterArn": sampleSourceCl, "SourceSecretArn": sampleSecret, "SourceCaSecretArn": sampleCA})
	if r := strings.Join(d.refused(), "\n"); !strings.Contains(r, "SourceCaSecretArn is for a SelfManaged source") {
		t.Fatalf("an MSK source with SourceCaSecretArn is not refused (refusals: %q)", r)
	}
}

// Each function gets SOURCE_CA_SECRET_ARN and TARGET_CA_SECRET_ARN from the
// parameters, and its role may read exactly the secrets the parameters
// name: each CA secret only when set, never a wildcard, and no Secrets
// statement at all when no secret is named.
func TestCASecretsEnvironmentAndIAM(t *testing.T) {
	tpl := loadTemplate(t)
	roles := map[string]string{"ReplicatorFunction": "ReplicatorRole", "CutoverFunction": "CutoverRole", "ProvisionerFunction": "ProvisionerRole"}
	for fn, role := range roles {
		vars := findResource(t, tpl, fn).Node.get("Properties", "Environment", "Variables")
		for v, p := range map[string]string{"SOURCE_CA_SECRET_ARN": "SourceCaSecretArn", "TARGET_CA_SECRET_ARN": "TargetCaSecretArn"} {
			if got := refName(vars.get(v)); got != p {
				t.Errorf("%s: %s = Ref %q, want Ref %s", fn, v, got, p)
			}
		}
		for _, tc := range []struct {
			name   string
			params map[string]string
			want   []string // the parameters the Secrets statement names, in order; nil: no statement
		}{
			{"no secrets", map[string]string{"SourceAuth": "tls"}, nil},
			{"source CA only", map[string]string{"SourceAuth": "tls", "SourceCaSecretArn": sampleCA}, []string{"SourceCaSecretArn"}},
			{"target CA only", map[string]string{"SourceAuth": "tls", "TargetCaSecretArn": sampleTargetCA}, []string{"TargetCaSecretArn"}},
			{"SCRAM and both CAs", map[string]string{"SourceSecretArn": sampleSecret, "SourceCaSecretArn": sampleCA, "TargetCaSecretArn": sampleTargetCA},
				[]string{"SourceSecretArn", "SourceCaSecretArn", "TargetCaSecretArn"}},
		} {
			d := deploy(t, tpl, tc.params)
			if r := d.refused(); len(r) > 0 {
				t.Fatalf("%s: the Rules refuse a valid deployment: %v", tc.name, r)
			}
			var got []string
			found := false
			for _, pol := range d.resolve(findResource(t, tpl, role).Node.get("Properties", "Policies")).List {
				for _, st := range pol.get("PolicyDocument", "Statement").List {
					if !slices.Contains(strings.Fields(dump(st.get("Action"))), "secretsmanager:GetSecretValue") {
						continue
					}
					found = true
					if st.get("Resource").Kind != yaml.SequenceNode {
						t.Errorf("%s, %s: GetSecretValue on %s, want a list of the secrets' ARNs", role, tc.name, dump(st.get("Resource")))
					}
					for _, r := range st.get("Resource").List {
						got = append(got, refName(r))
					}
				}
			}
			if tc.want == nil && found {
				t.Errorf("%s, %s: a GetSecretValue statement (on %v) though no secret is named", role, tc.name, got)
			}
			if tc.want != nil && strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("%s, %s: GetSecretValue on %v, want exactly %v", role, tc.name, got, tc.want)
			}
		}
	}
}
