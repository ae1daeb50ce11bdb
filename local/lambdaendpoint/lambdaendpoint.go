// Package lambdaendpoint is an emulated AWS Lambda API endpoint for local
// runs: it invokes in-process lambda.Handlers and serves the event source
// mapping calls the cutover uses, backed by the local/esm registry. The AWS
// SDKs reach it through AWS_ENDPOINT_URL_LAMBDA.
//
// It serves, in the wire shapes of the Lambda REST API:
//   - POST /2015-03-31/functions/{name}/invocations (RequestResponse),
//     failures answered with X-Amz-Function-Error: Unhandled and
//     {"errorType","errorMessage"} where errorType is the Go type name of
//     the returned error, as the Lambda Go runtime reports it. As on AWS,
//     an invocation runs to its end (or to FunctionTimeout) even when the
//     caller stops waiting for it: its context is not the HTTP request's,
//     and WaitIdle waits for every invocation to end;
//   - POST /2015-03-31/event-source-mappings/ (CreateEventSourceMapping
//     of a Kafka source), validated as the Lambda API reference says
//     (InvalidParameterValueException, ResourceNotFoundException for an
//     unregistered function, ResourceConflictException for a second
//     mapping of the same function, topic and source, or a consumer group
//     ID already in use) and answered 202 with the mapping Creating. A
//     MappingFactory (SetMappingFactory) adds what the request cannot
//     carry: client options, emulator settings such as esm.Config's
//     StartDelay;
//   - GET /2015-03-31/event-source-mappings/?FunctionName=&EventSourceArn=
//     &MaxItems=&Marker=, in creation order, at most MaxListItems a page
//     whatever MaxItems says, with NextMarker while more follow; paging is
//     stable while mappings are created and deleted;
//   - GET, PUT and DELETE /2015-03-31/event-source-mappings/{UUID} (only
//     Enabled may be updated). An update of a mapping that is Creating,
//     Enabling or Disabling is answered as AWS answers it, HTTP 400 with
//     x-amzn-ErrorType ResourceInUseException, so the AWS SDK for Go
//     returns *types.ResourceInUseException (see SetInTransitionError for
//     the other answer AWS documents for an operation in progress). A
//     delete answers 202 with the mapping Deleting; it stays listed until
//     it has stopped and left its group, then it is gone;
//   - GET, POST and DELETE /2017-03-31/tags/{ARN} (ListTags, TagResource,
//     UntagResource) on mapping ARNs (MappingArn), which every mapping
//     answer carries as EventSourceMappingArn.
//
// Every call but invocations counts against an optional control plane
// rate (SetControlPlaneRate, off by default); calls over it get HTTP 429
// TooManyRequestsException.
//
// It also holds Step Functions task tokens for a local run's
// .waitForTaskToken states: SendTaskSuccess/SendTaskFailure resolve a token
// and POST /local/task-tokens/{token}/wait long-polls for the outcome.
//
// It listens on loopback only, has no authentication, and must never be
// used by a Lambda binary.
package lambdaendpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
)

// Region and Account are what local ARNs use.
const (
	Region  = "us-east-1"
	Account = "000000000000"
)

// FunctionArn returns the local ARN of a function name.
func FunctionArn(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", Region, Account, name)
}

