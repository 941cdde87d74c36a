package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/catalog"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/ratelimit"
	"github.com/visgate/deployment-orchestrator/shared/seal"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/store/bolt"
)

const (
	keyA = "alice-api-key-0123456789"
	keyB = "bob-api-key-0123456789"
)

type fixture struct {
	srv   *Server
	h     http.Handler
	store *bolt.Store
	dir   string
	clock *time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, err := seal.LocalKeyset(filepath.Join(dir, "keyset.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.ParseKeyring(keyA+","+keyB, "")
	if err != nil {
		t.Fatal(err)
	}
	// Near the wall clock: stores compare idempotency expiries with it.
	now := time.Now().UTC().Truncate(time.Second)
	f := &fixture{store: st, dir: dir, clock: &now}
	clock := func() time.Time { return *f.clock }
	f.srv = &Server{
		Store: st, Sealer: sealer, Keys: keys,
		Limiter:   ratelimit.NewMemory(100, time.Minute, clock),
		RateLimit: 100, Models: catalog.Default(), GPUs: gpu.Default(),
		SigningKey: secret.New("test-signing-key-0123456789"),
		Now:        clock,
	}
	f.h = f.srv.Handler()
	return f
}

func (f *fixture) do(t *testing.T, method, path, key, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req := httptest.NewRequest(method, path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func body(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return m
}

const validCreate = `{"hf_model_id":"stabilityai/sdxl-turbo","user_runpod_key":"rpa_SECRET123","hf_token":"hf_SECRET456","user_webhook_url":"https://example.com/hook","gpu_tier":"A40"}`

func TestCreateStoresSealedAndOwesValidate(t *testing.T) {
	f := newFixture(t)
	rec := f.do(t, "POST", "/v1/deployments", keyA, validCreate)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", rec.Code, rec.Body)
	}
	got := body(t, rec)
	id := got["deployment_id"].(string)
	want := map[string]any{
		"deployment_id": id, "status": "validating", "model_id": "stabilityai/sdxl-turbo",
		"estimated_ready_seconds": float64(DefaultEstimatedReadySeconds), "webhook_url": "https://example.com/hook",
		"created_at": f.clock.Format(time.RFC3339),
		"limits":     map[string]any{"expires_at": nil, "expiry_source": nil, "max_spend_usd": nil},
		// gpu_tier A40 names a pool: its price is known at once.
		"price": map[string]any{
			"pool": "AMPERE_48", "per_hour_usd": 1.22, "per_second_usd": 1.22 / 3600,
			"loading_per_hour_usd": 1.22, "idle_per_hour_usd": float64(0), "max_per_hour_usd": 1.22,
			"fallback_max_per_hour_usd": nil, "catalog_source": "embedded", "catalog_at": nil,
			"assumes": deployment.PriceAssumes,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("202 body (-want +got):\n%s", diff)
	}
	if !deployment.ValidID(id) || !strings.HasPrefix(id, fmt.Sprintf("dep_%d_", f.clock.Year())) {
		t.Errorf("id %q", id)
	}
	if loc := rec.Header().Get("Location"); loc != "/v1/deployments/"+id {
		t.Errorf("Location = %q", loc)
	}
	d, err := f.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	// The change feed enqueues what the new record owes: its first step.
	if diff := cmp.Diff([]deployment.Owed{{Step: deployment.StepValidate}}, d.Owes()); diff != "" {
		t.Errorf("the new deployment owes (-want +got):\n%s", diff)
	}
	if d.Owner == "" || d.GPUTier != "A40" || d.Scaling != (deployment.Scaling{MinWorkers: 0, MaxWorkers: 1, IdleTimeoutSeconds: 60}) {
		t.Errorf("stored %+v", d)
	}
	// The raw bytes of the store never hold the secrets.
	f.store.Close()
	raw, err := os.ReadFile(filepath.Join(f.dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"rpa_SECRET123", "hf_SECRET456"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("store file contains %q in clear text", s)
		}
	}
}

func TestOwnerIsolation(t *testing.T) {
	f := newFixture(t)
	id := body(t, f.do(t, "POST", "/v1/deployments", keyA, validCreate))["deployment_id"].(string)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/deployments/" + id},
		{"DELETE", "/v1/deployments/" + id},
	} {
		rec := f.do(t, tc.method, tc.path, keyB, "")
		if rec.Code != http.StatusNotFound || body(t, rec)["error"] != "DeploymentNotFoundError" {
			t.Errorf("%s as another key = %d %s", tc.method, rec.Code, rec.Body)
		}
	}
	list := body(t, f.do(t, "GET", "/v1/deployments", keyB, ""))
	if n := len(list["deployments"].([]any)); n != 0 {
		t.Errorf("another key lists %d deployments", n)
	}
	if d, _ := f.store.Get(context.Background(), id); d.Status != deployment.StatusValidating {
		t.Errorf("another key's DELETE changed the status to %s", d.Status)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t)
	for i := 1; i <= 100; i++ {
		if rec := f.do(t, "GET", "/v1/deployments/dep_fake_123", keyA, ""); rec.Code != http.StatusNotFound {
			t.Fatalf("request %d = %d", i, rec.Code)
		}
	}
	// Health and the other key are not counted against this one.
	if rec := f.do(t, "GET", "/health", "", ""); rec.Code != 200 {
		t.Errorf("/health = %d", rec.Code)
	}
	if rec := f.do(t, "GET", "/v1/deployments/dep_fake_123", keyB, ""); rec.Code != http.StatusNotFound {
		t.Errorf("other key = %d", rec.Code)
	}
	rec := f.do(t, "GET", "/v1/deployments/dep_fake_123", keyA, "")
	if rec.Code != http.StatusTooManyRequests || body(t, rec)["error"] != "RateLimitError" {
		t.Fatalf("101st = %d %s", rec.Code, rec.Body)
	}
	ra, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	if err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After = %q", rec.Header().Get("Retry-After"))
	}
	*f.clock = f.clock.Add(61 * time.Second)
	if rec := f.do(t, "GET", "/v1/deployments/dep_fake_123", keyA, ""); rec.Code != http.StatusNotFound {
		t.Errorf("after the window = %d", rec.Code)
	}
}

func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t)
	first := f.do(t, "POST", "/v1/deployments", keyA, validCreate, "Idempotency-Key", "k1")
	again := f.do(t, "POST", "/v1/deployments", keyA, validCreate, "Idempotency-Key", "k1")
	if first.Code != 202 || again.Code != 202 {
		t.Fatalf("codes %d %d", first.Code, again.Code)
	}
	if a, b := body(t, first)["deployment_id"], body(t, again)["deployment_id"]; a != b {
		t.Errorf("same key and body gave %v and %v", a, b)
	}
	other := f.do(t, "POST", "/v1/deployments", keyA, strings.Replace(validCreate, "A40", "H100", 1), "Idempotency-Key", "k1")
	if other.Code != 422 {
		t.Errorf("same key, other body = %d %s", other.Code, other.Body)
	}
	// Another owner's identical key is its own.
	b := f.do(t, "POST", "/v1/deployments", keyB, validCreate, "Idempotency-Key", "k1")
	if b.Code != 202 || body(t, b)["deployment_id"] == body(t, first)["deployment_id"] {
		t.Errorf("other owner = %d %s", b.Code, b.Body)
	}
	list := body(t, f.do(t, "GET", "/v1/deployments", keyA, ""))
	if n := len(list["deployments"].([]any)); n != 1 {
		t.Errorf("owner A has %d deployments, want 1", n)
	}
}

