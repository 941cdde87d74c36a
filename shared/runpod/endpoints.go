package runpod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// DefaultQueueDelay is the QUEUE_DELAY scaler's threshold, in seconds, that
// CreateEndpoint sets (RunPod's own example value).
const DefaultQueueDelay = 4

// EndpointSpec describes a queue-based GPU serverless endpoint to create.
//
// Env is sent to RunPod as it is and may hold secrets (an HF token, a
// callback secret): never log it. The type implements slog.LogValuer, which
// shows the env keys only.
type EndpointSpec struct {
	Name  string
	Image string
	Env   map[string]string
	// Pools are serverless GPU pool ids (gpu.Pool.ID), preferred first.
	Pools []string
	// ExcludedTypes are GPU type ids subtracted from Pools (to pin a card).
	ExcludedTypes []string
	// GPUCount is GPUs per worker; 0 means 1.
	GPUCount int
	// AllowedCudaVersions limits workers to hosts with these CUDA versions
	// ("13.0"); empty allows any. MinCudaVersion ("13.0") is a floor
	// instead; RunPod refuses both together.
	AllowedCudaVersions []string
	MinCudaVersion      string
	// WorkersMin is sent as it is (0: scale to zero; no worker starts until a
	// job arrives). WorkersMax 0 leaves RunPod's default (3).
	WorkersMin, WorkersMax int
	// IdleTimeout in seconds (1 to 3600); 0 leaves RunPod's default (10).
	IdleTimeout int
	// ContainerDiskGB; 0 leaves RunPod's default.
	ContainerDiskGB int
	Flashboot       bool
	// ExecutionTimeoutMs is the per-request timeout; 0 leaves RunPod's default
	// (300000).
	ExecutionTimeoutMs int
}

// LogValue implements slog.LogValuer without the env values.
func (s EndpointSpec) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", s.Name),
		slog.String("image", s.Image),
		slog.Any("env_keys", sortedKeys(s.Env)),
		slog.Any("pools", s.Pools),
		slog.Int("workers_min", s.WorkersMin),
		slog.Int("workers_max", s.WorkersMax),
	)
}

