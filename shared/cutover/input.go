package cutover

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamfence"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/selection"
)

// Hook types.
const (
	HookNone     = "none"
	HookLambda   = "lambda"
	HookApproval = "approval"
)

// Fence kinds: how FenceSource stops writes to the source.
const (
	// FenceKindACL adds Kafka ACLs: DENY WRITE for User:* on each topic
	// (and, on a topic no ACL matches on a source open to everyone,
	// ALLOW ALL for User:*, so only writes change). Needs an authorizer
	// on the source and a source that authenticates with Kafka
	// principals (SCRAM, mTLS), not IAM.
	FenceKindACL = "acl"
	// FenceKindIAM puts an explicit-deny inline policy for
	// kafka-cluster:WriteData on the topics onto the producer roles the
	// input names. For MSK sources with IAM authentication.
	FenceKindIAM = "iam"
	// FenceKindNone fences nothing: VerifySourceQuiet alone guards the
	// source, and the report says so.
	FenceKindNone = "none"
)

// Defaults applied by Validate to absent fields.
const (
	DefaultQuietSeconds            = 30
	DefaultDrainTimeoutSeconds     = 900
	DefaultConsumersTimeoutSeconds = 300
	DefaultVerifySeconds           = 300
	DefaultPollSeconds             = 5
	// DefaultMappingTimeoutSeconds is how long PauseReplication waits
	// for every mapping to read Disabled. AWS documents that a Kafka
	// mapping may take up to 90 s to stop polling after an update.
	DefaultMappingTimeoutSeconds = 150
	maxMappingTimeoutSeconds     = 3600
	maxSeconds                   = 7 * 86400
)

