package openapitest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/openapi/openapitest"
)

// summary is a list item: a deployment without its logs.
func summary() map[string]any { return without(deployment(), "logs") }

func deployment() map[string]any {
	return map[string]any{
		"deployment_id":           "dep_2026_a3686d66",
		"status":                  "creating_endpoint",
		"model_id":                "black-forest-labs/FLUX.1-schnell",
		"task":                    "text-to-image",
		"provider":                "fal",
		"requested_model":         "veo3",
		"gpu_tier":                nil,
		"runpod_endpoint_id":      nil,
		"endpoint_url":            nil,
		"gpu_allocated":           nil,
		"model_vram_gb":           8,
		"estimated_ready_seconds": 180,
		"webhook_url":             "https://example.com/webhook",
		"webhook": map[string]any{
			"delivered": false, "attempts": 0, "last_status_code": nil, "last_error": nil,
			"last_attempt_at": nil, "delivered_at": nil,
		},
		"scaling":  map[string]any{"min_workers": 0, "max_workers": 1, "idle_timeout_seconds": 5},
		"progress": nil,
		"logs": []any{
			map[string]any{"timestamp": "2026-02-14T13:28:59.228406Z", "level": "INFO", "message": "Validating Hugging Face model"},
		},
		"error":      nil,
		"created_at": "2026-02-14T13:28:57.253043Z",
		"updated_at": "2026-02-14T13:29:00.499217Z",
		"ready_at":   nil,
		"limits":     map[string]any{"max_spend_usd": nil, "expires_at": nil, "expiry_source": nil},
		"price":      nil, "spend": nil, "deleted_reason": nil,
	}
}

// priced is d once its pool was chosen and its spend read.
func priced(d map[string]any) map[string]any {
	d["price"] = map[string]any{"pool": "AMPERE_48", "per_hour_usd": 1.22, "per_second_usd": 1.22 / 3600,
		"loading_per_hour_usd": 1.22, "idle_per_hour_usd": 0, "max_per_hour_usd": 1.22, "fallback_max_per_hour_usd": 1.9,
		"catalog_source": "runpod", "catalog_at": "2026-02-14T13:00:00Z", "assumes": "one worker"}
	d["spend"] = map[string]any{"usd": 0.42, "source": "runpod_billing", "read_at": "2026-02-14T14:00:00Z", "since": "2026-02-14T13:00:00Z",
		"bucket_seconds": 3600, "last_error": nil, "failing_since": nil, "note": "hourly buckets"}
	d["limits"] = map[string]any{"max_spend_usd": 0.4, "expires_at": "2026-02-15T13:00:00Z", "expiry_source": "owner"}
	return d
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type response struct {
	status int
	header http.Header
	body   any // marshalled unless a string
}

func (r response) build(t *testing.T) (*http.Response, []byte) {
	t.Helper()
	var body []byte
	switch b := r.body.(type) {
	case nil:
	case string:
		body = []byte(b)
	default:
		body = mustJSON(t, b)
	}
	h := http.Header{}
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		h[k] = v
	}
	return &http.Response{StatusCode: r.status, Header: h}, body
}

func with(m map[string]any, key string, value any) map[string]any {
	m[key] = value
	return m
}

func without(m map[string]any, key string) map[string]any {
	delete(m, key)
	return m
}

func errorBody(name string, details map[string]any) map[string]any {
	return map[string]any{"error": name, "message": "something", "details": details}
}