// FunctionName returns the function name in a name, partial ARN or ARN,
// without a version qualifier.
func FunctionName(nameOrArn string) string {
	s := nameOrArn
	if i := strings.Index(s, "function:"); i >= 0 {
		s = s[i+len("function:"):]
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return s
}

// FunctionTimeout is every local function's timeout, the longest Lambda
// allows: an invocation's context ends then.
const FunctionTimeout = 15 * time.Minute

// Server is the emulated endpoint. Its methods are safe for concurrent use.
type Server struct {
	mappings *esm.Registry

	mu     sync.Mutex
	funcs  map[string]lambda.Handler
	tokens map[string]*token
	calls  map[string]int
	// running counts invocations in progress; changed is closed and
	// replaced whenever it changes.
	running int
	changed chan struct{}

	// base is the parent of every invocation's context; Close cancels it,
	// as the end of an execution environment ends its invocations.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// inTransition answers an update of a mapping in transition.
	inTransition APIError
	// updateFault, when set, may answer an update instead of the mapping.
	updateFault func(uuid string, enabled bool) *APIError
	errs        map[string]int // API error answers by error type
	// factory completes created mappings' configurations.
	factory MappingFactory
	// limit, when set, rate-limits control plane calls.
	limit *bucket
	// metas holds what the API keeps about each mapping (tags, ...).
	metas map[string]*mappingMeta
	// createMu serializes CreateEventSourceMapping's check and create.
	createMu sync.Mutex

	ln  net.Listener
	srv *http.Server
}

type token struct {
	done   chan struct{}
	result TaskResult
}

// TaskResult is a resolved task token.
type TaskResult struct {
	Status string          `json:"status"` // success | failure | pending
	Output json.RawMessage `json:"output,omitempty"`
	Error  string          `json:"error,omitempty"`
	Cause  string          `json:"cause,omitempty"`
}

// New returns a Server backed by reg (which may be nil when no mapping
// calls are made).
func New(reg *esm.Registry) *Server {
	base, cancel := context.WithCancel(context.Background())
	return &Server{mappings: reg, funcs: map[string]lambda.Handler{}, tokens: map[string]*token{}, calls: map[string]int{},
		changed: make(chan struct{}), base: base, cancel: cancel, inTransition: ResourceInUse, errs: map[string]int{},
		metas: map[string]*mappingMeta{}}
}

// WaitIdle returns once no invocation is running, or with ctx's error.
func (s *Server) WaitIdle(ctx context.Context) error {
	for {
		s.mu.Lock()
		n, ch := s.running, s.changed
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("lambda endpoint: %d invocation(s) still running: %w", n, ctx.Err())
		}
	}
}

// track counts an invocation in (+1) or out (-1).
func (s *Server) track(d int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running += d
	close(s.changed)
	s.changed = make(chan struct{})
}

// APIError is an error answer of the Lambda REST API: the HTTP status and
// the error type sent in the x-amzn-ErrorType header.
type APIError struct {
	Status int
	Type   string
}

// The errors the Lambda API reference lists for UpdateEventSourceMapping
// on a resource that is busy: ResourceInUseException (HTTP 400, "you
// tried to update an event source mapping in the CREATING state") and
// ResourceConflictException (HTTP 409, "another operation is in
// progress").
var (
	ResourceInUse    = APIError{Status: http.StatusBadRequest, Type: "ResourceInUseException"}
	ResourceConflict = APIError{Status: http.StatusConflict, Type: "ResourceConflictException"}
)

// SetInTransitionError sets the answer to an update of a mapping that is
// Creating, Enabling or Disabling: ResourceInUse (the default) or
// ResourceConflict. AWS does not say which of the two such an update gets,
// so a caller must handle both.
func (s *Server) SetInTransitionError(e APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inTransition = e
}

// SetUpdateFault makes f see every UpdateEventSourceMapping first: a
// non-nil answer is sent instead of updating the mapping. Tests use it to
// stand in for a failure AWS may answer (AccessDeniedException for a
// mapping the role may not update, for example); nil removes it.
func (s *Server) SetUpdateFault(f func(uuid string, enabled bool) *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateFault = f
}

// Errors reports how many API calls were answered with error type typ
// (for example ResourceInUseException).
func (s *Server) Errors(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs[typ]
}

func (s *Server) countError(typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs[typ]++
}

// Register makes h invocable as name (and as its local ARN).
func (s *Server) Register(name string, h lambda.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.funcs[FunctionName(name)] = h
}

// Invocations reports how many times name was invoked.
func (s *Server) Invocations(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[FunctionName(name)]
}

// Start listens on addr (for example 127.0.0.1:0) and serves in the
// background. It returns the base URL for AWS_ENDPOINT_URL_LAMBDA.
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("lambda endpoint: listening on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s.URL(), nil
}