func TestIdempotencyInFlight(t *testing.T) {
	f := newFixture(t)
	h := sha256Hex([]byte(validCreate))
	if _, err := f.store.ClaimIdempotency(context.Background(), idemRecord(f, keyA, "k2", h)); err != nil {
		t.Fatal(err)
	}
	rec := f.do(t, "POST", "/v1/deployments", keyA, validCreate, "Idempotency-Key", "k2")
	if rec.Code != http.StatusConflict || body(t, rec)["error"] != "ConflictError" {
		t.Errorf("in flight = %d %s", rec.Code, rec.Body)
	}
}

func TestValidation(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, body string
		status     int
		fields     []string
	}{
		{"empty", ``, 400, nil},
		{"bad json", `{"a":`, 400, nil},
		{"array", `[1]`, 400, nil},
		{"two values", `{} {}`, 400, nil},
		{"duplicate field", `{"hf_model_id":"a/b","hf_model_id":"c/d"}`, 400, nil},
		{"missing", `{}`, 422, []string{"hf_model_id", "user_runpod_key"}},
		{"null webhook", `{"hf_model_id":"a/b","user_runpod_key":"k","user_webhook_url":null}`, 422, []string{"user_webhook_url"}},
		{"empty webhook", `{"hf_model_id":"a/b","user_runpod_key":"k","user_webhook_url":" "}`, 422, []string{"user_webhook_url"}},
		{"both", `{"hf_model_id":"a/b","model_name":"veo3","user_runpod_key":"k","user_webhook_url":"https://example.com"}`, 422, []string{"hf_model_id", "model_name"}},
		{"bad hf id", `{"hf_model_id":"../etc/passwd","user_runpod_key":"k","user_webhook_url":"https://example.com"}`, 422, []string{"hf_model_id"}},
		{"provider with hf id", `{"hf_model_id":"a/b","provider":"fal","user_runpod_key":"k","user_webhook_url":"https://example.com"}`, 422, []string{"provider"}},
		{"unknown provider", `{"model_name":"veo3","provider":"nope","user_runpod_key":"k","user_webhook_url":"https://example.com"}`, 422, []string{"provider"}},
		{"http webhook", `{"hf_model_id":"a/b","user_runpod_key":"k","user_webhook_url":"http://example.com"}`, 422, []string{"user_webhook_url"}},
		{"loopback webhook", `{"hf_model_id":"a/b","user_runpod_key":"k","user_webhook_url":"https://127.0.0.1/x"}`, 422, []string{"user_webhook_url"}},
		{"metadata webhook", `{"hf_model_id":"a/b","user_runpod_key":"k","user_webhook_url":"https://169.254.169.254/x"}`, 422, []string{"user_webhook_url"}},
		{"out of range", `{"hf_model_id":"a/b","user_runpod_key":"k","user_webhook_url":"https://example.com","min_workers":11,"max_workers":0,"idle_timeout_seconds":1}`, 422, []string{"min_workers", "max_workers", "idle_timeout_seconds"}},
		{"min over max", `{"hf_model_id":"a/b","user_runpod_key":"k","user_webhook_url":"https://example.com","min_workers":3,"max_workers":2}`, 422, []string{"max_workers"}},
		{"float", `{"hf_model_id":"a/b","user_runpod_key":"k","user_webhook_url":"https://example.com","max_workers":1.5}`, 422, []string{"max_workers"}},
		{"empty key", `{"hf_model_id":"a/b","user_runpod_key":"  ","user_webhook_url":"https://example.com"}`, 422, []string{"user_runpod_key"}},
		{"unknown field", `{"hf_model_id":"a/b","user_runpod_key":"k","user_webhook_url":"https://example.com","gpu":"x"}`, 422, []string{"gpu"}},
		{"too large", `{"x":"` + strings.Repeat("a", 65<<10) + `"}`, 413, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(t, "POST", "/v1/deployments", keyA, tc.body)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			b := body(t, rec)
			details := b["details"].(map[string]any)
			for _, fld := range tc.fields {
				if _, ok := details[fld]; !ok {
					t.Errorf("details lack %s: %s", fld, rec.Body)
				}
			}
			if tc.fields != nil && len(details) != len(tc.fields) {
				t.Errorf("details = %v, want exactly %v", details, tc.fields)
			}
		})
	}
	list := body(t, f.do(t, "GET", "/v1/deployments", keyA, ""))
	if n := len(list["deployments"].([]any)); n != 0 {
		t.Errorf("bad input created %d deployments", n)
	}
}

