package templatetest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// repoRoot is the module root (the parent of this package's directory).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Dir(filepath.Dir(file))
}

// node is a decoded YAML value that keeps its comments: CloudFormation short
// forms (!Ref x, !Sub s, !GetAtt a.b, ...) become the long form
// {"Ref": x}, {"Fn::Sub": s}, {"Fn::GetAtt": [a, b]}.
type node struct {
	Kind    yaml.Kind
	Scalar  string
	Map     map[string]*node
	Keys    []string // map keys in document order
	List    []*node
	Comment string // line and head comments
	Line    int
}

func (n *node) get(path ...string) *node {
	for _, p := range path {
		if n == nil || n.Map == nil {
			return nil
		}
		n = n.Map[p]
	}
	return n
}

func (n *node) str() string {
	if n == nil {
		return ""
	}
	return n.Scalar
}

// intrinsic returns the function name and argument of a one-key map whose
// key is Ref or Fn::*, or "" when n is not an intrinsic.
func (n *node) intrinsic() (string, *node) {
	if n == nil || n.Kind != yaml.MappingNode || len(n.Keys) != 1 {
		return "", nil
	}
	k := n.Keys[0]
	if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
		return k, n.Map[k]
	}
	return "", nil
}

func convert(y *yaml.Node) *node {
	if y.Kind == yaml.DocumentNode {
		return convert(y.Content[0])
	}
	if y.Kind == yaml.AliasNode {
		return convert(y.Alias)
	}
	n := &node{Kind: y.Kind, Line: y.Line, Comment: strings.TrimSpace(y.HeadComment + " " + y.LineComment)}
	switch y.Kind {
	case yaml.ScalarNode:
		n.Scalar = y.Value
	case yaml.SequenceNode:
		for _, c := range y.Content {
			n.List = append(n.List, convert(c))
		}
	case yaml.MappingNode:
		n.Map = map[string]*node{}
		for i := 0; i+1 < len(y.Content); i += 2 {
			k, v := y.Content[i].Value, convert(y.Content[i+1])
			if v.Comment == "" {
				v.Comment = strings.TrimSpace(y.Content[i].HeadComment + " " + y.Content[i].LineComment)
			}
			n.Map[k] = v
			n.Keys = append(n.Keys, k)
		}
	}
	if tag := y.Tag; strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
		name := strings.TrimPrefix(tag, "!")
		fn := "Fn::" + name
		if name == "Ref" || name == "Condition" {
			fn = name
		}
		inner := *n
		inner.Comment = ""
		arg := &inner
		if name == "GetAtt" && y.Kind == yaml.ScalarNode {
			parts := strings.SplitN(y.Value, ".", 2)
			arg = &node{Kind: yaml.SequenceNode, Line: y.Line}
			for _, p := range parts {
				arg.List = append(arg.List, &node{Kind: yaml.ScalarNode, Scalar: p, Line: y.Line})
			}
		}
		return &node{Kind: yaml.MappingNode, Line: y.Line, Comment: n.Comment, Map: map[string]*node{fn: arg}, Keys: []string{fn}}
	}
	return n
}

func parseTemplate(t *testing.T, src []byte) *node {
	t.Helper()
	var y yaml.Node
	if err := yaml.Unmarshal(src, &y); err != nil {
		t.Fatalf("parsing template: %v", err)
	}
	return convert(&y)
}

func loadTemplate(t *testing.T) *node {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return parseTemplate(t, b)
}

// resource is one resource, including those inside Fn::ForEach loops
// (their logical IDs keep the loop placeholders).
type resource struct {
	ID   string
	Type string
	Node *node
}

func resources(tpl *node) []resource {
	var out []resource
	var walk func(m *node)
	walk = func(m *node) {
		if m == nil {
			return
		}
		for _, id := range m.Keys {
			v := m.Map[id]
			if strings.HasPrefix(id, "Fn::ForEach::") {
				if len(v.List) == 3 {
					walk(v.List[2])
				}
				continue
			}
			out = append(out, resource{ID: id, Type: v.get("Type").str(), Node: v})
		}
	}
	walk(tpl.get("Resources"))
	return out
}

func findResource(t *testing.T, tpl *node, id string) resource {
	t.Helper()
	for _, r := range resources(tpl) {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("template has no resource %s", id)
	return resource{}
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (r resource) String() string { return fmt.Sprintf("%s (%s)", r.ID, r.Type) }
