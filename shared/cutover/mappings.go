package cutover

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Event source mapping states, as the Lambda API reports them. A Kafka
// mapping may take up to 90 s after an update to stop or restart polling;
// it reads Disabling or Enabling meanwhile.
const (
	mappingEnabled   = "Enabled"
	mappingDisabled  = "Disabled"
	mappingDisabling = "Disabling"
	mappingDeleting  = "Deleting"
)

// polls reports whether a mapping in state s polls now or will without a
// further update: Enabled, and Creating, Enabling and Updating, which
// lead there (as does any state the API may add).
func polls(state string) bool {
	switch state {
	case mappingDisabled, mappingDisabling, mappingDeleting:
		return false
	}
	return true
}

// busy reports whether err is the Lambda API's answer for a mapping that
// cannot be updated yet: ResourceInUseException (documented for a mapping
// in transition), ResourceConflictException (documented for "another
// operation is in progress"; AWS does not say which of the two a mapping
// in transition gets), or TooManyRequestsException.
func busy(err error) bool {
	var (
		inUse    *types.ResourceInUseException
		conflict *types.ResourceConflictException
		throttle *types.TooManyRequestsException
	)
	return errors.As(err, &inUse) || errors.As(err, &conflict) || errors.As(err, &throttle)
}

func notFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

func (h *Handler) setEnabled(ctx context.Context, uuid string, enabled bool) error {
	_, err := h.d.Lambda.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: aws.String(uuid), Enabled: aws.Bool(enabled)})
	return err
}

func mappingTimeout(c Config) time.Duration {
	if c.MappingTimeoutSeconds <= 0 {
		return DefaultMappingTimeoutSeconds * time.Second
	}
	return time.Duration(c.MappingTimeoutSeconds) * time.Second
}

// ---- PauseReplication ----

// pauseReplication is one poll of PauseReplication. Every poll lists the
// replicator's mappings of the migrated topics. A mapping that polls and
// is not yet in Run.Disabled is added there, and is updated only from the
// next poll on, so the state Rollback receives names every mapping an
// update may have reached, even when an answer is lost or a later poll
// fails. A recorded mapping that still polls is sent Enabled=false; the
// updates of one poll go out concurrently, at most mappingParallelism at a
// time. An answer that it is busy (in transition, or throttled) leaves it
// to the next poll, as does an update not sent because the step's deadline
// is near. The step is done when every mapping reads Disabled (or is
// gone), and fails with *PauseFailedError at mappingTimeoutSeconds or on
// any other update error.
func (h *Handler) pauseReplication(ctx context.Context, st *State, first bool) (bool, error) {
	now := h.now()
	if first {
		st.Loop.Deadline = now.Add(mappingTimeout(st.Config))
	}
	maps, err := h.mappings(ctx, st.Config.Topics)
	if err != nil {
		return false, err
	}
	recordedSet := make(map[string]bool, len(st.Run.Disabled))
	for _, u := range st.Run.Disabled {
		recordedSet[u] = true
	}
	var waiting, failed []string
	var update []Mapping
	recorded := false
	for _, m := range maps {
		switch {
		case m.State == mappingDisabled:
			continue
		case !polls(m.State):
			waiting = append(waiting, fmt.Sprintf("mapping %s reads %s", m.UUID, m.State))
			continue
		case !recordedSet[m.UUID]:
			st.Run.Disabled = append(st.Run.Disabled, m.UUID)
			recordedSet[m.UUID] = true
			recorded = true
			waiting = append(waiting, fmt.Sprintf("mapping %s reads %s", m.UUID, m.State))
			continue
		}
		update = append(update, m)
	}
	errs := h.setEnabledAll(ctx, update, false)
	for i, m := range update {
		err := errs[i]
		switch {
		case err == nil:
			waiting = append(waiting, fmt.Sprintf("mapping %s read %s when disabled", m.UUID, m.State))
		case notFound(err): // deleted meanwhile: it polls no more
		case busy(err) || errors.Is(err, errNotSent):
			waiting = append(waiting, fmt.Sprintf("mapping %s reads %s (%s)", m.UUID, m.State, errorCode(err)))
		default:
			failed = append(failed, fmt.Sprintf("mapping %s could not be disabled: %v", m.UUID, err))
		}
	}
	if len(failed) > 0 {
		return false, &PauseFailedError{Mappings: append(failed, waiting...)}
	}
	if len(waiting) == 0 {
		return true, nil
	}
	if !now.Before(st.Loop.Deadline) {
		for i, w := range waiting {
			waiting[i] = fmt.Sprintf("%s, not Disabled, %s after PauseReplication began", w, now.Sub(st.Steps[StepPauseReplication].StartedAt).Round(time.Second))
		}
		return false, &PauseFailedError{Mappings: waiting}
	}
	if recorded {
		st.Loop.Next = now // disable what was just recorded at once
	}
	return false, nil
}