// TestWebhookOptional: a create without user_webhook_url is accepted, and
// the 202, GET and the list all say that no webhook is configured (null);
// with one, the same fields carry it.
func TestWebhookOptional(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, create string
		want         any
	}{
		{"none", `{"hf_model_id":"stabilityai/sdxl-turbo","user_runpod_key":"rpa_x"}`, nil},
		{"given", `{"hf_model_id":"stabilityai/sdxl-turbo","user_runpod_key":"rpa_x","user_webhook_url":"https://example.com/h"}`, "https://example.com/h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(t, "POST", "/v1/deployments", keyA, tc.create)
			if rec.Code != 202 {
				t.Fatalf("POST = %d %s", rec.Code, rec.Body)
			}
			created := body(t, rec)
			if got, ok := created["webhook_url"]; !ok || got != tc.want {
				t.Errorf("202 webhook_url = %v (present %v), want %v", got, ok, tc.want)
			}
			id := created["deployment_id"].(string)
			got := body(t, f.do(t, "GET", "/v1/deployments/"+id, keyA, ""))
			if w, ok := got["webhook_url"]; !ok || w != tc.want {
				t.Errorf("GET webhook_url = %v (present %v), want %v", w, ok, tc.want)
			}
			for _, item := range body(t, f.do(t, "GET", "/v1/deployments", keyA, ""))["deployments"].([]any) {
				if m := item.(map[string]any); m["deployment_id"] == id && m["webhook_url"] != tc.want {
					t.Errorf("list webhook_url = %v, want %v", m["webhook_url"], tc.want)
				}
			}
		})
	}
}

