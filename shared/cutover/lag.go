package cutover

import "fmt"

// LagKind names why a partition is not drained.
type LagKind string

// The reasons a partition is not drained.
const (
	// LagOpenTransaction: a transaction is open on the source from offset
	// At (the last stable offset); its records may still commit. Want is
	// the source end.
	LagOpenTransaction LagKind = "openTransaction"
	// LagTargetBehind: the newest target record was copied from source
	// offset At (-1: the target partition holds none), and the source's
	// last data record is at Want.
	LagTargetBehind LagKind = "targetBehind"
	// LagReplicatorGroup: the replicator's mapping group Group has not
	// read every record below Want, the source end; it committed At (-1:
	// nothing).
	LagReplicatorGroup LagKind = "replicatorGroup"
	// LagGroup: the listed application group Group has not read every
	// record below Want, the source end; it committed At.
	LagGroup LagKind = "group"
)

// LagReason is one reason a partition is not drained: what stands At, and
// the position Want it has to reach. The fields a kind uses are described
// with the kind.
type LagReason struct {
	Kind  LagKind `json:"kind"`
	Group string  `json:"group,omitempty"`
	At    int64   `json:"at"`
	Want  int64   `json:"want"`
}

// String says the reason in a sentence, for errors and the dry run's plan.
func (r LagReason) String() string {
	switch r.Kind {
	case LagOpenTransaction:
		return fmt.Sprintf("a transaction is open on the source from offset %d", r.At)
	case LagTargetBehind:
		return fmt.Sprintf("target holds source offsets up to %d, source last is %d", r.At, r.Want)
	case LagReplicatorGroup:
		return fmt.Sprintf("replicator group %s committed %s of %d", r.Group, fmtCommit(r.At, r.At >= 0), r.Want)
	case LagGroup:
		return fmt.Sprintf("group %s committed %d of %d", r.Group, r.At, r.Want)
	}
	return fmt.Sprintf("%s at %d of %d", r.Kind, r.At, r.Want)
}