// validate catches what RunPod would refuse, before any call.
func (s EndpointSpec) validate() error {
	var problems []string
	if strings.TrimSpace(s.Name) == "" {
		problems = append(problems, "a name is required")
	}
	if strings.TrimSpace(s.Image) == "" {
		problems = append(problems, "an image is required")
	}
	if len(s.Pools) == 0 {
		problems = append(problems, "at least one GPU pool is required")
	}
	if s.GPUCount < 0 || s.WorkersMin < 0 || s.WorkersMax < 0 || s.ContainerDiskGB < 0 || s.ExecutionTimeoutMs < 0 {
		problems = append(problems, "counts, sizes and timeouts cannot be negative")
	}
	if s.WorkersMax > 0 && s.WorkersMin > s.WorkersMax {
		problems = append(problems, fmt.Sprintf("workers min %d is above max %d", s.WorkersMin, s.WorkersMax))
	}
	if s.IdleTimeout < 0 || s.IdleTimeout > 3600 {
		problems = append(problems, "idle timeout must be between 1 and 3600 seconds")
	}
	if len(problems) > 0 {
		return fmt.Errorf("runpod: invalid endpoint spec: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Endpoint is a serverless endpoint as RunPod describes it.
//
// Env is what RunPod returns, secrets included: never log it (LogValue shows
// the keys only).
type Endpoint struct {
	ID            string
	Name          string // may differ from the name sent (RunPod can alter names)
	Type          string // QUEUE or LOAD_BALANCER
	Image         string
	Env           map[string]string
	Pools         []string
	ExcludedTypes []string
	GPUCount      int
	WorkersMin    int
	WorkersMax    int
	IdleTimeout   int
	// URL is the base for requests to the endpoint, from requestUrls:
	// https://api.runpod.ai/v2/{id} for a queue endpoint (append /run,
	// /runsync, /health...), the base URL for a load-balancing one.
	URL                string
	Flashboot          string // OFF, FLASHBOOT or PRIORITY_FLASHBOOT
	ExecutionTimeoutMs int
	ContainerDiskGB    int
	CreatedAt          time.Time
}

// LogValue implements slog.LogValuer without the env values.
func (e Endpoint) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", e.ID),
		slog.String("name", e.Name),
		slog.Any("env_keys", sortedKeys(e.Env)),
		slog.Any("pools", e.Pools),
	)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Wire types, from the openapi document (CreateEndpointRequest, Endpoint,
// UpdateEndpointRequest).

type wireGPU struct {
	Pools               []string `json:"pools,omitempty"`
	ExcludedTypes       []string `json:"excludedTypes,omitempty"`
	Count               int      `json:"count,omitempty"`
	AllowedCudaVersions []string `json:"allowedCudaVersions,omitempty"`
	MinCudaVersion      string   `json:"minCudaVersion,omitempty"`
}

type wireWorkers struct {
	Min         *int `json:"min,omitempty"`
	Max         *int `json:"max,omitempty"`
	IdleTimeout *int `json:"idleTimeout,omitempty"`
}

type wireScaling struct {
	Type       string  `json:"type"`
	QueueDelay float64 `json:"queueDelay,omitempty"`
}

type createEndpointRequest struct {
	Name      string            `json:"name"`
	Type      string            `json:"type"`
	Image     string            `json:"image"`
	Env       map[string]string `json:"env,omitempty"`
	Disk      int               `json:"disk,omitempty"`
	GPU       wireGPU           `json:"gpu"`
	Workers   wireWorkers       `json:"workers"`
	Scaling   wireScaling       `json:"scaling"`
	Timeout   int               `json:"timeout,omitempty"`
	Flashboot string            `json:"flashboot"`
}

type updateEndpointRequest struct {
	Workers wireWorkers `json:"workers"`
}

type wireRequestURLs struct {
	Run    string `json:"run"`
	Health string `json:"health"`
	Base   string `json:"base"`
}

type wireEndpoint struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Type        string            `json:"type"`
	RequestURLs *wireRequestURLs  `json:"requestUrls"`
	Image       string            `json:"image"`
	Disk        int               `json:"disk"`
	Env         map[string]string `json:"env"`
	GPU         *wireGPU          `json:"gpu"`
	Workers     wireWorkers       `json:"workers"`
	Timeout     int               `json:"timeout"`
	Flashboot   string            `json:"flashboot"`
	CreatedAt   time.Time         `json:"createdAt"`
}

type listEndpointsResponse struct {
	Endpoints []wireEndpoint `json:"endpoints"`
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func (w wireEndpoint) endpoint() Endpoint {
	e := Endpoint{
		ID:                 w.ID,
		Name:               w.Name,
		Type:               w.Type,
		Image:              w.Image,
		Env:                w.Env,
		WorkersMin:         deref(w.Workers.Min),
		WorkersMax:         deref(w.Workers.Max),
		IdleTimeout:        deref(w.Workers.IdleTimeout),
		Flashboot:          w.Flashboot,
		ExecutionTimeoutMs: w.Timeout,
		ContainerDiskGB:    w.Disk,
		CreatedAt:          w.CreatedAt,
	}
	if w.GPU != nil {
		e.Pools = w.GPU.Pools
		e.ExcludedTypes = w.GPU.ExcludedTypes
		e.GPUCount = w.GPU.Count
	}
	if u := w.RequestURLs; u != nil {
		switch {
		case u.Base != "":
			e.URL = u.Base
		case u.Run != "":
			e.URL = strings.TrimSuffix(u.Run, "/run")
		case u.Health != "":
			e.URL = strings.TrimSuffix(u.Health, "/health")
		}
	}
	return e
}

// CreateEndpoint creates a queue-based GPU endpoint (POST /v2/serverless,
// scaler QUEUE_DELAY). It is not idempotent on RunPod's side: to make a
// retried create safe, put a unique marker in spec.Env and look for it with
// FindEndpoint before creating again.
func (c *Client) CreateEndpoint(ctx context.Context, key secret.Secret, spec EndpointSpec) (*Endpoint, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	req := createEndpointRequest{
		Name:  spec.Name,
		Type:  "QUEUE",
		Image: spec.Image,
		Env:   spec.Env,
		Disk:  spec.ContainerDiskGB,
		GPU: wireGPU{
			Pools:               spec.Pools,
			ExcludedTypes:       spec.ExcludedTypes,
			Count:               max(spec.GPUCount, 1),
			AllowedCudaVersions: spec.AllowedCudaVersions,
			MinCudaVersion:      spec.MinCudaVersion,
		},
		Workers: wireWorkers{Min: &spec.WorkersMin},
		Scaling: wireScaling{Type: "QUEUE_DELAY", QueueDelay: DefaultQueueDelay},
		Timeout: spec.ExecutionTimeoutMs,
	}
	if spec.WorkersMax > 0 {
		req.Workers.Max = &spec.WorkersMax
	}
	if spec.IdleTimeout > 0 {
		req.Workers.IdleTimeout = &spec.IdleTimeout
	}
	req.Flashboot = "OFF"
	if spec.Flashboot {
		req.Flashboot = "FLASHBOOT"
	}
	var w wireEndpoint
	if err := c.do(ctx, key, "POST", "/serverless", req, &w); err != nil {
		return nil, fmt.Errorf("creating RunPod endpoint: %w", err)
	}
	e := w.endpoint()
	return &e, nil
}

// GetEndpoint reads one endpoint (GET /v2/serverless/{id}). A missing one is
// an *Error for which IsNotFound is true.
func (c *Client) GetEndpoint(ctx context.Context, key secret.Secret, id string) (*Endpoint, error) {
	if id == "" {
		return nil, errors.New("runpod: reading an endpoint: no endpoint id")
	}
	var w wireEndpoint
	if err := c.do(ctx, key, "GET", "/serverless/"+url.PathEscape(id), nil, &w); err != nil {
		return nil, fmt.Errorf("reading RunPod endpoint %s: %w", id, err)
	}
	e := w.endpoint()
	return &e, nil
}

// ListEndpoints lists every serverless endpoint of the key's account
// (GET /v2/serverless).
func (c *Client) ListEndpoints(ctx context.Context, key secret.Secret) ([]Endpoint, error) {
	var w listEndpointsResponse
	if err := c.do(ctx, key, "GET", "/serverless", nil, &w); err != nil {
		return nil, fmt.Errorf("listing RunPod endpoints: %w", err)
	}
	out := make([]Endpoint, 0, len(w.Endpoints))
	for _, we := range w.Endpoints {
		out = append(out, we.endpoint())
	}
	return out, nil
}

// FindEndpoints returns every endpoint whose env has envKey=envValue, oldest
// first.
func (c *Client) FindEndpoints(ctx context.Context, key secret.Secret, envKey, envValue string) ([]Endpoint, error) {
	all, err := c.ListEndpoints(ctx, key)
	if err != nil {
		return nil, err
	}
	var found []Endpoint
	for _, e := range all {
		if v, ok := e.Env[envKey]; ok && v == envValue {
			found = append(found, e)
		}
	}
	slices.SortStableFunc(found, func(a, b Endpoint) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return found, nil
}

// FindEndpoint returns the endpoint whose env has envKey=envValue (nil, nil
// if none; the oldest if several). Names are not unique and RunPod can alter
// them, so an idempotent create finds its earlier endpoint by an env marker,
// never by name.
func (c *Client) FindEndpoint(ctx context.Context, key secret.Secret, envKey, envValue string) (*Endpoint, error) {
	found, err := c.FindEndpoints(ctx, key, envKey, envValue)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	return &found[0], nil
}

// UpdateScaling sets the endpoint's worker bounds and idle timeout
// (PATCH /v2/serverless/{id} with only "workers"; every other setting is left
// as it is). idleTimeout 0 leaves the current one.
func (c *Client) UpdateScaling(ctx context.Context, key secret.Secret, id string, workersMin, workersMax, idleTimeout int) error {
	if id == "" {
		return errors.New("runpod: updating scaling: no endpoint id")
	}
	if workersMin < 0 || workersMax < 0 || workersMin > workersMax || idleTimeout < 0 || idleTimeout > 3600 {
		return fmt.Errorf("runpod: updating scaling of %s: invalid bounds min=%d max=%d idleTimeout=%d",
			id, workersMin, workersMax, idleTimeout)
	}
	req := updateEndpointRequest{Workers: wireWorkers{Min: &workersMin, Max: &workersMax}}
	if idleTimeout > 0 {
		req.Workers.IdleTimeout = &idleTimeout
	}
	if err := c.do(ctx, key, "PATCH", "/serverless/"+url.PathEscape(id), req, nil); err != nil {
		return fmt.Errorf("updating scaling of RunPod endpoint %s: %w", id, err)
	}
	return nil
}

// DeleteEndpoint deletes the endpoint, its workers and its bound template
// (DELETE /v2/serverless/{id}). An endpoint that is already gone counts as
// deleted: 404 returns nil.
func (c *Client) DeleteEndpoint(ctx context.Context, key secret.Secret, id string) error {
	if id == "" {
		return errors.New("runpod: deleting an endpoint: no endpoint id")
	}
	err := c.do(ctx, key, "DELETE", "/serverless/"+url.PathEscape(id), nil, nil)
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("deleting RunPod endpoint %s: %w", id, err)
	}
	return nil
}
