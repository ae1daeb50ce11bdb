package lambdaendpoint

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
)

// Lambda API limits for Kafka event source mappings, from the Lambda API
// reference (CreateEventSourceMapping, ListEventSourceMappings).
const (
	// MaxListItems is the most mappings one ListEventSourceMappings page
	// holds: "ListEventSourceMappings returns a maximum of 100 items in
	// each response, even if you set the number higher."
	MaxListItems = 100
	// MaxConsumerGroupIDLength bounds ConsumerGroupId (1 to 200).
	MaxConsumerGroupIDLength = 200
	// ControlPlaneRate is Lambda's documented quota for the "remainder of
	// the control plane API requests (excludes invocation, GetFunction,
	// and GetPolicy requests)": 15 requests per second across all APIs.
	ControlPlaneRate = 15
)

// Patterns of the Lambda API reference.
var (
	consumerGroupIDPattern = regexp.MustCompile(`^[a-zA-Z0-9-\/*:_+=.@-]*$`)
	// The API reference gives ^[^.]([a-zA-Z0-9\-_.]+) with a length of 1
	// to 249; this accepts the one-character names that length allows.
	topicPattern = regexp.MustCompile(`^[^.]([a-zA-Z0-9\-_.]*)$`)
	arnPattern   = regexp.MustCompile(`^arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)$`)
)

// Source access configuration types the Lambda API accepts.
var sourceAccessTypes = []string{
	"BASIC_AUTH", "VPC_SUBNET", "VPC_SECURITY_GROUP", "SASL_SCRAM_512_AUTH", "SASL_SCRAM_256_AUTH",
	"VIRTUAL_HOST", "CLIENT_CERTIFICATE_TLS_AUTH", "SERVER_ROOT_CA_CERTIFICATE",
}

// MappingArn returns the local ARN of an event source mapping.
func MappingArn(uuid string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:event-source-mapping:%s", Region, Account, uuid)
}

// SourceAccessConfiguration is one entry of a mapping's
// SourceAccessConfigurations: how Lambda reaches and authenticates to the
// source (VPC_SUBNET, SASL_SCRAM_512_AUTH with a secret ARN, ...).
type SourceAccessConfiguration struct {
	Type string `json:"Type"`
	URI  string `json:"URI"`
}

// CreateRequest is a validated CreateEventSourceMapping request, as a
// MappingFactory sees it.
type CreateRequest struct {
	// FunctionName is the function as the request names it (name or ARN).
	FunctionName string
	// EventSourceArn is the MSK cluster ARN; empty for self-managed Kafka.
	EventSourceArn string
	// BootstrapServers are SelfManagedEventSource's
	// KAFKA_BOOTSTRAP_SERVERS; empty for MSK.
	BootstrapServers []string
	// Topics holds the one topic.
	Topics []string
	// ConsumerGroupID is from AmazonManagedKafkaEventSourceConfig or
	// SelfManagedKafkaEventSourceConfig; empty when not given.
	ConsumerGroupID string
	// StartingPosition is TRIM_HORIZON, LATEST or AT_TIMESTAMP (with
	// StartingPositionTimestamp).
	StartingPosition          string
	StartingPositionTimestamp time.Time
	// BatchSize is 0 when not given.
	BatchSize int
	// MaximumBatchingWindowInSeconds is nil when not given.
	MaximumBatchingWindowInSeconds *int
	SourceAccessConfigurations     []SourceAccessConfiguration
	Tags                           map[string]string
	// Enabled is false only when the request says Enabled: false.
	Enabled bool
	// Config is the mapping the fields above describe: UUID assigned,
	// FunctionName resolved to a name, consumer group defaulting to the
	// UUID. A factory usually returns it with ClientOptions (and any
	// emulator setting such as StartDelay) added.
	Config esm.Config
}

// MappingFactory completes the configuration of a mapping being created,
// with what the request cannot carry: how to connect to the source (client
// options for its SourceAccessConfigurations) and emulator settings. The
// returned Config's FunctionName must be registered (Register): its
// handler is what the mapping invokes. An error refuses the request with
// InvalidParameterValueException.
type MappingFactory func(ctx context.Context, req CreateRequest) (esm.Config, error)