// URL is the base URL once started.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops serving, cancels the invocations still running and waits
// for them to return.
func (s *Server) Close() error {
	var err error
	if s.srv != nil {
		err = s.srv.Close()
	}
	s.cancel()
	s.wg.Wait()
	return err
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	const esmPath, tagsPath = "/2015-03-31/event-source-mappings/", "/2017-03-31/tags/"
	switch {
	case strings.HasPrefix(p, "/2015-03-31/functions/") && strings.HasSuffix(p, "/invocations") && r.Method == http.MethodPost:
		name, _ := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(p, "/2015-03-31/functions/"), "/invocations"))
		s.invoke(w, r, name)
	case strings.HasPrefix(p, "/local/task-tokens/") && strings.HasSuffix(p, "/wait") && r.Method == http.MethodPost:
		tok, _ := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(p, "/local/task-tokens/"), "/wait"))
		s.waitToken(w, r, tok)
	case p == esmPath || p == strings.TrimSuffix(esmPath, "/"):
		if s.throttled(w) {
			return
		}
		switch r.Method {
		case http.MethodGet:
			s.listMappings(w, r)
		case http.MethodPost:
			s.createMapping(w, r)
		default:
			apiError(w, http.StatusMethodNotAllowed, "InvalidRequestContentException", "method not supported by the local endpoint")
		}
	case strings.HasPrefix(p, esmPath):
		if s.throttled(w) {
			return
		}
		uuid, _ := url.PathUnescape(strings.TrimPrefix(p, esmPath))
		switch r.Method {
		case http.MethodGet:
			s.getMapping(w, uuid)
		case http.MethodPut:
			s.updateMapping(w, r, uuid)
		case http.MethodDelete:
			s.deleteMapping(w, uuid)
		default:
			apiError(w, http.StatusMethodNotAllowed, "InvalidRequestContentException", "method not supported by the local endpoint")
		}
	case strings.HasPrefix(p, tagsPath):
		if s.throttled(w) {
			return
		}
		arn, _ := url.PathUnescape(strings.TrimPrefix(p, tagsPath))
		s.tags(w, r, arn)
	default:
		apiError(w, http.StatusNotFound, "UnknownOperationException", "the local Lambda endpoint does not serve "+r.Method+" "+p)
	}
}

// apiError answers in the Lambda REST error shape: the status, the error
// type in x-amzn-ErrorType, and {"Type", "Message"} (some Lambda errors
// spell it "message"; the SDKs read either).
func apiError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(code)
	kind := "User"
	if code >= 500 {
		kind = "Service"
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": kind, "Message": msg})
}

// ErrorType is the errorType the Lambda Go runtime reports for err: the
// name of its dynamic type, without a pointer star or package.
func ErrorType(err error) string {
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		return t.Elem().Name()
	}
	return t.Name()
}

func (s *Server) invoke(w http.ResponseWriter, r *http.Request, nameOrArn string) {
	name := FunctionName(nameOrArn)
	s.mu.Lock()
	h, ok := s.funcs[name]
	if ok {
		s.calls[name]++
	}
	s.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+FunctionArn(name))
		return
	}
	if t := r.Header.Get("X-Amz-Invocation-Type"); t != "" && t != "RequestResponse" {
		apiError(w, http.StatusBadRequest, "InvalidParameterValueException", "the local endpoint supports only RequestResponse invocations, not "+t)
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, 6<<20+1))
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestContentException", err.Error())
		return
	}
	if len(payload) > 6<<20 {
		apiError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "payload exceeds 6 MB")
		return
	}
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	// The invocation does not end when its caller goes away: Step
	// Functions gives up on a Task at its TimeoutSeconds, and the function
	// runs on until it returns or its own timeout.
	ctx, cancel := context.WithTimeout(s.base, FunctionTimeout)
	defer cancel()
	s.wg.Add(1)
	s.track(+1)
	out, err := safeInvoke(ctx, h, payload)
	s.track(-1)
	s.wg.Done()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	if err != nil {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(map[string]string{"errorType": ErrorType(err), "errorMessage": err.Error()})
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// PanicError is the error reported for a handler that panicked.
type PanicError struct{ Value any }

func (e *PanicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.Value) }