func TestCallback(t *testing.T) {
	f := newFixture(t)
	id := body(t, f.do(t, "POST", "/v1/deployments", keyA, validCreate))["deployment_id"].(string)
	sec := auth.CallbackSecret(f.srv.SigningKey, id)
	path := "/internal/deployment-ready/" + id
	post := func(secretValue, b string) *httptest.ResponseRecorder {
		return f.do(t, "POST", path, "", b, InternalSecretHeader, secretValue)
	}
	if rec := f.do(t, "POST", path, "", `{"status":"ready"}`); rec.Code != 401 {
		t.Errorf("no secret = %d", rec.Code)
	}
	if rec := post("wrong", `{"status":"ready"}`); rec.Code != 401 {
		t.Errorf("wrong secret = %d", rec.Code)
	}
	if rec := post(sec.Reveal(), `{"status":"bogus"}`); rec.Code != 422 {
		t.Errorf("bad status = %d", rec.Code)
	}
	if d, _ := f.store.Get(context.Background(), id); d.Status != deployment.StatusValidating {
		t.Fatalf("rejected callbacks changed the status to %s", d.Status)
	}
	// Before create_endpoint records the endpoint, a report is only noted:
	// a ready webhook must never go out without its endpoint.
	if rec := post(sec.Reveal(), `{"status":"ready"}`); rec.Code != 200 || body(t, rec)["status"] != "validating" {
		t.Errorf("ready before the endpoint is recorded = %d %s", rec.Code, rec.Body)
	}
	if d, _ := f.store.Get(context.Background(), id); d.Progress.Phase != deployment.StatusReady {
		t.Errorf("the early ready report was not kept for the watch step: progress %+v", d.Progress)
	}
	if _, err := f.store.Update(context.Background(), id, func(d *deployment.Deployment) error {
		d.RunPodEndpointID = "ep123"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rec := post(sec.Reveal(), `{"status":"loading_model"}`)
	if rec.Code != 200 || body(t, rec)["status"] != "loading_model" {
		t.Errorf("loading = %d %s", rec.Code, rec.Body)
	}
	// Out of order: downloading after loading changes nothing.
	if rec := post(sec.Reveal(), `{"status":"downloading_model"}`); body(t, rec)["status"] != "loading_model" {
		t.Errorf("backwards report = %s", rec.Body)
	}
	rec = post(sec.Reveal(), `{"status":"ready"}`)
	want := map[string]any{"deployment_id": id, "status": "ready", "webhook_delivered": false}
	if diff := cmp.Diff(want, body(t, rec)); diff != "" {
		t.Errorf("ready (-want +got):\n%s", diff)
	}
	// A failure report for a finished deployment changes nothing.
	if rec := post(sec.Reveal(), `{"status":"failed","error":"oom"}`); body(t, rec)["status"] != "ready" {
		t.Errorf("late failure = %s", rec.Body)
	}
	if rec := f.do(t, "DELETE", "/v1/deployments/"+id, keyA, ""); rec.Code != 204 || rec.Body.Len() != 0 {
		t.Errorf("DELETE = %d %q", rec.Code, rec.Body)
	}
	if rec := post(sec.Reveal(), `{"status":"ready"}`); body(t, rec)["status"] != "deleted" {
		t.Errorf("callback after delete = %s", rec.Body)
	}
	if rec := f.do(t, "DELETE", "/v1/deployments/"+id, keyA, ""); rec.Code != 204 {
		t.Errorf("second DELETE = %d", rec.Code)
	}
}

func TestFunctionsRouteOnlyTheirPaths(t *testing.T) {
	f := newFixture(t)
	h := f.srv.Function(FnGetDeployment)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/deployments/dep_fake_123", 404},
		{"GET", "/health", 404},
		{"POST", "/v1/deployments/dep_fake_123", 405},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+keyA)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, rec.Code, tc.status)
		}
		if !strings.Contains(rec.Body.String(), `"error"`) {
			t.Errorf("%s %s body not in the error shape: %s", tc.method, tc.path, rec.Body)
		}
	}
}