// SetMappingFactory sets how CreateEventSourceMapping builds a mapping's
// configuration. Without one, the request's Config is used as it is,
// which suits a source reachable without authentication.
func (s *Server) SetMappingFactory(f MappingFactory) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.factory = f
}

// SetControlPlaneRate limits the event source mapping and tagging calls
// (every call but invocations, as Lambda's control plane quota does) to
// perSecond requests per second, with bursts of up to perSecond calls
// (at least 1): calls over it are answered with HTTP 429
// TooManyRequestsException, as AWS answers them. 0 (the default) removes
// the limit. ControlPlaneRate is AWS's quota.
func (s *Server) SetControlPlaneRate(perSecond float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if perSecond <= 0 {
		s.limit = nil
		return
	}
	burst := max(1, math.Ceil(perSecond))
	s.limit = &bucket{rate: perSecond, burst: burst, tokens: burst, last: time.Now()}
}

// bucket is a token bucket: rate tokens a second, at most burst.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *bucket) take(now time.Time) bool {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// throttled reports (and answers) a control plane call over the rate.
func (s *Server) throttled(w http.ResponseWriter) bool {
	s.mu.Lock()
	ok := s.limit == nil || s.limit.take(time.Now())
	s.mu.Unlock()
	if ok {
		return false
	}
	s.countError("TooManyRequestsException")
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException")
	w.WriteHeader(http.StatusTooManyRequests)
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": "Rate exceeded", "Reason": "CallerRateLimitExceeded"})
	return true
}

// mappingMeta is what the API keeps about a mapping beside the emulator.
type mappingMeta struct {
	sourceAccess []SourceAccessConfiguration
	startAt      time.Time
	tags         map[string]string
}

func (s *Server) meta(uuid string) mappingMeta {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.metas[uuid]
	if m == nil {
		return mappingMeta{}
	}
	return *m
}

// createBody is the CreateEventSourceMapping request body (its Kafka part).
type createBody struct {
	FunctionName           *string `json:"FunctionName"`
	EventSourceArn         *string `json:"EventSourceArn"`
	Topics                 []string
	SelfManagedEventSource *struct {
		Endpoints map[string][]string `json:"Endpoints"`
	} `json:"SelfManagedEventSource"`
	AmazonManagedKafkaEventSourceConfig *kafkaSourceConfig          `json:"AmazonManagedKafkaEventSourceConfig"`
	SelfManagedKafkaEventSourceConfig   *kafkaSourceConfig          `json:"SelfManagedKafkaEventSourceConfig"`
	StartingPosition                    *string                     `json:"StartingPosition"`
	StartingPositionTimestamp           *float64                    `json:"StartingPositionTimestamp"`
	BatchSize                           *int                        `json:"BatchSize"`
	MaximumBatchingWindowInSeconds      *int                        `json:"MaximumBatchingWindowInSeconds"`
	SourceAccessConfigurations          []SourceAccessConfiguration `json:"SourceAccessConfigurations"`
	Tags                                map[string]string           `json:"Tags"`
	Enabled                             *bool                       `json:"Enabled"`
}

