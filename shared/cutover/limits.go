package cutover

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/rundetails"
)

// StateLimitBytes is Step Functions' limit on a state's input and output
// and on a task's result: 256 KiB of UTF-8 JSON. A state over it fails the
// execution with States.DataLimitExceeded, which no Catch (not even
// States.ALL) handles, so Rollback would never run.
const StateLimitBytes = 256 * 1024

// ReportInlineBytes bounds a report that lists every partition and every
// group's offsets in the execution output; a larger report lists
// summaries and references its details in the details topic.
const ReportInlineBytes = 128 * 1024

// maxListed bounds how many items an error message or a rollback cause
// lists; the rest are counted.
const maxListed = 20

// maxMessageBytes bounds what an error message quotes from elsewhere (a
// hook function's error message).
const maxMessageBytes = 4 * 1024

// prefixUTF8 returns the longest prefix of s of at most n bytes that ends
// on a UTF-8 boundary.
func prefixUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// clip returns s cut to at most n bytes (on a UTF-8 boundary), saying how
// much was left out.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := prefixUTF8(s, n)
	return cut + fmt.Sprintf("… (%d more bytes)", len(s)-len(cut))
}

// firstListed returns the first maxListed items and how many it left out.
func firstListed(items []string) (shown []string, more int) {
	if len(items) <= maxListed {
		return items, 0
	}
	return items[:maxListed:maxListed], len(items) - maxListed
}

// listed joins items for a message, at most maxListed of them.
func listed(items []string, sep string) string {
	shown, more := firstListed(items)
	if more == 0 {
		return strings.Join(shown, sep)
	}
	return strings.Join(shown, sep) + fmt.Sprintf("%s… and %d more", sep, more)
}

// Growth the state may still see after Validate, beyond the Validate
// state's own size, per thing and in total. They bound what later steps
// add: step times, the polling loop, references and summaries, warnings,
// the Catch's failure records and Rollback's result (whose causes are
// bounded by maxListed), and the mappings the pause records.
const (
	stateReserveBytes  = 40 * 1024
	stateBytesPerGroup = 400
	// A mapping's UUID is 36 characters: 39 bytes as a JSON list entry,
	// once in Run.Disabled and once in Rollback's reenabled or gone list.
	stateBytesPerMapping = 96
)

// stateBound is the largest size State may reach in this run, with the
// numbers it comes from.
type stateBound struct {
	Validated, Groups, Mappings, FenceACLs, FenceBytes, Total int
}

func (b stateBound) String() string {
	return fmt.Sprintf("%d KiB: %d KiB after Validate (the input's topics, groups and hooks, %d mappings, %d fence ACLs), "+
		"then up to %d KiB for %d groups' summaries, %d KiB for the pause, %d KiB for the fence ACLs Rollback lists and %d KiB for step and failure records",
		b.Total/1024, b.Validated/1024, b.Mappings, b.FenceACLs,
		(b.Groups*stateBytesPerGroup+1023)/1024, b.Groups, (b.Mappings*stateBytesPerMapping+1023)/1024, (b.FenceBytes+1023)/1024, stateReserveBytes/1024)
}

// boundState computes the largest size st can reach in later steps.
func boundState(st *State) (stateBound, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return stateBound{}, err
	}
	// Rollback's result repeats the ACLs and policies the run creates.
	planned, _ := json.Marshal(st.Run.Fence.Planned)
	policies, _ := json.Marshal(st.Run.Fence.ExistingPolicies)
	sb := stateBound{Validated: len(b), Groups: len(st.Config.Groups), Mappings: st.Run.MappingCount,
		FenceACLs: len(st.Run.Fence.Planned) + len(st.Run.Fence.Existing), FenceBytes: len(planned) + len(policies) + 200*len(st.Config.ProducerRoles)}
	sb.Total = sb.Validated + stateReserveBytes + sb.Groups*stateBytesPerGroup + sb.Mappings*stateBytesPerMapping + sb.FenceBytes
	return sb, nil
}

// newRunID returns the run's ID: the execution's name when given, else a
// random one.
func newRunID(execution string) string {
	if execution != "" {
		return execution
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "run-" + hex.EncodeToString(b[:])
}

// putDetails writes v to the details topic under the run's ID and kind.
func (h *Handler) putDetails(ctx context.Context, st *State, kind string, v any) (rundetails.Ref, error) {
	ref, err := h.details.Put(ctx, st.Run.ID+"/"+kind, v)
	if err != nil {
		return rundetails.Ref{}, &ClusterError{Op: "writing the run's " + kind + " to the details topic", Err: err}
	}
	return ref, nil
}

// getDetails reads back what ref names into v.
func (h *Handler) getDetails(ctx context.Context, ref rundetails.Ref, v any) error {
	if err := h.details.Get(ctx, ref, v); err != nil {
		return &ClusterError{Op: "reading the run's details", Err: err}
	}
	return nil
}
