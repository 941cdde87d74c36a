package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
	"github.com/visgate/deployment-orchestrator/shared/openapi/browsercheck"
	"github.com/visgate/deployment-orchestrator/shared/openapi/openapitest"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
)

// TestRestartLosesNothing stops the server in the middle of a deployment
// and starts it again on the same data: the deployment finishes. RunPod and
// the Hub are simulators that outlive both runs, as the real ones do.
func TestRestartLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	hub := hubsim.New()
	t.Cleanup(hub.Close)
	// A slow, silent vLLM worker (ready when polling sees it idle): the
	// first server is gone before the model is loaded.
	rp := runpodsim.New(runpodsim.WithAnyKey(), runpodsim.WithBootDelay(3*time.Second), runpodsim.WithSilentContainer())
	t.Cleanup(rp.Close)
	rcv := newReceiver(t)
	env := map[string]string{
		"PORT": "0", "DATA_DIR": t.TempDir(), "WEBHOOK_ALLOW_PRIVATE": "1", "API_KEYS": "restart-key-0123456789",
		"RATE_LIMIT_PER_MINUTE": "100000", // the test polls
		"HF_API_URL":            hub.URL, "RUNPOD_API_URL": rp.URL, "POLL_INTERVAL": "200ms",
	}
	srv := startServer(t, env)
	c := &client{t: t, base: srv.base}
	code, _, body := c.do("POST", "/v1/deployments", "restart-key-0123456789",
		[]byte(fmt.Sprintf(`{"hf_model_id":"Qwen/Qwen2.5-14B-Instruct","user_runpod_key":"rpa_restart","user_webhook_url":%q,"gpu_tier":"A40"}`, rcv.URL)), nil)
	if code != 202 {
		t.Fatalf("POST = %d %s", code, body)
	}
	id := decode(t, body)["deployment_id"].(string)
	waitFor(t, "the endpoint", 20*time.Second, func() bool {
		_, _, body := c.do("GET", "/v1/deployments/"+id, "restart-key-0123456789", nil, nil)
		return decode(t, body)["runpod_endpoint_id"] != nil
	})
	srv.stop()

	srv2 := startServer(t, env)
	c2 := &client{t: t, base: srv2.base}
	var last []byte
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last seen: %s", last)
		}
	})
	waitFor(t, "ready after the restart", 30*time.Second, func() bool {
		_, _, body := c2.do("GET", "/v1/deployments/"+id, "restart-key-0123456789", nil, nil)
		last = body
		d := decode(t, body)
		if d["status"] == "failed" {
			t.Fatalf("failed after the restart: %s", body)
		}
		return d["status"] == "ready"
	})
	// Delivered in the record: every attempt it counts reached the receiver.
	var hook map[string]any
	waitFor(t, "the webhook delivered", 20*time.Second, func() bool {
		_, _, body := c2.do("GET", "/v1/deployments/"+id, "restart-key-0123456789", nil, nil)
		hook = decode(t, body)["webhook"].(map[string]any)
		return hook["delivered"] == true
	})
	if n := len(rcv.got()); n != 1 || hook["attempts"] != 1.0 {
		t.Errorf("webhook got %d POSTs in %v attempts, want 1 in 1", n, hook["attempts"])
	}
	eps := rp.Endpoints("rpa_restart")
	if len(eps) != 1 {
		t.Fatalf("RunPod holds %d endpoints, want 1", len(eps))
	}
	// gpu_tier A40 names a card: its pool, without the pool's other cards.
	if got := fmt.Sprint(eps[0].Pools, eps[0].ExcludedTypes); got != "[AMPERE_48] [NVIDIA RTX A6000]" {
		t.Errorf("endpoint pools and excluded types = %s", got)
	}
	// After ready the endpoint scales to zero when idle (the default); it
	// kept one warm worker while the model loaded.
	waitFor(t, "scaling to zero", 10*time.Second, func() bool {
		ep := rp.Endpoints("rpa_restart")[0]
		return ep.WorkersMin == 0 && ep.WorkersMax == 1 && ep.IdleTimeout == 60
	})
}