func safeInvoke(ctx context.Context, h lambda.Handler, payload []byte) (out []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, &PanicError{Value: v}
		}
	}()
	return h.Invoke(ctx, payload)
}

// ---- event source mappings ----

// mappingJSON is EventSourceMappingConfiguration as the Lambda API returns it.
type mappingJSON struct {
	UUID                                string                      `json:"UUID"`
	EventSourceMappingArn               string                      `json:"EventSourceMappingArn"`
	FunctionArn                         string                      `json:"FunctionArn"`
	EventSourceArn                      string                      `json:"EventSourceArn,omitempty"`
	State                               string                      `json:"State"`
	StateTransitionReason               string                      `json:"StateTransitionReason"`
	LastModified                        float64                     `json:"LastModified"`
	LastProcessingResult                string                      `json:"LastProcessingResult,omitempty"`
	Topics                              []string                    `json:"Topics"`
	BatchSize                           int                         `json:"BatchSize"`
	MaximumBatchingWindowInSeconds      int                         `json:"MaximumBatchingWindowInSeconds"`
	StartingPosition                    string                      `json:"StartingPosition,omitempty"`
	StartingPositionTimestamp           float64                     `json:"StartingPositionTimestamp,omitempty"`
	SourceAccessConfigurations          []SourceAccessConfiguration `json:"SourceAccessConfigurations,omitempty"`
	SelfManagedEventSource              *selfManagedSource          `json:"SelfManagedEventSource,omitempty"`
	SelfManagedKafkaEventSourceConfig   *kafkaSourceConfig          `json:"SelfManagedKafkaEventSourceConfig,omitempty"`
	AmazonManagedKafkaEventSourceConfig *kafkaSourceConfig          `json:"AmazonManagedKafkaEventSourceConfig,omitempty"`
}

type selfManagedSource struct {
	Endpoints map[string][]string `json:"Endpoints"`
}

type kafkaSourceConfig struct {
	ConsumerGroupId string `json:"ConsumerGroupId"`
}

func (s *Server) toJSON(m *esm.Mapping) mappingJSON {
	meta := s.meta(m.UUID())
	j := mappingJSON{
		UUID: m.UUID(), EventSourceMappingArn: MappingArn(m.UUID()),
		FunctionArn: m.FunctionArn(), EventSourceArn: m.EventSourceArn(),
		State: string(m.State()), StateTransitionReason: "USER_INITIATED",
		LastModified:                   float64(m.LastModified().UnixMilli()) / 1000,
		LastProcessingResult:           m.LastProcessingResult(),
		Topics:                         m.Topics(),
		BatchSize:                      m.BatchSize(),
		MaximumBatchingWindowInSeconds: int(m.MaximumBatchingWindow() / time.Second),
		StartingPosition:               string(m.StartingPosition()),
		SourceAccessConfigurations:     meta.sourceAccess,
	}
	if !meta.startAt.IsZero() {
		j.StartingPositionTimestamp = float64(meta.startAt.UnixMilli()) / 1000
	}
	cg := &kafkaSourceConfig{ConsumerGroupId: m.ConsumerGroupID()}
	if m.EventSourceArn() != "" {
		j.AmazonManagedKafkaEventSourceConfig = cg
	} else {
		j.SelfManagedEventSource = &selfManagedSource{Endpoints: map[string][]string{"KAFKA_BOOTSTRAP_SERVERS": m.BootstrapServers()}}
		j.SelfManagedKafkaEventSourceConfig = cg
	}
	return j
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) lookup(w http.ResponseWriter, uuid string) *esm.Mapping {
	if s.mappings == nil {
		apiError(w, http.StatusNotFound, "ResourceNotFoundException", "The resource you requested does not exist.")
		return nil
	}
	m, err := s.mappings.Get(uuid)
	if err != nil {
		apiError(w, http.StatusNotFound, "ResourceNotFoundException", "The resource you requested does not exist. (Service: Lambda, mapping "+uuid+")")
		return nil
	}
	return m
}