// parseCreate validates a request as the Lambda API does and returns the
// CreateRequest, or the InvalidParameterValueException message.
func parseCreate(b createBody, uuid string) (CreateRequest, string) {
	var bad []string
	req := CreateRequest{
		FunctionName:                   deref(b.FunctionName),
		EventSourceArn:                 deref(b.EventSourceArn),
		Topics:                         b.Topics,
		StartingPosition:               deref(b.StartingPosition),
		SourceAccessConfigurations:     b.SourceAccessConfigurations,
		Tags:                           b.Tags,
		Enabled:                        b.Enabled == nil || *b.Enabled,
		MaximumBatchingWindowInSeconds: b.MaximumBatchingWindowInSeconds,
	}
	if n := len(req.FunctionName); n < 1 || n > 140 {
		bad = append(bad, "FunctionName is required (1 to 140 characters)")
	}
	switch {
	case req.EventSourceArn != "" && b.SelfManagedEventSource != nil:
		bad = append(bad, "EventSourceArn and SelfManagedEventSource are mutually exclusive")
	case req.EventSourceArn != "":
		if !arnPattern.MatchString(req.EventSourceArn) || !strings.HasPrefix(strings.SplitN(req.EventSourceArn, ":", 4)[2], "kafka") {
			bad = append(bad, "EventSourceArn "+req.EventSourceArn+" is not an Amazon MSK cluster ARN")
		}
		if b.SelfManagedKafkaEventSourceConfig != nil {
			bad = append(bad, "SelfManagedKafkaEventSourceConfig is for self-managed Kafka; use AmazonManagedKafkaEventSourceConfig")
		}
		if b.AmazonManagedKafkaEventSourceConfig != nil {
			req.ConsumerGroupID = b.AmazonManagedKafkaEventSourceConfig.ConsumerGroupId
		}
	case b.SelfManagedEventSource != nil:
		req.BootstrapServers = b.SelfManagedEventSource.Endpoints["KAFKA_BOOTSTRAP_SERVERS"]
		if len(req.BootstrapServers) == 0 || len(b.SelfManagedEventSource.Endpoints) != 1 {
			bad = append(bad, "SelfManagedEventSource.Endpoints must hold KAFKA_BOOTSTRAP_SERVERS only, with at least one server")
		}
		if b.AmazonManagedKafkaEventSourceConfig != nil {
			bad = append(bad, "AmazonManagedKafkaEventSourceConfig is for Amazon MSK; use SelfManagedKafkaEventSourceConfig")
		}
		if b.SelfManagedKafkaEventSourceConfig != nil {
			req.ConsumerGroupID = b.SelfManagedKafkaEventSourceConfig.ConsumerGroupId
		}
	default:
		bad = append(bad, "an event source is required: EventSourceArn (Amazon MSK) or SelfManagedEventSource (self-managed Kafka)")
	}
	if len(req.Topics) != 1 {
		bad = append(bad, fmt.Sprintf("Topics must hold exactly one topic, not %d", len(req.Topics)))
	}
	for _, t := range req.Topics {
		if len(t) > 249 || !topicPattern.MatchString(t) {
			bad = append(bad, fmt.Sprintf("topic %q does not satisfy the constraints: 1 to 249 characters, pattern ^[^.]([a-zA-Z0-9\\-_.]+)", t))
		}
	}
	if (b.AmazonManagedKafkaEventSourceConfig != nil || b.SelfManagedKafkaEventSourceConfig != nil) &&
		(len(req.ConsumerGroupID) < 1 || len(req.ConsumerGroupID) > MaxConsumerGroupIDLength || !consumerGroupIDPattern.MatchString(req.ConsumerGroupID)) {
		bad = append(bad, fmt.Sprintf("ConsumerGroupId %q does not satisfy the constraints: 1 to %d characters, pattern [a-zA-Z0-9-\\/*:_+=.@-]*", req.ConsumerGroupID, MaxConsumerGroupIDLength))
	}
	switch req.StartingPosition {
	case "":
		bad = append(bad, "StartingPosition is required for Kafka event sources (TRIM_HORIZON, LATEST or AT_TIMESTAMP)")
	case "TRIM_HORIZON", "LATEST":
		if b.StartingPositionTimestamp != nil {
			bad = append(bad, "StartingPositionTimestamp is allowed only with StartingPosition AT_TIMESTAMP")
		}
	case "AT_TIMESTAMP":
		if b.StartingPositionTimestamp == nil {
			bad = append(bad, "StartingPositionTimestamp is required with StartingPosition AT_TIMESTAMP")
		} else {
			req.StartingPositionTimestamp = time.UnixMilli(int64(math.Round(*b.StartingPositionTimestamp * 1000)))
		}
	default:
		bad = append(bad, fmt.Sprintf("StartingPosition %q is not TRIM_HORIZON, LATEST or AT_TIMESTAMP", req.StartingPosition))
	}
	if b.BatchSize != nil {
		if *b.BatchSize < 1 || *b.BatchSize > esm.MaxBatchSize {
			bad = append(bad, fmt.Sprintf("BatchSize %d is not between 1 and %d", *b.BatchSize, esm.MaxBatchSize))
		}
		req.BatchSize = *b.BatchSize
	}
	if w := b.MaximumBatchingWindowInSeconds; w != nil && (*w < 0 || *w > int(esm.MaxMaximumBatchingWindow/time.Second)) {
		bad = append(bad, fmt.Sprintf("MaximumBatchingWindowInSeconds %d is not between 0 and 300", *w))
	}
	if len(req.SourceAccessConfigurations) > 22 {
		bad = append(bad, "SourceAccessConfigurations holds more than 22 entries")
	}
	for _, a := range req.SourceAccessConfigurations {
		if !slices.Contains(sourceAccessTypes, a.Type) || len(a.URI) < 1 || len(a.URI) > 200 {
			bad = append(bad, fmt.Sprintf("source access configuration {%s %s} is invalid", a.Type, a.URI))
		}
	}
	if msg := validTags(req.Tags); msg != "" {
		bad = append(bad, msg)
	}
	if len(bad) > 0 {
		return req, strings.Join(bad, "; ")
	}

	cfg := esm.Config{
		UUID:             uuid,
		FunctionName:     FunctionName(req.FunctionName),
		Topics:           slices.Clone(req.Topics),
		ConsumerGroupID:  req.ConsumerGroupID,
		EventSourceArn:   req.EventSourceArn,
		BootstrapServers: slices.Clone(req.BootstrapServers),
		BatchSize:        req.BatchSize,
		StartingPosition: esm.StartingPosition(req.StartingPosition),
		StartDisabled:    !req.Enabled,
	}
	cfg.FunctionArn = FunctionArn(cfg.FunctionName)
	if req.StartingPosition == "AT_TIMESTAMP" {
		cfg.StartingPositionTimestamp = req.StartingPositionTimestamp
	}
	if w := req.MaximumBatchingWindowInSeconds; w != nil {
		cfg.MaximumBatchingWindow = time.Duration(*w) * time.Second
		if *w == 0 {
			cfg.MaximumBatchingWindow = -1 // no waiting
		}
	}
	req.Config = cfg
	return req, ""
}