// Hook is one operator hook as given in the input.
type Hook struct {
	// Type is none (default), lambda or approval.
	Type string `json:"type"`
	// FunctionArn is the function a lambda hook invokes synchronously.
	FunctionArn string `json:"functionArn,omitempty"`
	// Payload is passed to a lambda hook as "payload" (any JSON).
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Hooks are the four operator hooks.
type Hooks struct {
	StopProducers  *Hook `json:"stopProducers,omitempty"`
	StopConsumers  *Hook `json:"stopConsumers,omitempty"`
	StartConsumers *Hook `json:"startConsumers,omitempty"`
	StartProducers *Hook `json:"startProducers,omitempty"`
}

// Input is the state machine's execution input. Unknown fields are
// rejected. Pointer fields are optional and take the Default* values.
type Input struct {
	// Topics are names or patterns (package selection: whole-name RE2
	// regexes; a plain name matches itself) choosing among the topics the
	// replicator's mappings read. Omitted: every topic a mapping of the
	// replicator reads.
	Topics []string `json:"topics,omitempty"`
	// Groups are the application consumer groups to move. Omitted: every
	// source group with committed offsets on the chosen topics, except
	// the mappings' own groups.
	Groups []string `json:"groups,omitempty"`
	Fence  string   `json:"fence,omitempty"`
	// AllowEveryoneIfNoAclFound is the source brokers'
	// allow.everyone.if.no.acl.found, for the acl fence. Kafka hides its
	// value, so it must be given when some topic has no matching ACL.
	AllowEveryoneIfNoAclFound *bool `json:"allowEveryoneIfNoAclFound,omitempty"`
	// ProducerRoles are the IAM roles (names or ARNs) of the source's
	// producers, for the iam fence.
	ProducerRoles           []string `json:"producerRoles,omitempty"`
	Hooks                   *Hooks   `json:"hooks,omitempty"`
	QuietSeconds            *int     `json:"quietSeconds,omitempty"`
	DrainTimeoutSeconds     *int     `json:"drainTimeoutSeconds,omitempty"`
	ConsumersTimeoutSeconds *int     `json:"consumersTimeoutSeconds,omitempty"`
	VerifySeconds           *int     `json:"verifySeconds,omitempty"`
	PollSeconds             *int     `json:"pollSeconds,omitempty"`
	// MappingTimeoutSeconds bounds PauseReplication's wait for every
	// mapping to read Disabled; Rollback waits twice as long for Enabled.
	MappingTimeoutSeconds *int `json:"mappingTimeoutSeconds,omitempty"`
	AllowLaggingGroups    bool `json:"allowLaggingGroups,omitempty"`
	DryRun                bool `json:"dryRun,omitempty"`
}

// HookConfig is a hook after defaults: every field set.
type HookConfig struct {
	Type        string          `json:"type"`
	FunctionArn string          `json:"functionArn,omitempty"`
	Payload     json.RawMessage `json:"payload,omitempty"`
}

// HooksConfig are the four hooks after defaults. The JSON names are the
// paths the state machine's Choice states read.
type HooksConfig struct {
	StopProducers  HookConfig `json:"stopProducers"`
	StopConsumers  HookConfig `json:"stopConsumers"`
	StartConsumers HookConfig `json:"startConsumers"`
	StartProducers HookConfig `json:"startProducers"`
}

// Config is the validated input with defaults applied. It is carried in
// the execution state as $.config.
type Config struct {
	// Topics are the migrated source topics, sorted: the input's names and
	// patterns resolved by Validate against the replicator's mappings.
	// Groups are the application groups, sorted: the input's, or those
	// Validate found (GroupsFound).
	Topics []string `json:"topics"`
	Groups []string `json:"groups"`
	// TopicPatterns are the input's topics entries as given; empty when
	// the input named none (every mapped topic). GroupsFound is true when
	// the input named no groups and Validate found them.
	TopicPatterns []string `json:"topicPatterns,omitempty"`
	GroupsFound   bool     `json:"groupsFound,omitempty"`
	Fence         string   `json:"fence"`
	// AllowEveryoneIfNoAclFound is the input's value, nil if absent.
	AllowEveryoneIfNoAclFound *bool       `json:"allowEveryoneIfNoAclFound,omitempty"`
	ProducerRoles             []string    `json:"producerRoles,omitempty"`
	Hooks                     HooksConfig `json:"hooks"`
	QuietSeconds              int         `json:"quietSeconds"`
	DrainTimeoutSeconds       int         `json:"drainTimeoutSeconds"`
	ConsumersTimeoutSeconds   int         `json:"consumersTimeoutSeconds"`
	VerifySeconds             int         `json:"verifySeconds"`
	PollSeconds               int         `json:"pollSeconds"`
	MappingTimeoutSeconds     int         `json:"mappingTimeoutSeconds"`
	AllowLaggingGroups        bool        `json:"allowLaggingGroups"`
	DryRun                    bool        `json:"dryRun"`
	// Renames maps each renamed topic of Topics to its target name, as
	// the replicator's rename transforms (TRANSFORMS) did when Validate
	// ran; it is not part of the input. Every target-side read and commit
	// uses the target name.
	Renames map[string]string `json:"renames,omitempty"`
}

// TargetTopic returns the target name of source topic src.
func (c Config) TargetTopic(src string) string {
	if t, ok := c.Renames[src]; ok {
		return t
	}
	return src
}

// targetTopics returns the target names of Topics, in order.
func (c Config) targetTopics() []string {
	out := make([]string, len(c.Topics))
	for i, t := range c.Topics {
		out[i] = c.TargetTopic(t)
	}
	return out
}

// ParseInput decodes and checks an execution input. Every problem is an
// *InvalidInputError naming the field. It reads nothing but raw, so the
// Config it returns has Topics and Groups unresolved: TopicPatterns holds
// the input's topics entries and Topics is empty; Groups is the input's,
// or empty when it names none. Validate resolves both (resolve).
func ParseInput(raw []byte, approvalConfigured bool) (Config, error) {
	// encoding/json matches field names case-insensitively; the input
	// contract is exact, so check the names first.
	if err := exactKeys(raw); err != nil {
		return Config{}, err
	}
	var in Input
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Config{}, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Config{}, &InvalidInputError{Field: "$", Problem: "trailing data after the JSON object"}
	}
	return in.normalize(approvalConfigured)
}

func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te):
		f := te.Field
		if f == "" {
			f = "$"
		}
		return &InvalidInputError{Field: f, Problem: fmt.Sprintf("must be %s, not %s", jsonKind(te.Type.String()), te.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &InvalidInputError{Field: name, Problem: "unknown field"}
	}
	return &InvalidInputError{Field: "$", Problem: "not a JSON object: " + err.Error()}
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case goType == "int":
		return "an integer"
	}
	return "an object"
}