func TestReadiness(t *testing.T) {
	f := newFixture(t)
	if rec := f.do(t, "GET", "/readiness", "", ""); rec.Code != 200 {
		t.Errorf("readiness = %d", rec.Code)
	}
	f.store.Close()
	rec := f.do(t, "GET", "/readiness", "", "")
	// A sentence, not the store's error text (anyone may call /readiness).
	want := map[string]any{"status": "unready", "error": "the store is unreachable"}
	if diff := cmp.Diff(want, body(t, rec)); rec.Code != 503 || diff != "" {
		t.Errorf("readiness with a closed store = %d (-want +got):\n%s", rec.Code, diff)
	}
}

func BenchmarkHealth(b *testing.B) {
	f := &Server{}
	h := f.Handler()
	req := httptest.NewRequest("GET", "/health", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

// The inference worker's reports: download progress in the same status,
// one log line per phase, progress in GET, timings with ready; malformed
// reports change nothing.
func TestCallbackProgress(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := body(t, f.do(t, "POST", "/v1/deployments", keyA, validCreate))["deployment_id"].(string)
	sec := auth.CallbackSecret(f.srv.SigningKey, id)
	// As create_endpoint leaves it.
	if _, err := f.store.Update(ctx, id, func(d *deployment.Deployment) error {
		d.RunPodEndpointID = "ep123"
		d.Status = deployment.StatusDownloadingModel
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	post := func(b string) *httptest.ResponseRecorder {
		return f.do(t, "POST", "/internal/deployment-ready/"+id, "", b, InternalSecretHeader, sec.Reveal())
	}
	progress := func() any { return body(t, f.do(t, "GET", "/v1/deployments/"+id, keyA, ""))["progress"] }
	if p := progress(); p != nil {
		t.Errorf("progress before any report = %v, want null", p)
	}

	for _, bad := range []struct{ name, body, field string }{
		{"negative bytes", `{"status":"downloading_model","bytes_done":-1,"bytes_total":10}`, "bytes_done"},
		{"done over total", `{"status":"downloading_model","bytes_done":11,"bytes_total":10}`, "bytes_done"},
		{"bytes with ready", `{"status":"ready","bytes_done":1}`, "bytes_done"},
		{"timings with loading", `{"status":"loading_model","timings":{"load_seconds":1}}`, "timings"},
		{"unknown timing", `{"status":"ready","timings":{"boot_seconds":1}}`, "timings.boot_seconds"},
		{"timing not a number", `{"status":"ready","timings":{"load_seconds":"1"}}`, "timings.load_seconds"},
		{"null timing", `{"status":"ready","timings":{"load_seconds":null}}`, "timings.load_seconds"},
		{"timing given twice", `{"status":"ready","timings":{"load_seconds":1,"load_seconds":2}}`, "timings"},
		{"null timings", `{"status":"ready","timings":null}`, "timings"},
		{"unknown field", `{"status":"ready","percent":3}`, "percent"},
	} {
		rec := post(bad.body)
		if rec.Code != 422 {
			t.Errorf("%s: %d %s, want 422", bad.name, rec.Code, rec.Body)
			continue
		}
		if _, ok := body(t, rec)["details"].(map[string]any)[bad.field]; !ok {
			t.Errorf("%s: details lack %s: %s", bad.name, bad.field, rec.Body)
		}
	}
	if p := progress(); p != nil {
		t.Fatalf("rejected reports changed progress to %v", p)
	}

	for _, r := range []struct {
		report string
		want   map[string]any
	}{
		{`{"status":"downloading_model","bytes_done":0,"bytes_total":2000000}`, map[string]any{"phase": "downloading_model", "bytes_done": 0.0, "bytes_total": 2e6}},
		{`{"status":"downloading_model","bytes_done":1500000,"bytes_total":2000000}`, map[string]any{"phase": "downloading_model", "bytes_done": 1.5e6, "bytes_total": 2e6}},
		{`{"status":"downloading_model","bytes_done":2000000,"bytes_total":2000000}`, map[string]any{"phase": "downloading_model", "bytes_done": 2e6, "bytes_total": 2e6}},
		{`{"status":"loading_model"}`, map[string]any{"phase": "loading_model", "bytes_done": 2e6, "bytes_total": 2e6}},
		{`{"status":"ready","timings":{"download_seconds":1.5,"load_seconds":2.25,"warmup_seconds":0.5}}`, map[string]any{"phase": "ready", "bytes_done": 2e6, "bytes_total": 2e6}},
		// A worker that cold-starts later reports again: nothing moves back.
		{`{"status":"downloading_model","bytes_done":0,"bytes_total":2000000}`, map[string]any{"phase": "ready", "bytes_done": 2e6, "bytes_total": 2e6}},
	} {
		*f.clock = f.clock.Add(deployment.ProgressWriteInterval) // progress is written at most this often
		if rec := post(r.report); rec.Code != 200 {
			t.Fatalf("%s: %d %s", r.report, rec.Code, rec.Body)
		}
		if diff := cmp.Diff(r.want, progress()); diff != "" {
			t.Errorf("after %s, progress (-want +got):\n%s", r.report, diff)
		}
	}
	d, _ := f.store.Get(ctx, id)
	var lines []string
	for _, l := range d.Logs {
		if strings.Contains(l.Message, "Downloading") || strings.Contains(l.Message, "Loading") || strings.Contains(l.Message, "reported the model") {
			lines = append(lines, l.Message)
		}
	}
	want := []string{"Downloading model (2.0 MB)", "Loading model into GPU memory",
		"Inference container reported the model ready (download 1.5 s, load 2.2 s, warm-up inference 0.5 s)"}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("one log line per phase (-want +got):\n%s", diff)
	}
	if d.Status != deployment.StatusReady || d.Progress.LoadSeconds != 2.25 {
		t.Errorf("status %s, timings %+v", d.Status, d.Progress)
	}
}