// validTags checks tags as Lambda's TagResource does: at most 50, keys of
// 1 to 128 characters not starting with "aws:", values of at most 256.
func validTags(tags map[string]string) string {
	if len(tags) > 50 {
		return fmt.Sprintf("%d tags exceed the limit of 50 per resource", len(tags))
	}
	for k, v := range tags {
		if len(k) < 1 || len(k) > 128 || strings.HasPrefix(strings.ToLower(k), "aws:") || len(v) > 256 {
			return fmt.Sprintf("tag %q is invalid: keys have 1 to 128 characters and must not start with aws:, values at most 256", k)
		}
	}
	return ""
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// sameSource reports whether m reads topic from the source req names.
func sameSource(m *esm.Mapping, cfg esm.Config) bool {
	if m.FunctionName() != cfg.FunctionName || !slices.Equal(m.Topics(), cfg.Topics) || m.EventSourceArn() != cfg.EventSourceArn {
		return false
	}
	if cfg.EventSourceArn != "" {
		return true
	}
	a, b := m.BootstrapServers(), slices.Clone(cfg.BootstrapServers)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func (s *Server) createMapping(w http.ResponseWriter, r *http.Request) {
	if s.mappings == nil {
		s.fail(w, http.StatusInternalServerError, "ServiceException", "the local endpoint has no mapping registry")
		return
	}
	var b createBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil && !errors.Is(err, io.EOF) {
		s.fail(w, http.StatusBadRequest, "InvalidRequestContentException", "could not parse request body: "+err.Error())
		return
	}
	req, msg := parseCreate(b, esm.NewUUID())
	if msg != "" {
		s.fail(w, http.StatusBadRequest, "InvalidParameterValueException", msg)
		return
	}
	s.mu.Lock()
	_, known := s.funcs[req.Config.FunctionName]
	factory := s.factory
	s.mu.Unlock()
	if !known {
		s.fail(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+req.Config.FunctionArn)
		return
	}
	cfg := req.Config
	if factory != nil {
		var err error
		if cfg, err = factory(r.Context(), req); err != nil {
			s.fail(w, http.StatusBadRequest, "InvalidParameterValueException", "event source mapping refused: "+err.Error())
			return
		}
		if cfg.UUID == "" {
			cfg.UUID = req.Config.UUID
		}
		if cfg.FunctionArn == "" {
			cfg.FunctionArn = FunctionArn(cfg.FunctionName)
		}
	}
	s.mu.Lock()
	h, ok := s.funcs[FunctionName(cfg.FunctionName)]
	s.mu.Unlock()
	if !ok {
		s.fail(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+FunctionArn(cfg.FunctionName))
		return
	}

	// One create at a time, so two identical requests cannot both pass
	// the conflict checks.
	s.createMu.Lock()
	defer s.createMu.Unlock()
	for _, m := range s.mappings.List() {
		if sameSource(m, cfg) {
			s.fail(w, http.StatusConflict, "ResourceConflictException", fmt.Sprintf(
				"An event source mapping with event source (%s), function (%s), topics (%s) already exists. Please update or delete the existing mapping with UUID %s",
				sourceName(cfg), cfg.FunctionArn, strings.Join(cfg.Topics, ","), m.UUID()))
			return
		}
		if cfg.ConsumerGroupID != "" && m.ConsumerGroupID() == cfg.ConsumerGroupID {
			s.fail(w, http.StatusConflict, "ResourceConflictException", fmt.Sprintf(
				"Consumer group ID %s is already used by the event source mapping with UUID %s; it must be unique among all your Kafka event sources",
				cfg.ConsumerGroupID, m.UUID()))
			return
		}
	}
	m, err := s.mappings.Create(cfg, h)
	switch {
	case errors.Is(err, esm.ErrExists):
		s.fail(w, http.StatusConflict, "ResourceConflictException", err.Error())
		return
	case err != nil:
		s.fail(w, http.StatusBadRequest, "InvalidParameterValueException", err.Error())
		return
	}
	s.mu.Lock()
	s.metas[m.UUID()] = &mappingMeta{sourceAccess: slices.Clone(req.SourceAccessConfigurations), startAt: req.StartingPositionTimestamp, tags: cloneTags(req.Tags)}
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, s.toJSON(m))
}

func sourceName(cfg esm.Config) string {
	if cfg.EventSourceArn != "" {
		return cfg.EventSourceArn
	}
	return strings.Join(cfg.BootstrapServers, ",")
}

func cloneTags(t map[string]string) map[string]string {
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}

// fail answers an API error and counts it.
func (s *Server) fail(w http.ResponseWriter, code int, typ, msg string) {
	s.countError(typ)
	apiError(w, code, typ, msg)
}

func (s *Server) deleteMapping(w http.ResponseWriter, uuid string) {
	if s.lookup(w, uuid) == nil {
		return
	}
	m, err := s.mappings.BeginDelete(uuid)
	if err != nil {
		s.fail(w, http.StatusNotFound, "ResourceNotFoundException", "The resource you requested does not exist. (Service: Lambda, mapping "+uuid+")")
		return
	}
	j := s.toJSON(m)
	go func() {
		<-m.Done()
		s.mu.Lock()
		delete(s.metas, uuid)
		s.mu.Unlock()
	}()
	writeJSON(w, http.StatusAccepted, j)
}

// listMappings answers ListEventSourceMappings: the mappings of
// FunctionName (name, ARN or partial ARN) and of EventSourceArn when given,
// in creation order, at most MaxItems (and at most MaxListItems) a page,
// with NextMarker when more follow.
func (s *Server) listMappings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := MaxListItems
	if v := q.Get("MaxItems"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			s.fail(w, http.StatusBadRequest, "InvalidParameterValueException", "MaxItems "+v+" is not between 1 and 10000")
			return
		}
		limit = min(n, MaxListItems)
	}
	var after int64
	if v := q.Get("Marker"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err == nil {
			after, err = strconv.ParseInt(strings.TrimPrefix(string(raw), "esm:"), 10, 64)
		}
		if err != nil || !strings.HasPrefix(string(raw), "esm:") || after < 1 {
			s.fail(w, http.StatusBadRequest, "InvalidParameterValueException", "Marker "+v+" is not one this API returned")
			return
		}
	}
	out := map[string]any{"EventSourceMappings": []mappingJSON{}}
	if s.mappings == nil {
		writeJSON(w, http.StatusOK, out)
		return
	}
	fn, src := q.Get("FunctionName"), q.Get("EventSourceArn")
	name := FunctionName(fn)
	page, next := s.mappings.Page(after, limit, func(m *esm.Mapping) bool {
		return (fn == "" || m.FunctionName() == fn || m.FunctionArn() == fn || m.FunctionName() == name) &&
			(src == "" || m.EventSourceArn() == src)
	})
	ms := make([]mappingJSON, 0, len(page))
	for _, m := range page {
		ms = append(ms, s.toJSON(m))
	}
	out["EventSourceMappings"] = ms
	if next > 0 {
		out["NextMarker"] = base64.RawURLEncoding.EncodeToString([]byte("esm:" + strconv.FormatInt(next, 10)))
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- tags ----

// taggedMapping returns the UUID of the mapping a tagging call's resource
// ARN names, or answers the error.
func (s *Server) taggedMapping(w http.ResponseWriter, arn string) (string, bool) {
	prefix := fmt.Sprintf("arn:aws:lambda:%s:%s:event-source-mapping:", Region, Account)
	uuid, ok := strings.CutPrefix(arn, prefix)
	if !ok {
		if !arnPattern.MatchString(arn) {
			s.fail(w, http.StatusBadRequest, "InvalidParameterValueException", "Resource "+arn+" is not an ARN")
			return "", false
		}
		s.fail(w, http.StatusNotFound, "ResourceNotFoundException", "the local endpoint tags event source mappings only, not "+arn)
		return "", false
	}
	if s.mappings == nil {
		s.fail(w, http.StatusNotFound, "ResourceNotFoundException", "The resource you requested does not exist. ("+arn+")")
		return "", false
	}
	if _, err := s.mappings.Get(uuid); err != nil {
		s.fail(w, http.StatusNotFound, "ResourceNotFoundException", "The resource you requested does not exist. ("+arn+")")
		return "", false
	}
	return uuid, true
}

func (s *Server) tags(w http.ResponseWriter, r *http.Request, arn string) {
	uuid, ok := s.taggedMapping(w, arn)
	if !ok {
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"Tags": cloneTags(s.meta(uuid).tags)})
	case http.MethodPost:
		var body struct{ Tags map[string]string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			s.fail(w, http.StatusBadRequest, "InvalidRequestContentException", "could not parse request body: "+err.Error())
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		m := s.metas[uuid]
		if m == nil {
			m = &mappingMeta{}
			s.metas[uuid] = m
		}
		merged := cloneTags(m.tags)
		for k, v := range body.Tags {
			merged[k] = v
		}
		if msg := validTags(merged); msg != "" {
			s.errs["InvalidParameterValueException"]++
			apiError(w, http.StatusBadRequest, "InvalidParameterValueException", msg)
			return
		}
		m.tags = merged
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		keys := r.URL.Query()["tagKeys"]
		s.mu.Lock()
		if m := s.metas[uuid]; m != nil {
			m.tags = cloneTags(m.tags)
			for _, k := range keys {
				delete(m.tags, k)
			}
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		s.fail(w, http.StatusMethodNotAllowed, "InvalidRequestContentException", "method not supported by the local endpoint")
	}
}