// mappingParallelism bounds how many mapping updates are in flight at
// once. Lambda's control plane API is rate limited per account and
// Region; the SDK's retryer backs off on TooManyRequestsException, and a
// throttled update is sent again on the next poll, so a small bound only
// keeps a burst of hundreds of updates from being throttled all at once.
const mappingParallelism = 10

// updateReserve is how much of a step's deadline an update needs: no
// update starts later than this (or a quarter of the step's budget, when
// that is less) before the deadline.
const updateReserve = 5 * time.Second

// lastUpdateStart is when the last update of ctx's step may start, on
// the Handler's clock; false when the step has no deadline.
func lastUpdateStart(ctx context.Context) (time.Time, bool) {
	sd, ok := ctx.Value(stepDeadlineKey{}).(stepDeadline)
	if !ok {
		return time.Time{}, false
	}
	return sd.at.Add(-min(updateReserve, sd.budget/4)), true
}

// errNotSent marks an update not sent because the step's deadline was
// near; the next poll sends it.
var errNotSent = errors.New("NotSentBeforeDeadline")

// setEnabledAll sends Enabled=enabled to every mapping of ms, at most
// mappingParallelism at a time, and returns each one's error (errNotSent
// for one not sent because ctx's deadline was near or ctx ended).
func (h *Handler) setEnabledAll(ctx context.Context, ms []Mapping, enabled bool) []error {
	errs := make([]error, len(ms))
	sem := make(chan struct{}, mappingParallelism)
	last, bounded := lastUpdateStart(ctx)
	var wg sync.WaitGroup
	for i, m := range ms {
		sem <- struct{}{}
		if (bounded && h.d.Clock.Now().After(last)) || ctx.Err() != nil {
			<-sem
			errs[i] = errNotSent
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = h.setEnabled(ctx, m.UUID, enabled)
		}()
	}
	wg.Wait()
	return errs
}

// errorCode is the API error code of err (ResourceInUseException, …).
func errorCode(err error) string {
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return err.Error()
}

// ---- resuming mappings (Rollback) ----

// resumed is where a Rollback poll found the mappings the run disabled.
type resumed struct {
	enabled []string  // read Enabled
	gone    []string  // no longer exist
	waiting []pending // not Enabled yet
	failed  []string  // an update failed other than busy
}

// pending is a mapping not Enabled yet and what was seen of it.
type pending struct {
	uuid, seen string
}

// resumeMappings moves each of uuids toward Enabled: a mapping that reads
// Disabled is sent Enabled=true (concurrently, as the pause does), one in
// transition (Disabling, Enabling, …) is left to finish, and a busy answer
// is left to the next poll.
func (h *Handler) resumeMappings(ctx context.Context, st *State) (resumed, error) {
	var r resumed
	if len(st.Run.Disabled) == 0 {
		return r, nil
	}
	maps, err := h.mappings(ctx, st.Config.Topics)
	if err != nil {
		return r, err
	}
	state := map[string]string{}
	for _, m := range maps {
		state[m.UUID] = m.State
	}
	var update []Mapping
	for _, u := range st.Run.Disabled {
		s, ok := state[u]
		switch {
		case !ok || s == mappingDeleting:
			r.gone = append(r.gone, u)
		case s == mappingEnabled:
			r.enabled = append(r.enabled, u)
		case s != mappingDisabled:
			r.waiting = append(r.waiting, pending{u, fmt.Sprintf("mapping %s reads %s", u, s)})
		default:
			update = append(update, Mapping{UUID: u, State: s})
		}
	}
	errs := h.setEnabledAll(ctx, update, true)
	for i, m := range update {
		u, err := m.UUID, errs[i]
		switch {
		case err == nil:
			r.waiting = append(r.waiting, pending{u, fmt.Sprintf("mapping %s read Disabled when enabled", u)})
		case notFound(err):
			r.gone = append(r.gone, u)
		case busy(err) || errors.Is(err, errNotSent):
			r.waiting = append(r.waiting, pending{u, fmt.Sprintf("mapping %s reads Disabled (%s)", u, errorCode(err))})
		default:
			r.failed = append(r.failed, fmt.Sprintf("mapping %s reads Disabled and could not be enabled: %v", u, err))
		}
	}
	return r, nil
}

// enableByHand is what an operator runs for a mapping Rollback could not
// confirm Enabled.
func enableByHand(uuid string) string {
	return "aws lambda update-event-source-mapping --uuid " + uuid + " --enabled"
}

// unconfirmed lists the mappings of r not confirmed Enabled, for a
// RollbackIncompleteError.
func (r resumed) unconfirmed(elapsed time.Duration) []string {
	out := append([]string{}, r.failed...)
	for _, w := range r.waiting {
		out = append(out, fmt.Sprintf("%s, not Enabled, %s after Rollback began (check it, then: %s)", w.seen, elapsed.Round(time.Second), enableByHand(w.uuid)))
	}
	return out
}
