package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// deployment is what the bench reads of a deployment (SPEC's public shape).
type deployment struct {
	ID               string     `json:"deployment_id"`
	Status           string     `json:"status"`
	Error            *string    `json:"error"`
	RunPodEndpointID *string    `json:"runpod_endpoint_id"`
	CreatedAt        time.Time  `json:"created_at"`
	ReadyAt          *time.Time `json:"ready_at"`
}

// client talks to one server with the bench's key.
type client struct {
	base string
	hc   *http.Client
}

func newClient(base string, conns int) *client {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	return &client{base: base, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (c *client) do(ctx context.Context, method, path string, header http.Header, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// create POSTs a deployment of a model the Hub simulator knows, with its
// webhook to hook, and returns its id.
func (c *client) create(ctx context.Context, hook, idemKey string) (string, error) {
	body, _ := json.Marshal(map[string]string{ // strings always encode
		"hf_model_id":      "stabilityai/sdxl-turbo",
		"user_runpod_key":  "rpa_bench",
		"user_webhook_url": hook,
	})
	var h http.Header
	if idemKey != "" {
		h = http.Header{"Idempotency-Key": {idemKey}}
	}
	var out deployment
	if err := c.do(ctx, http.MethodPost, "/v1/deployments", h, body, http.StatusAccepted, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

func (c *client) get(ctx context.Context, id string) (deployment, error) {
	var d deployment
	err := c.do(ctx, http.MethodGet, "/v1/deployments/"+url.PathEscape(id), nil, nil, http.StatusOK, &d)
	return d, err
}

// getRaw returns the body of GET /v1/deployments/{id}, as the bare server
// answers it.
func (c *client) getRaw(ctx context.Context, id string) ([]byte, error) {
	var raw json.RawMessage
	err := c.do(ctx, http.MethodGet, "/v1/deployments/"+url.PathEscape(id), nil, nil, http.StatusOK, &raw)
	return raw, err
}

// list returns every deployment of the key with the given status ("" for
// all), page by page.
func (c *client) list(ctx context.Context, status string) ([]deployment, error) {
	var all []deployment
	cursor := ""
	for {
		q := url.Values{"limit": {"100"}}
		if status != "" {
			q.Set("status", status)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Deployments []deployment `json:"deployments"`
			NextCursor  *string      `json:"next_cursor"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/deployments?"+q.Encode(), nil, nil, http.StatusOK, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Deployments...)
		if page.NextCursor == nil || *page.NextCursor == "" {
			return all, nil
		}
		cursor = *page.NextCursor
	}
}

// waitReady polls the deployment every poll until it is ready; failed or
// timeout is an error.
func (c *client) waitReady(ctx context.Context, id string, poll, timeout time.Duration) (deployment, error) {
	deadline := time.Now().Add(timeout)
	for {
		d, err := c.get(ctx, id)
		if err != nil {
			return d, err
		}
		switch {
		case d.Status == "ready" && d.ReadyAt != nil:
			return d, nil
		case d.Status == "failed":
			msg := ""
			if d.Error != nil {
				msg = *d.Error
			}
			return d, fmt.Errorf("deployment %s failed: %s", id, msg)
		case time.Now().After(deadline):
			return d, fmt.Errorf("deployment %s still %s after %s", id, d.Status, timeout)
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// waitHook waits for the deployment's ready webhook, then reads it: no
// polling load on the server while it works. A GET every second notices a
// deployment that failed instead.
func (c *client) waitHook(ctx context.Context, hooks *hookReceiver, id string, timeout time.Duration) (deployment, error) {
	deadline := time.After(timeout)
	readied := hooks.readied(id)
	for {
		select {
		case <-readied:
			d, err := c.get(ctx, id)
			if err == nil && (d.Status != "ready" || d.ReadyAt == nil) {
				// the ready webhook can follow scaling; the status stays ready
				err = fmt.Errorf("deployment %s: ready webhook, but status %s", id, d.Status)
			}
			return d, err
		case <-time.After(time.Second):
			d, err := c.get(ctx, id)
			if err != nil {
				return d, err
			}
			if d.Status == "failed" {
				return d, fmt.Errorf("deployment %s failed", id)
			}
		case <-deadline:
			return deployment{}, fmt.Errorf("deployment %s: no ready webhook after %s", id, timeout)
		case <-ctx.Done():
			return deployment{}, ctx.Err()
		}
	}
}

// hookReceiver answers the service's webhooks with 204 and counts them per
// deployment and per webhook-id.
type hookReceiver struct {
	URL string
	srv *http.Server

	mu      sync.Mutex
	ids     map[string]int           // webhook-id -> deliveries
	ready   map[string]int           // deployment -> distinct deployment.ready webhook ids
	waiters map[string]chan struct{} // deployment -> closed on its first ready webhook
}

func newHookReceiver() (*hookReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &hookReceiver{URL: "http://" + ln.Addr().String() + "/hook", ids: map[string]int{}, ready: map[string]int{}, waiters: map[string]chan struct{}{}}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		Type string `json:"type"`
		Data struct {
			ID string `json:"deployment_id"`
		} `json:"data"`
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	_ = json.Unmarshal(b, &ev)
	id := r.Header.Get("webhook-id")
	h.mu.Lock()
	h.ids[id]++
	if h.ids[id] == 1 && ev.Type == "deployment.ready" {
		h.ready[ev.Data.ID]++
		if h.ready[ev.Data.ID] == 1 {
			close(h.waiterLocked(ev.Data.ID))
		}
	}
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) waiterLocked(id string) chan struct{} {
	ch, ok := h.waiters[id]
	if !ok {
		ch = make(chan struct{})
		h.waiters[id] = ch
	}
	return ch
}

// readied returns a channel closed once the deployment's ready webhook
// arrived (at once when it already has).
func (h *hookReceiver) readied(id string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ready[id] > 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return h.waiterLocked(id)
}

// readyCounts returns, per deployment, how many distinct ready webhooks
// arrived.
func (h *hookReceiver) readyCounts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(h.ready))
	for k, v := range h.ready {
		out[k] = v
	}
	return out
}

func (h *hookReceiver) close() { _ = h.srv.Close() }

// raw sends one request to a full URL and returns the 200's body as it is.
func (c *client) raw(ctx context.Context, method, url string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}