func (in Input) normalize(approvalConfigured bool) (Config, error) {
	c := Config{AllowLaggingGroups: in.AllowLaggingGroups, DryRun: in.DryRun}
	var err error
	if in.Topics != nil {
		if c.TopicPatterns, err = names("topics", in.Topics, func(string) string { return "" }); err != nil {
			return c, err
		}
		if _, err := topicSelection(c.TopicPatterns, ""); err != nil {
			return c, err
		}
	}
	if in.Groups != nil {
		if c.Groups, err = names("groups", in.Groups, func(string) string { return "" }); err != nil {
			return c, err
		}
		slices.Sort(c.Groups)
	}
	switch in.Fence {
	case "":
		c.Fence = FenceKindACL
	case FenceKindACL, FenceKindIAM, FenceKindNone:
		c.Fence = in.Fence
	default:
		return c, &InvalidInputError{Field: "fence", Problem: fmt.Sprintf("%q is not acl, iam or none", in.Fence)}
	}
	if in.AllowEveryoneIfNoAclFound != nil && c.Fence != FenceKindACL {
		return c, &InvalidInputError{Field: "allowEveryoneIfNoAclFound", Problem: "only allowed with fence acl"}
	}
	c.AllowEveryoneIfNoAclFound = in.AllowEveryoneIfNoAclFound
	switch {
	case c.Fence == FenceKindIAM && len(in.ProducerRoles) == 0:
		return c, &InvalidInputError{Field: "producerRoles", Problem: "must list the IAM roles of the source's producers for fence iam"}
	case c.Fence != FenceKindIAM && len(in.ProducerRoles) > 0:
		return c, &InvalidInputError{Field: "producerRoles", Problem: "only allowed with fence iam"}
	case len(in.ProducerRoles) > 0:
		if c.ProducerRoles, err = names("producerRoles", in.ProducerRoles, validRole); err != nil {
			return c, err
		}
	}
	for _, s := range []struct {
		field string
		v     *int
		def   int
		min   int
		dst   *int
	}{
		{"quietSeconds", in.QuietSeconds, DefaultQuietSeconds, 1, &c.QuietSeconds},
		{"drainTimeoutSeconds", in.DrainTimeoutSeconds, DefaultDrainTimeoutSeconds, 1, &c.DrainTimeoutSeconds},
		{"consumersTimeoutSeconds", in.ConsumersTimeoutSeconds, DefaultConsumersTimeoutSeconds, 1, &c.ConsumersTimeoutSeconds},
		{"verifySeconds", in.VerifySeconds, DefaultVerifySeconds, 1, &c.VerifySeconds},
		{"pollSeconds", in.PollSeconds, DefaultPollSeconds, 1, &c.PollSeconds},
		{"mappingTimeoutSeconds", in.MappingTimeoutSeconds, DefaultMappingTimeoutSeconds, 1, &c.MappingTimeoutSeconds},
	} {
		*s.dst = s.def
		if s.v == nil {
			continue
		}
		if *s.v < s.min || *s.v > maxSeconds {
			return c, &InvalidInputError{Field: s.field, Problem: fmt.Sprintf("%d is outside [%d, %d]", *s.v, s.min, maxSeconds)}
		}
		*s.dst = *s.v
	}
	if c.PollSeconds > 300 {
		return c, &InvalidInputError{Field: "pollSeconds", Problem: "must be at most 300"}
	}
	if c.MappingTimeoutSeconds > maxMappingTimeoutSeconds {
		return c, &InvalidInputError{Field: "mappingTimeoutSeconds", Problem: fmt.Sprintf("must be at most %d", maxMappingTimeoutSeconds)}
	}
	var hs Hooks
	if in.Hooks != nil {
		hs = *in.Hooks
	}
	for _, h := range []struct {
		field string
		in    *Hook
		dst   *HookConfig
	}{
		{"hooks.stopProducers", hs.StopProducers, &c.Hooks.StopProducers},
		{"hooks.stopConsumers", hs.StopConsumers, &c.Hooks.StopConsumers},
		{"hooks.startConsumers", hs.StartConsumers, &c.Hooks.StartConsumers},
		{"hooks.startProducers", hs.StartProducers, &c.Hooks.StartProducers},
	} {
		hc, err := h.in.normalize(h.field, approvalConfigured)
		if err != nil {
			return c, err
		}
		*h.dst = hc
	}
	return c, nil
}