func (s *Server) getMapping(w http.ResponseWriter, uuid string) {
	if m := s.lookup(w, uuid); m != nil {
		writeJSON(w, http.StatusOK, s.toJSON(m))
	}
}

func (s *Server) updateMapping(w http.ResponseWriter, r *http.Request, uuid string) {
	m := s.lookup(w, uuid)
	if m == nil {
		return
	}
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		apiError(w, http.StatusBadRequest, "InvalidRequestContentException", "could not parse request body: "+err.Error())
		return
	}
	for k := range body {
		if k != "Enabled" {
			apiError(w, http.StatusBadRequest, "InvalidParameterValueException", "the local endpoint can update only Enabled, not "+k)
			return
		}
	}
	if raw, ok := body["Enabled"]; ok {
		var en bool
		if err := json.Unmarshal(raw, &en); err != nil {
			apiError(w, http.StatusBadRequest, "InvalidParameterValueException", "Enabled must be a boolean")
			return
		}
		s.mu.Lock()
		fault, inTransition := s.updateFault, s.inTransition
		s.mu.Unlock()
		if fault != nil {
			if e := fault(uuid, en); e != nil {
				s.countError(e.Type)
				apiError(w, e.Status, e.Type, "update of event source mapping "+uuid+" refused by the local endpoint's fault")
				return
			}
		}
		err := m.SetEnabled(en)
		switch {
		case errors.Is(err, esm.ErrInTransition):
			s.countError(inTransition.Type)
			apiError(w, inTransition.Status, inTransition.Type,
				fmt.Sprintf("Cannot update the event source mapping %s because it is in use (state %s).", uuid, m.State()))
			return
		case errors.Is(err, esm.ErrDeleted):
			// Still listed, so still Deleting: the mapping is busy, as
			// one in transition is.
			s.countError(ResourceInUse.Type)
			apiError(w, ResourceInUse.Status, ResourceInUse.Type,
				fmt.Sprintf("Cannot update the event source mapping %s because it is in use (state %s).", uuid, esm.StateDeleting))
			return
		case err != nil:
			s.countError("ServiceException")
			apiError(w, http.StatusInternalServerError, "ServiceException", err.Error())
			return
		}
	}
	writeJSON(w, http.StatusAccepted, s.toJSON(m))
}

// ---- task tokens ----

func (s *Server) tokenEntry(tok string) *token {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	if !ok {
		t = &token{done: make(chan struct{})}
		s.tokens[tok] = t
	}
	return t
}

// ErrTokenResolved is returned when a token was already resolved.
var ErrTokenResolved = errors.New("lambdaendpoint: task token already resolved")

func (s *Server) resolve(tok string, res TaskResult) error {
	t := s.tokenEntry(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-t.done:
		return ErrTokenResolved
	default:
	}
	t.result = res
	close(t.done)
	return nil
}

// SendTaskSuccess resolves a task token with output, as the Step Functions
// API call of that name does.
func (s *Server) SendTaskSuccess(tok string, output json.RawMessage) error {
	if len(output) == 0 {
		output = json.RawMessage("{}")
	}
	return s.resolve(tok, TaskResult{Status: "success", Output: output})
}

// SendTaskFailure fails a task token with an error name and cause.
func (s *Server) SendTaskFailure(tok, errName, cause string) error {
	return s.resolve(tok, TaskResult{Status: "failure", Error: errName, Cause: cause})
}

func (s *Server) waitToken(w http.ResponseWriter, r *http.Request, tok string) {
	t := s.tokenEntry(tok)
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case <-t.done:
		s.mu.Lock()
		res := t.result
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, res)
	case <-timer.C:
		writeJSON(w, http.StatusOK, TaskResult{Status: "pending"})
	case <-r.Context().Done():
	}
}
