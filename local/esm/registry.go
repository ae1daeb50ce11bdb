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
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byID: make(map[string]*Mapping)}
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

// Delete unregisters the mapping and closes it, returning once it has
// stopped (in-flight batch committed, group left).
func (r *Registry) Delete(uuid string) error {
	r.mu.Lock()
	m, ok := r.byID[uuid]
	if ok {
		delete(r.byID, uuid)
		for i, o := range r.order {
			if o == m {
				r.order = append(r.order[:i:i], r.order[i+1:]...)
				break
			}
		}
	}
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("deleting mapping %s: %w", uuid, ErrNotFound)
	}
	m.Close()
	return nil
}

// Close closes every mapping concurrently and empties the registry.
func (r *Registry) Close() {
	r.mu.Lock()
	ms := r.order
	r.order = nil
	r.byID = make(map[string]*Mapping)
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(m.Close)
	}
	wg.Wait()
}
