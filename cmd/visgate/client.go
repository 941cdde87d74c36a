package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// apiError is a non-2xx answer of the orchestrator's API, in its error
// shape: {"error": Name, "message": ..., "details": {...}}.
type apiError struct {
	Status  int            `json:"-"`
	Name    string         `json:"error"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

func (e *apiError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (HTTP %d)", msg, e.Status)
	for k, v := range e.Details {
		fmt.Fprintf(&b, "\n  %s: %v", k, v)
	}
	return b.String()
}

// client talks to the orchestrator's public API.
type client struct {
	base   string // without a trailing slash
	apiKey string
	http   *http.Client
}

func newClient(base, apiKey string) *client {
	return &client{
		base:   strings.TrimRight(base, "/"),
		apiKey: strings.TrimPrefix(apiKey, "Bearer "),
		http:   &http.Client{Timeout: 60 * time.Second},
	}
}

// do sends a request with the API key and decodes a 2xx JSON answer into
// out (when not nil). It returns the raw body too, for --output json.
func (c *client) do(ctx context.Context, method, path string, body any, hdr http.Header, out any) (json.RawMessage, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "visgate-cli")
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(raw, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(raw))
			if len(e.Message) > 300 {
				e.Message = e.Message[:300] + "..."
			}
		}
		return nil, e
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return raw, nil
}

// deploymentPath is the path of one deployment.
func deploymentPath(id string) string {
	return "/v1/deployments/" + url.PathEscape(id)
}

// The API's shapes, as far as the client reads them.
type (
	progress struct {
		Phase      string `json:"phase"`
		BytesDone  int64  `json:"bytes_done"`
		BytesTotal int64  `json:"bytes_total"`
	}
	logEntry struct {
		Timestamp time.Time `json:"timestamp"`
		Level     string    `json:"level"`
		Message   string    `json:"message"`
	}
	price struct {
		Pool           string  `json:"pool"`
		PerHourUSD     float64 `json:"per_hour_usd"`
		IdlePerHourUSD float64 `json:"idle_per_hour_usd"`
		MaxPerHourUSD  float64 `json:"max_per_hour_usd"`
		Assumes        string  `json:"assumes"`
	}
	deploymentView struct {
		ID             string  `json:"deployment_id"`
		Status         string  `json:"status"`
		ModelID        string  `json:"model_id"`
		Task           *string `json:"task"`
		RequestedModel string  `json:"requested_model"`
		GPUTier        *string `json:"gpu_tier"`
		EndpointID     *string `json:"runpod_endpoint_id"`
		EndpointURL    *string `json:"endpoint_url"`
		GPUAllocated   *string `json:"gpu_allocated"`
		ModelVRAMGB    *int    `json:"model_vram_gb"`
		WebhookURL     *string `json:"webhook_url"`
		Webhook        struct {
			Delivered bool `json:"delivered"`
			Attempts  int  `json:"attempts"`
		} `json:"webhook"`
		Scaling struct {
			MinWorkers         int `json:"min_workers"`
			MaxWorkers         int `json:"max_workers"`
			IdleTimeoutSeconds int `json:"idle_timeout_seconds"`
		} `json:"scaling"`
		Progress *progress `json:"progress"`
		Limits   struct {
			MaxSpendUSD *float64   `json:"max_spend_usd"`
			ExpiresAt   *time.Time `json:"expires_at"`
		} `json:"limits"`
		Price *price `json:"price"`
		Spend *struct {
			USD float64 `json:"usd"`
		} `json:"spend"`
		DeletedReason *string    `json:"deleted_reason"`
		Logs          []logEntry `json:"logs"`
		Error         *string    `json:"error"`
		CreatedAt     time.Time  `json:"created_at"`
		ReadyAt       *time.Time `json:"ready_at"`
	}
	deploymentList struct {
		Deployments []deploymentView `json:"deployments"`
		NextCursor  *string          `json:"next_cursor"`
	}
	gpuList struct {
		GPUs []struct {
			Pool         string  `json:"pool"`
			VRAMGB       int     `json:"vram_gb"`
			PricePerHour float64 `json:"price_per_hour"`
			Cards        []struct {
				Name string `json:"name"`
			} `json:"cards"`
		} `json:"gpus"`
		CatalogSource string `json:"catalog_source"`
	}
	modelList struct {
		Models []struct {
			Provider    string `json:"provider"`
			ModelName   string `json:"model_name"`
			HFModelID   string `json:"hf_model_id"`
			Description string `json:"description"`
		} `json:"models"`
	}
)

// terminal reports whether status is one a deployment stays in for good
// as far as waiting goes.
func terminal(status string) bool {
	switch status {
	case "ready", "webhook_failed", "failed", "deleted":
		return true
	}
	return false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

var errNoEndpoint = errors.New("the deployment has no endpoint (it is not ready)")
