package esm

import (
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-lambda-go/lambda"
)

// ErrNotFound is returned for an unknown mapping UUID; an emulated Lambda
// API answers it with ResourceNotFoundException.
var ErrNotFound = errors.New("esm: event source mapping not found")

// ErrExists is returned when creating a mapping whose UUID is taken.
var ErrExists = errors.New("esm: event source mapping already exists")

// Registry holds the event source mappings of a local run, as the Lambda
// service does: lookup by UUID, listing by function, in creation order.
// It is safe for concurrent use.
type Registry struct {
	mu    sync.Mutex
	byID  map[string]*Mapping
	order []*Mapping
	seq   map[*Mapping]int64 // creation sequence, from 1, never reused
	last  int64
	wg    sync.WaitGroup // deletions in progress
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byID: make(map[string]*Mapping), seq: make(map[*Mapping]int64)}
}

// Create starts a mapping (see New) and registers it. It fails on invalid
// configuration or a UUID already registered (ErrExists); then nothing runs.
func (r *Registry) Create(cfg Config, h lambda.Handler) (*Mapping, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cfg.UUID != "" {
		if _, ok := r.byID[cfg.UUID]; ok {
			return nil, fmt.Errorf("creating mapping %s: %w", cfg.UUID, ErrExists)
		}
	}
	m, err := New(cfg, h)
	if err != nil {
		return nil, err
	}
	r.byID[m.UUID()] = m
	r.order = append(r.order, m)
	r.last++
	r.seq[m] = r.last
	return m, nil
}

// Get returns the mapping with the given UUID.
func (r *Registry) Get(uuid string) (*Mapping, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.byID[uuid]
	if !ok {
		return nil, fmt.Errorf("mapping %s: %w", uuid, ErrNotFound)
	}
	return m, nil
}

// List returns all mappings in creation order.
func (r *Registry) List() []*Mapping {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Mapping(nil), r.order...)
}

// ListByFunction returns, in creation order, the mappings whose function
// name or ARN equals function (as ListEventSourceMappings' FunctionName
// accepts either).
func (r *Registry) ListByFunction(function string) []*Mapping {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Mapping
	for _, m := range r.order {
		if m.cfg.FunctionName == function || m.cfg.FunctionArn == function {
			out = append(out, m)
		}
	}
	return out
}

// Page returns, in creation order, up to limit mappings created after the
// one whose position is after (0: from the first) for which keep reports
// true (nil keeps all), and the position to pass as after for the next
// page, 0 when no further mapping matches. Positions never change or get
// reused, so paging is stable while mappings are created and deleted: a
// mapping present throughout is returned exactly once.
func (r *Registry) Page(after int64, limit int, keep func(*Mapping) bool) (page []*Mapping, next int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.order {
		if r.seq[m] <= after || (keep != nil && !keep(m)) {
			continue
		}
		if len(page) == limit {
			return page, r.seq[page[len(page)-1]]
		}
		page = append(page, m)
	}
	return page, 0
}

// Delete unregisters the mapping and closes it, returning once it has
// stopped (in-flight batch committed, group left).
func (r *Registry) Delete(uuid string) error {
	m, err := r.BeginDelete(uuid)
	if err != nil {
		return err
	}
	m.Close()
	r.remove(m)
	return nil
}

// BeginDelete starts deleting the mapping and returns at once, as
// DeleteEventSourceMapping does: the mapping reads Deleting and stays
// listed until it has stopped (in-flight batch committed, group left),
// then it is unregistered. Deleting a mapping already Deleting is not an
// error.
func (r *Registry) BeginDelete(uuid string) (*Mapping, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.byID[uuid]
	if !ok {
		return nil, fmt.Errorf("deleting mapping %s: %w", uuid, ErrNotFound)
	}
	if m.startClose() {
		r.wg.Go(func() {
			m.Close()
			r.remove(m)
		})
	}
	return m, nil
}

// remove unregisters m if it is still registered.
func (r *Registry) remove(m *Mapping) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID[m.UUID()] == m {
		delete(r.byID, m.UUID())
	}
	delete(r.seq, m)
	for i, o := range r.order {
		if o == m {
			r.order = append(r.order[:i:i], r.order[i+1:]...)
			break
		}
	}
}

// Close closes every mapping concurrently and empties the registry.
func (r *Registry) Close() {
	r.mu.Lock()
	ms := r.order
	r.order = nil
	r.byID = make(map[string]*Mapping)
	r.seq = make(map[*Mapping]int64)
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(m.Close)
	}
	wg.Wait()
	r.wg.Wait()
}