func TestValidResponses(t *testing.T) {
	v := openapitest.NewValidator(t)
	cases := []struct {
		name, method, target string
		resp                 response
	}{
		{"health", "GET", "/health", response{status: 200, body: map[string]any{"status": "ok"}}},
		{"root", "GET", "/", response{status: 200, body: map[string]any{"service": "deployment-orchestrator", "docs": "/docs"}}},
		{"unready", "GET", "/readiness", response{status: 503, body: map[string]any{"status": "unready", "error": "store down"}}},
		{"created", "POST", "/v1/deployments", response{
			status: 202,
			header: http.Header{"Location": {"/v1/deployments/dep_2026_c1badc17"}},
			body: map[string]any{
				"deployment_id": "dep_2026_c1badc17", "status": "validating", "model_id": "stabilityai/sdxl-turbo",
				"estimated_ready_seconds": 180, "webhook_url": "https://example.com/hook", "created_at": "2026-02-14T13:28:55Z",
				"limits": map[string]any{"max_spend_usd": 5, "expires_at": nil, "expiry_source": nil}, "price": nil,
			},
		}},
		{"deleted at the spend limit", "GET", "/v1/deployments/dep_2026_a3686d66", response{status: 200,
			body: with(with(priced(deployment()), "status", "deleted"), "deleted_reason", "max_spend_reached")}},
		{"spend estimated while the billing cannot be read", "GET", "/v1/deployments/dep_2026_a3686d66", response{status: 200,
			body: with(priced(deployment()), "spend", map[string]any{"usd": 0.03, "source": "estimate", "read_at": nil,
				"since": "2026-02-14T13:00:00Z", "bucket_seconds": 0, "last_error": "RunPod did not answer in time",
				"failing_since": "2026-02-14T13:05:00Z", "note": "estimate"})}},
		{"patched", "PATCH", "/v1/deployments/dep_2026_a3686d66", response{status: 200, body: priced(deployment())}},
		{"patch refused", "PATCH", "/v1/deployments/dep_2026_a3686d66", response{status: 409,
			body: errorBody("ConflictError", map[string]any{"deployment_id": "dep_2026_a3686d66", "status": "deleted"})}},
		{"get", "GET", "/v1/deployments/dep_2026_a3686d66", response{status: 200, body: deployment()}},
		{"get ready", "GET", "/v1/deployments/dep_2026_a3686d66", response{status: 200, body: with(with(deployment(),
			"status", "ready"), "ready_at", "2026-02-14T13:31:39.871004+00:00")}},
		{"list", "GET", "/v1/deployments?limit=5&status=ready", response{status: 200, body: map[string]any{
			"deployments": []any{summary()}, "next_cursor": nil}}},
		{"delete", "DELETE", "/v1/deployments/dep_2026_a3686d66", response{status: 204}},
		{"not found", "GET", "/v1/deployments/dep_fake_123", response{status: 404,
			body: errorBody("DeploymentNotFoundError", map[string]any{"deployment_id": "dep_fake_123"})}},
		{"unauthorized", "DELETE", "/v1/deployments/x", response{status: 401, body: errorBody("UnauthorizedError", map[string]any{})}},
		{"rate limited", "GET", "/v1/deployments", response{status: 429,
			header: http.Header{"Retry-After": {"12"}}, body: errorBody("RateLimitError", map[string]any{})}},
		{"internal error", "POST", "/v1/deployments", response{status: 500,
			body: errorBody("InternalError", map[string]any{"request_id": "abc123"})}},
		{"webhook secret", "GET", "/v1/webhook-secret", response{status: 200, body: map[string]any{"webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}},
		{"gpus", "GET", "/v1/gpus", response{status: 200, body: map[string]any{"gpus": []any{map[string]any{
			"pool": "AMPERE_48", "vram_gb": 48, "price_per_hour": 0.00034 * 3600, "price_per_second": 0.00034,
			"cards": []any{map[string]any{"id": "NVIDIA A40", "name": "A40"}}}},
			"catalog_source": "embedded", "catalog_at": nil, "prices_note": "list prices"}}},
		{"models", "GET", "/v1/models", response{status: 200, body: map[string]any{"models": []any{map[string]any{
			"provider": "fal", "model_name": "veo3", "hf_model_id": "black-forest-labs/FLUX.1-schnell", "description": "FLUX"}}}}},
		{"internal ready", "POST", "/internal/deployment-ready/dep_2026_a3686d66", response{status: 200,
			body: map[string]any{"deployment_id": "dep_2026_a3686d66", "status": "ready", "webhook_delivered": false}}},
		{"docs page", "GET", "/docs", response{status: 200, header: http.Header{"Content-Type": {"text/html; charset=utf-8"}}, body: "<!DOCTYPE html>"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.target, nil)
			resp, body := c.resp.build(t)
			if err := v.CheckResponse(req, resp, body); err != nil {
				t.Errorf("valid response rejected: %v", err)
			}
		})
	}
}

func TestInvalidResponses(t *testing.T) {
	v := openapitest.NewValidator(t)
	created := func() map[string]any {
		return map[string]any{
			"deployment_id": "dep_2026_c1badc17", "status": "validating", "model_id": "m",
			"estimated_ready_seconds": 180, "webhook_url": "https://example.com/hook", "created_at": "2026-02-14T13:28:55Z",
			"limits": map[string]any{"max_spend_usd": nil, "expires_at": nil, "expiry_source": nil}, "price": nil,
		}
	}
	location := http.Header{"Location": {"/v1/deployments/dep_2026_c1badc17"}}
	cases := []struct {
		name, method, target string
		resp                 response
		wantErr              string
	}{
		{"undocumented route", "GET", "/v2/nothing", response{status: 200, body: map[string]any{}}, "not a documented operation"},
		{"undocumented method", "PUT", "/health", response{status: 200, body: map[string]any{"status": "ok"}}, "not a documented operation"},
		{"undocumented status", "GET", "/health", response{status: 418, body: map[string]any{"status": "ok"}}, "status 418 is not documented"},
		{"wrong value", "GET", "/health", response{status: 200, body: map[string]any{"status": "fine"}}, "status"},
		{"missing Location", "POST", "/v1/deployments", response{status: 202, body: created()}, "Location"},
		{"malformed id", "POST", "/v1/deployments", response{status: 202, header: location,
			body: with(created(), "deployment_id", "deployment-1")}, "deployment_id"},
		{"leaked secret", "GET", "/v1/deployments/dep_2026_a3686d66", response{status: 200,
			body: with(deployment(), "user_runpod_key", "rpa_xxx")}, "user_runpod_key"},
		{"missing field", "GET", "/v1/deployments/dep_2026_a3686d66", response{status: 200,
			body: without(deployment(), "updated_at")}, "updated_at"},
		{"null where not nullable", "GET", "/v1/deployments/dep_2026_a3686d66", response{status: 200,
			body: with(deployment(), "model_id", nil)}, "model_id"},
		{"bad date-time", "GET", "/v1/deployments/dep_2026_a3686d66", response{status: 200,
			body: with(deployment(), "created_at", "14/02/2026")}, "created_at"},
		{"unknown status", "GET", "/v1/deployments/dep_2026_a3686d66", response{status: 200,
			body: with(deployment(), "status", "booting")}, "status"},
		{"logs in webhook state", "GET", "/v1/deployments/dep_2026_a3686d66", response{status: 200,
			body: with(deployment(), "webhook", map[string]any{"delivered": "yes"})}, "webhook"},
		{"wrong content type", "GET", "/health", response{status: 200,
			header: http.Header{"Content-Type": {"text/plain"}}, body: `{"status":"ok"}`}, "Content-Type"},
		{"not JSON", "GET", "/health", response{status: 200, body: `status: ok`}, "decode"},
		{"body on 204", "DELETE", "/v1/deployments/dep_2026_a3686d66", response{status: 204, body: map[string]any{}}, "without a body"},
		{"error name mismatch", "GET", "/v1/deployments/x", response{status: 404,
			body: errorBody("NotFound", map[string]any{})}, "error"},
		{"error without details", "GET", "/v1/deployments/x", response{status: 404,
			body: without(errorBody("DeploymentNotFoundError", nil), "details")}, "details"},
		{"500 without request_id", "GET", "/v1/deployments/x", response{status: 500,
			body: errorBody("InternalError", map[string]any{})}, "request_id"},
		{"429 without Retry-After", "GET", "/v1/deployments/x", response{status: 429,
			body: errorBody("RateLimitError", map[string]any{})}, "Retry-After"},
		{"409 where undocumented", "GET", "/v1/deployments/x", response{status: 409,
			body: errorBody("ConflictError", map[string]any{})}, "status 409 is not documented"},
		{"list items with logs", "GET", "/v1/deployments", response{status: 200, body: map[string]any{
			"deployments": []any{deployment()}, "next_cursor": nil}}, "logs"},
		{"bad webhook secret", "GET", "/v1/webhook-secret", response{status: 200,
			body: map[string]any{"webhook_secret": "secret"}}, "webhook_secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.target, nil)
			resp, body := c.resp.build(t)
			err := v.CheckResponse(req, resp, body)
			if err == nil {
				t.Fatal("invalid response accepted")
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("error %q does not mention %q", err, c.wantErr)
			}
		})
	}
}

func TestRequests(t *testing.T) {
	v := openapitest.NewValidator(t)
	bearer := http.Header{"Authorization": {"Bearer k"}, "Content-Type": {"application/json"}}
	internal := http.Header{"X-Visgate-Internal-Secret": {"s"}, "Content-Type": {"application/json"}}
	byID := `{"hf_model_id":"stabilityai/sdxl-turbo","user_runpod_key":"rpa_test","user_webhook_url":"https://example.com/hook","gpu_tier":"A40"}`
	cases := []struct {
		name, method, target string
		header               http.Header
		body                 string
		valid                bool
	}{
		{"create by id", "POST", "/v1/deployments", bearer, byID, true},
		{"create by name", "POST", "/v1/deployments", bearer,
			`{"model_name":"veo3","provider":"fal","user_runpod_key":"rpa_xxx","user_webhook_url":"https://example.com/webhook"}`, true},
		{"create with scaling and key", "POST", "/v1/deployments",
			http.Header{"Authorization": {"Bearer k"}, "Content-Type": {"application/json"}, "Idempotency-Key": {"abc"}},
			`{"model_name":"veo3","user_runpod_key":"r","user_webhook_url":"https://e.com/h","min_workers":0,"max_workers":100,"idle_timeout_seconds":3600}`, true},
		{"create without a webhook", "POST", "/v1/deployments", bearer, `{"hf_model_id":"a/b","user_runpod_key":"r"}`, true},
		{"create by name with a ttl", "POST", "/v1/deployments", bearer, `{"model_name":"veo3","user_runpod_key":"r","ttl_seconds":3600}`, true},
		{"create with ttl and expiry", "POST", "/v1/deployments", bearer,
			`{"hf_model_id":"a/b","user_runpod_key":"r","ttl_seconds":3600,"expires_at":"2027-06-30T12:00:00Z"}`, false},
		{"create by name with ttl and expiry", "POST", "/v1/deployments", bearer,
			`{"model_name":"veo3","user_runpod_key":"r","ttl_seconds":3600,"expires_at":"2027-06-30T12:00:00Z"}`, false},
		{"patch with ttl and expiry", "PATCH", "/v1/deployments/dep_2026_a3686d66", bearer,
			`{"ttl_seconds":3600,"expires_at":"2027-06-30T12:00:00Z"}`, false},
		{"patch with a ttl", "PATCH", "/v1/deployments/dep_2026_a3686d66", bearer, `{"ttl_seconds":3600}`, true},
		{"create without auth", "POST", "/v1/deployments", http.Header{"Content-Type": {"application/json"}}, byID, false},
		{"create with both models", "POST", "/v1/deployments", bearer,
			`{"hf_model_id":"a/b","model_name":"veo3","user_runpod_key":"r","user_webhook_url":"https://e.com/h"}`, false},
		{"create with neither model", "POST", "/v1/deployments", bearer, `{"user_runpod_key":"r","user_webhook_url":"https://e.com/h"}`, false},
		{"create with provider and hf id", "POST", "/v1/deployments", bearer,
			`{"hf_model_id":"a/b","provider":"fal","user_runpod_key":"r","user_webhook_url":"https://e.com/h"}`, false},
		{"create with unknown field", "POST", "/v1/deployments", bearer,
			`{"hf_model_id":"a/b","user_runpod_key":"r","user_webhook_url":"https://e.com/h","gpu":"A40"}`, false},
		{"create without runpod key", "POST", "/v1/deployments", bearer, `{"hf_model_id":"a/b","user_webhook_url":"https://e.com/h"}`, false},
		{"create out of range", "POST", "/v1/deployments", bearer,
			`{"hf_model_id":"a/b","user_runpod_key":"r","user_webhook_url":"https://e.com/h","min_workers":11}`, false},
		{"create non-integer", "POST", "/v1/deployments", bearer,
			`{"hf_model_id":"a/b","user_runpod_key":"r","user_webhook_url":"https://e.com/h","max_workers":1.5}`, false},
		{"list", "GET", "/v1/deployments?limit=100&cursor=abc&status=deleted&include_deleted=true", bearer, "", true},
		{"list limit 0", "GET", "/v1/deployments?limit=0", bearer, "", false},
		{"list bad status", "GET", "/v1/deployments?status=running", bearer, "", false},
		{"get", "GET", "/v1/deployments/dep_fake_123", bearer, "", true},
		{"get with a body", "GET", "/v1/deployments/dep_fake_123", bearer, `{}`, false},
		{"public gpus", "GET", "/v1/gpus", nil, "", true},
		{"ready report", "POST", "/internal/deployment-ready/dep_2026_a3686d66", internal, `{"status":"ready"}`, true},
		{"failed report", "POST", "/internal/deployment-ready/dep_2026_a3686d66", internal, `{"status":"failed","error":"OOM"}`, true},
		{"report without secret", "POST", "/internal/deployment-ready/dep_2026_a3686d66",
			http.Header{"Content-Type": {"application/json"}}, `{"status":"ready"}`, false},
		{"report of a status the container cannot set", "POST", "/internal/deployment-ready/dep_2026_a3686d66", internal, `{"status":"deleted"}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.target, nil)
			for k, vs := range c.header {
				req.Header[k] = vs
			}
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			err := v.CheckRequest(req, body)
			if c.valid && err != nil {
				t.Errorf("valid request rejected: %v", err)
			}
			if !c.valid && err == nil {
				t.Error("invalid request accepted")
			}
		})
	}
}

func TestWebhook(t *testing.T) {
	v := openapitest.NewValidator(t)
	data := without(with(deployment(), "status", "ready"), "logs")
	event := func(d map[string]any) []byte {
		return mustJSON(t, map[string]any{"type": "deployment.ready", "timestamp": "2026-02-14T13:31:40Z", "data": d})
	}
	headers := func() http.Header {
		return http.Header{
			"Content-Type":      {"application/json"},
			"Webhook-Id":        {"msg_1"},
			"Webhook-Timestamp": {"1771075900"},
			"Webhook-Signature": {"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="},
		}
	}
	send := func(h http.Header, body []byte) error {
		req := httptest.NewRequest(http.MethodPost, "https://example.com/webhook", nil)
		req.Header = h
		return v.CheckWebhook(req, body)
	}
	if err := send(headers(), event(data)); err != nil {
		t.Errorf("valid webhook rejected: %v", err)
	}
	noSig := headers()
	noSig.Del("Webhook-Signature")
	if send(noSig, event(data)) == nil {
		t.Error("webhook without signature accepted")
	}
	if send(headers(), event(deployment())) == nil {
		t.Error("webhook whose data has logs accepted")
	}
	if send(headers(), []byte(`{"type":"deployment.created","timestamp":"2026-02-14T13:31:40Z","data":{}}`)) == nil {
		t.Error("unknown event accepted")
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, format)
}

func TestMethodsFailTheTest(t *testing.T) {
	v := openapitest.NewValidator(t)
	rec := &recorder{TB: t}
	req := httptest.NewRequest(http.MethodGet, "/health", nil)
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}}

	v.Response(rec, req, resp, []byte(`{"status":"ok"}`))
	v.Request(rec, req, nil)
	if len(rec.errors) != 0 {
		t.Fatalf("valid exchange failed the test: %v", rec.errors)
	}
	v.Response(rec, req, resp, []byte(`{"status":"ok","extra":1}`))
	v.Request(rec, httptest.NewRequest(http.MethodGet, "/v1/deployments", nil), nil)
	v.Webhook(rec, httptest.NewRequest(http.MethodPost, "/hook", nil), []byte(`{}`))
	if len(rec.errors) != 3 {
		t.Errorf("invalid exchanges recorded %d failures, want 3", len(rec.errors))
	}
}

// A handler test as the API's tests write it: a real round trip through a
// server, validated.
func TestRoundTripThroughAServer(t *testing.T) {
	v := openapitest.NewValidator(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/health", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	v.Response(t, req, resp, body)
}