// TestCatalogueAndListing covers the public catalogues and the owner's
// paginated list, each response validated against /openapi.json.
func TestCatalogueAndListing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	srv := startServer(t, map[string]string{"PORT": "0", "DATA_DIR": t.TempDir(), "SIMULATE": "1",
		"WEBHOOK_ALLOW_PRIVATE": "1", "API_KEYS": "list-key-0123456789,other-key-0123456789", "RATE_LIMIT_PER_MINUTE": "100000"})
	c := &client{t: t, base: srv.base, v: openapitest.NewValidator(t)}
	_, _, body := c.do("GET", "/v1/gpus", "", nil, nil)
	if !strings.Contains(string(body), `"pool":"AMPERE_48"`) || !strings.Contains(string(body), `"NVIDIA A40"`) {
		t.Errorf("/v1/gpus = %s", body)
	}
	_, _, body = c.do("GET", "/v1/models", "", nil, nil)
	if !strings.Contains(string(body), `"model_name":"veo3"`) {
		t.Errorf("/v1/models = %s", body)
	}
	type made struct {
		id      string
		created time.Time
	}
	var ids []made
	for i := range 5 {
		code, _, body := c.do("POST", "/v1/deployments", "list-key-0123456789",
			[]byte(fmt.Sprintf(`{"hf_model_id":"stabilityai/sdxl-turbo","user_runpod_key":"rpa_%d","user_webhook_url":"http://127.0.0.1:9/x"}`, i)), nil)
		if code != 202 {
			t.Fatalf("POST = %d %s", code, body)
		}
		m := decode(t, body)
		created, err := time.Parse(time.RFC3339Nano, m["created_at"].(string))
		if err != nil {
			t.Fatalf("created_at: %v", err)
		}
		ids = append(ids, made{m["deployment_id"].(string), created})
	}
	c.do("DELETE", "/v1/deployments/"+ids[0].id, "list-key-0123456789", nil, nil)
	var seen []string
	cursor := ""
	for page := 0; page < 10; page++ {
		path := "/v1/deployments?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		code, _, body := c.do("GET", path, "list-key-0123456789", nil, nil)
		if code != 200 {
			t.Fatalf("list = %d %s", code, body)
		}
		m := decode(t, body)
		for _, d := range m["deployments"].([]any) {
			seen = append(seen, d.(map[string]any)["deployment_id"].(string))
		}
		next, _ := m["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	// Newest first (created_at, then the id, both descending: two creates
	// in the same clock tick are ordered too), the deleted one left out.
	rest := slices.Clone(ids[1:])
	slices.SortFunc(rest, func(a, b made) int {
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return strings.Compare(b.id, a.id)
	})
	var want []string
	for _, d := range rest {
		want = append(want, d.id)
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("pages = %v, want %v", seen, want)
	}
	_, _, body = c.do("GET", "/v1/deployments?include_deleted=true&status=deleted", "list-key-0123456789", nil, nil)
	if got := decode(t, body)["deployments"].([]any); len(got) != 1 {
		t.Errorf("deleted filter = %s", body)
	}
	_, _, body = c.do("GET", "/v1/deployments", "other-key-0123456789", nil, nil)
	if got := decode(t, body)["deployments"].([]any); len(got) != 0 {
		t.Errorf("another key lists %d deployments", len(got))
	}
	for _, bad := range []string{"?limit=0", "?limit=101", "?status=nope", "?cursor=garbage!", "?bogus=1"} {
		if code, _, body := c.do("GET", "/v1/deployments"+bad, "list-key-0123456789", nil, nil); code != 422 {
			t.Errorf("GET /v1/deployments%s = %d %s", bad, code, body)
		}
	}
}

// TestDocsInBrowser opens /docs and /redoc of the real local server in
// headless Chromium: every operation listed, "Try it out" on GET /health.
func TestDocsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser")
	}
	if _, err := browsercheck.ChromiumPath(); err != nil {
		if os.Getenv("REQUIRE_BROWSER") == "1" {
			t.Fatalf("REQUIRE_BROWSER=1: %v", err)
		}
		t.Skipf("%v (install it with scripts/install-chromium.sh)", err)
	}
	srv := startServer(t, map[string]string{"PORT": "0", "DATA_DIR": t.TempDir()})
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else {
		dir = filepath.Join(dir, "browser")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := browsercheck.CheckDocs(ctx, srv.base, dir); err != nil {
		t.Fatalf("docs in the browser: %v", err)
	}
	t.Logf("screenshots in %s", dir)
	resp, err := http.Get(srv.base + "/docs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("/docs CSP = %q", csp)
	}
}