func (h *Hook) normalize(field string, approvalConfigured bool) (HookConfig, error) {
	if h == nil {
		return HookConfig{Type: HookNone}, nil
	}
	hc := HookConfig{Type: h.Type, FunctionArn: h.FunctionArn, Payload: h.Payload}
	if hc.Type == "" {
		hc.Type = HookNone
	}
	switch hc.Type {
	case HookNone:
		if h.FunctionArn != "" {
			return hc, &InvalidInputError{Field: field + ".functionArn", Problem: "only allowed with type lambda"}
		}
	case HookLambda:
		if strings.TrimSpace(h.FunctionArn) == "" {
			return hc, &InvalidInputError{Field: field + ".functionArn", Problem: "must name the function for a lambda hook"}
		}
	case HookApproval:
		if h.FunctionArn != "" {
			return hc, &InvalidInputError{Field: field + ".functionArn", Problem: "only allowed with type lambda"}
		}
		if !approvalConfigured {
			return hc, &InvalidInputError{Field: field + ".type", Problem: "approval needs APPROVAL_TOPIC_ARN set on the cutover function"}
		}
	default:
		return hc, &InvalidInputError{Field: field + ".type", Problem: fmt.Sprintf("%q is not none, lambda or approval", h.Type)}
	}
	if len(h.Payload) > 0 && hc.Type != HookLambda {
		return hc, &InvalidInputError{Field: field + ".payload", Problem: "only allowed with type lambda"}
	}
	return hc, nil
}

func names(field string, in []string, check func(string) string) ([]string, error) {
	if len(in) == 0 {
		return nil, &InvalidInputError{Field: field, Problem: "must list at least one entry, or be left out"}
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(in))
	for i, s := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		if strings.TrimSpace(s) == "" || s != strings.TrimSpace(s) {
			return nil, &InvalidInputError{Field: f, Problem: "must be a non-empty name without surrounding spaces"}
		}
		if p := check(s); p != "" {
			return nil, &InvalidInputError{Field: f, Problem: p}
		}
		if seen[s] {
			return nil, &InvalidInputError{Field: f, Problem: fmt.Sprintf("%q is listed twice", s)}
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, nil
}

// topicSelection parses the input's topics entries as a selection
// (package selection) that never selects the details topic. A
// *selection.PatternError becomes an *InvalidInputError naming the entry.
func topicSelection(patterns []string, detailsTopic string) (*selection.Selection, error) {
	sel, err := selection.Parse(patterns, nil, []string{detailsTopic})
	var pe *selection.PatternError
	if errors.As(err, &pe) {
		return nil, &InvalidInputError{Field: fmt.Sprintf("topics[%d]", pe.Index), Problem: fmt.Sprintf("%q: %s", pe.Pattern, pe.Problem)}
	}
	if err != nil {
		return nil, &InvalidInputError{Field: "topics", Problem: err.Error()}
	}
	return sel, nil
}

// validRole accepts an IAM role name or role ARN (iamfence.RoleName).
func validRole(s string) string {
	if _, err := iamfence.RoleName(s); err != nil {
		return err.Error()
	}
	return ""
}

func validTopic(s string) string {
	if len(s) > 249 || s == "." || s == ".." {
		return "is not a valid Kafka topic name"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Sprintf("%q is not a valid Kafka topic name", s)
		}
	}
	return ""
}

var (
	inputKeys = []string{"topics", "groups", "fence", "allowEveryoneIfNoAclFound", "producerRoles", "hooks", "quietSeconds", "drainTimeoutSeconds",
		"consumersTimeoutSeconds", "verifySeconds", "pollSeconds", "mappingTimeoutSeconds", "allowLaggingGroups", "dryRun"}
	hooksKeys = []string{"stopProducers", "stopConsumers", "startConsumers", "startProducers"}
	hookKeys  = []string{"type", "functionArn", "payload"}
)

// exactKeys rejects any object key that is not exactly a known field name.
// Values of the wrong shape are left to the decoder.
func exactKeys(raw []byte) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return nil
	}
	if err := known("", top, inputKeys); err != nil {
		return err
	}
	var hooks map[string]json.RawMessage
	if json.Unmarshal(top["hooks"], &hooks) != nil {
		return nil
	}
	if err := known("hooks.", hooks, hooksKeys); err != nil {
		return err
	}
	for _, k := range sortedKeys(hooks) {
		var h map[string]json.RawMessage
		if json.Unmarshal(hooks[k], &h) != nil {
			continue
		}
		if err := known("hooks."+k+".", h, hookKeys); err != nil {
			return err
		}
	}
	return nil
}

func known(prefix string, m map[string]json.RawMessage, names []string) error {
	for _, k := range sortedKeys(m) {
		ok := false
		for _, n := range names {
			ok = ok || k == n
		}
		if !ok {
			return &InvalidInputError{Field: prefix + k, Problem: "unknown field (known: " + strings.Join(names, ", ") + ")"}
		}
	}
	return nil
}
