package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/openapi/openapitest"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/syncbuf"
	"github.com/visgate/deployment-orchestrator/shared/wait"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

// server is one run of realMain on a loopback port.
type server struct {
	base string
	logs *syncbuf.Buffer
	stop func()
}

func startServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncbuf.Buffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	getenv := func(k string) string { return env[k] }
	go func() { done <- realMain(ctx, getenv, logs, ready) }()
	select {
	case addr := <-ready:
		s := &server{base: "http://" + addr, logs: logs}
		var once sync.Once
		s.stop = func() {
			once.Do(func() {
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("realMain: %v", err)
					}
				case <-time.After(20 * time.Second):
					t.Error("server did not stop within 20s")
				}
			})
		}
		t.Cleanup(s.stop)
		return s
	case err := <-done:
		cancel()
		t.Fatalf("realMain exited: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start within 30s")
	}
	return nil
}

// receiver is the user's webhook endpoint on loopback.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	posts []received
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.posts = append(r.posts, received{header: req.Header.Clone(), body: b})
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.posts...)
}

// client calls the API and validates every exchange against /openapi.json.
type client struct {
	t    *testing.T
	base string
	v    *openapitest.Validator
	seen []string // every response body, for the secret check
}

func (c *client) do(method, path, key string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.seen = append(c.seen, string(b))
	if c.v != nil {
		// Rebuild the request for the validator (its body was consumed).
		vreq, _ := http.NewRequest(method, c.base+path, bytes.NewReader(body))
		vreq.Header = req.Header.Clone()
		c.v.Response(c.t, vreq, resp, b)
	}
	return resp.StatusCode, resp.Header, b
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %q", b)
	}
	return m
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	wait.Until(t, timeout, what, cond)
}

const (
	runpodKey = "rpa_E2ESECRETKEY0123456789"
	hfToken   = "hf_E2ESECRETTOKEN0123456789"
)

func TestEndToEndSimulated(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	rcv := newReceiver(t)
	srv := startServer(t, map[string]string{
		"PORT": "0", "DATA_DIR": t.TempDir(), "SIMULATE": "1", "WEBHOOK_ALLOW_PRIVATE": "1",
		"API_KEYS": "key-alice-0123456789,key-bob-0123456789", "POLL_INTERVAL": "200ms",
		"RATE_LIMIT_PER_MINUTE": "100000", // the tests poll; the limit is the api package's to test
	})
	c := &client{t: t, base: srv.base, v: openapitest.NewValidator(t)}

	for _, tc := range []struct{ path, want string }{
		{"/health", `{"status":"ok"}`},
		{"/", `{"service":"deployment-orchestrator","docs":"/docs"}`},
		{"/readiness", `{"status":"ready"}`},
	} {
		code, _, body := c.do("GET", tc.path, "", nil, nil)
		if code != 200 || strings.TrimSpace(string(body)) != tc.want {
			t.Errorf("GET %s = %d %s, want 200 %s", tc.path, code, body, tc.want)
		}
	}

	create := fmt.Sprintf(`{"hf_model_id":"stabilityai/sdxl-turbo","user_runpod_key":%q,"hf_token":%q,"user_webhook_url":%q,"gpu_tier":"A40"}`,
		runpodKey, hfToken, rcv.URL+"/hook")
	code, hdr, body := c.do("POST", "/v1/deployments", "key-alice-0123456789", []byte(create), nil)
	if code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", code, body)
	}
	created := decode(t, body)
	id, _ := created["deployment_id"].(string)
	if created["status"] != "validating" || created["model_id"] != "stabilityai/sdxl-turbo" || hdr.Get("Location") != "/v1/deployments/"+id {
		t.Errorf("202 = %s, Location %q", body, hdr.Get("Location"))
	}

	var dep map[string]any
	waitFor(t, "ready", 60*time.Second, func() bool {
		code, _, body := c.do("GET", "/v1/deployments/"+id, "key-alice-0123456789", nil, nil)
		if code != 200 {
			t.Fatalf("GET = %d %s", code, body)
		}
		dep = decode(t, body)
		if dep["status"] == "failed" {
			t.Fatalf("deployment failed: %s", body)
		}
		return dep["status"] == "ready"
	})
	for _, f := range []string{"runpod_endpoint_id", "endpoint_url", "gpu_allocated", "model_vram_gb", "ready_at"} {
		if dep[f] == nil {
			t.Errorf("ready deployment has %s = null", f)
		}
	}
	if dep["gpu_allocated"] != "NVIDIA A40" {
		t.Errorf("gpu_allocated = %v, want NVIDIA A40", dep["gpu_allocated"])
	}
	// The webhook: exactly one POST, for ready, signed with the owner's secret.
	_, _, body = c.do("GET", "/v1/webhook-secret", "key-alice-0123456789", nil, nil)
	whsec := secret.New(decode(t, body)["webhook_secret"].(string))
	// Once the record says delivered, every attempt it counts has reached
	// the receiver: the receiver got exactly those, and one is enough.
	var hook map[string]any
	waitFor(t, "the webhook delivered", 20*time.Second, func() bool {
		_, _, body := c.do("GET", "/v1/deployments/"+id, "key-alice-0123456789", nil, nil)
		hook = decode(t, body)["webhook"].(map[string]any)
		return hook["delivered"] == true
	})
	posts := rcv.got()
	if len(posts) != 1 || hook["attempts"] != 1.0 {
		t.Fatalf("webhook got %d POSTs in %v attempts, want 1 in 1", len(posts), hook["attempts"])
	}
	if err := webhook.Verify(whsec, posts[0].header, posts[0].body, 5*time.Minute, time.Now()); err != nil {
		t.Errorf("webhook signature: %v", err)
	}
	ev := decode(t, posts[0].body)
	if ev["type"] != "deployment.ready" || ev["data"].(map[string]any)["deployment_id"] != id {
		t.Errorf("webhook body = %s", posts[0].body)
	}
	waitFor(t, "scaling after ready", 10*time.Second, func() bool {
		_, _, body := c.do("GET", "/v1/deployments/"+id, "key-alice-0123456789", nil, nil)
		dep = decode(t, body)
		return strings.Contains(fmt.Sprint(dep["logs"]), "Endpoint scales")
	})
	var logText []string
	for _, l := range dep["logs"].([]any) {
		logText = append(logText, l.(map[string]any)["message"].(string))
	}
	joined := strings.Join(logText, "\n")
	for _, want := range []string{"Validating Hugging Face model", "HF model validated", "Selected GPU: NVIDIA A40", "RunPod endpoint created", "Downloading model", "Loading model", "model loaded", "Webhook deployment.ready delivered", "Endpoint scales"} {
		if !strings.Contains(joined, want) {
			t.Errorf("logs lack %q:\n%s", want, joined)
		}
	}

	// The server log tells the same story: each entry once, at its level,
	// with the deployment's id (a line is written just after its commit).
	var want []string
	for _, l := range dep["logs"].([]any) {
		e := l.(map[string]any)
		want = append(want, fmt.Sprint(e["level"], " ", e["message"]))
	}
	slices.Sort(want)
	var got []string
	wait.Until(t, 10*time.Second, "the server log to tell the deployment's story", func() bool {
		got = nil
		for _, line := range strings.Split(srv.logs.String(), "\n") {
			var l struct {
				Severity     string `json:"severity"`
				Message      string `json:"message"`
				DeploymentID string `json:"deployment_id"`
				Status       string `json:"status"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.DeploymentID == id && l.Status != "" {
				got = append(got, l.Severity+" "+l.Message)
			}
		}
		slices.Sort(got)
		return slices.Equal(got, want)
	}, func() string {
		return fmt.Sprintf("server log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	})

	// Catalogue names resolve.
	code, _, body = c.do("POST", "/v1/deployments", "key-alice-0123456789",
		[]byte(fmt.Sprintf(`{"model_name":"veo3","provider":"fal","user_runpod_key":"rpa_x","user_webhook_url":%q}`, rcv.URL)), nil)
	if code != 202 || decode(t, body)["model_id"] != "black-forest-labs/FLUX.1-schnell" {
		t.Errorf("veo3/fal = %d %s", code, body)
	}

	// Errors in the contract's shape.
	big := `{"hf_model_id":"a/b","user_runpod_key":"k","user_webhook_url":"https://example.com/","pad":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, tc := range []struct {
		name, method, path, key, body string
		status                        int
		errName                       string
		fields                        []string
	}{
		{"no key", "GET", "/v1/deployments/" + id, "", "", 401, "UnauthorizedError", nil},
		{"wrong key", "GET", "/v1/deployments/" + id, "nope", "", 401, "UnauthorizedError", nil},
		{"other owner", "GET", "/v1/deployments/" + id, "key-bob-0123456789", "", 404, "DeploymentNotFoundError", nil},
		{"other owner delete", "DELETE", "/v1/deployments/" + id, "key-bob-0123456789", "", 404, "DeploymentNotFoundError", nil},
		{"unknown", "GET", "/v1/deployments/dep_fake_123", "key-alice-0123456789", "", 404, "DeploymentNotFoundError", nil},
		{"bad json", "POST", "/v1/deployments", "key-alice-0123456789", `{"hf_model_id":`, 400, "BadRequestError", nil},
		{"not an object", "POST", "/v1/deployments", "key-alice-0123456789", `["a"]`, 400, "BadRequestError", nil},
		{"too large", "POST", "/v1/deployments", "key-alice-0123456789", big, 413, "PayloadTooLargeError", nil},
		{"missing fields", "POST", "/v1/deployments", "key-alice-0123456789", `{}`, 422, "ValidationError", []string{"hf_model_id", "user_runpod_key"}},
		{"both models", "POST", "/v1/deployments", "key-alice-0123456789", `{"hf_model_id":"a/b","model_name":"veo3","user_runpod_key":"k","user_webhook_url":"https://example.com/"}`, 422, "ValidationError", []string{"hf_model_id", "model_name"}},
		{"wrong types", "POST", "/v1/deployments", "key-alice-0123456789", `{"hf_model_id":7,"user_runpod_key":"k","user_webhook_url":"https://example.com/","max_workers":"x","extra":1}`, 422, "ValidationError", []string{"hf_model_id", "max_workers", "extra"}},
		{"unknown catalogue name", "POST", "/v1/deployments", "key-alice-0123456789", `{"model_name":"nope","provider":"fal","user_runpod_key":"k","user_webhook_url":"https://example.com/"}`, 422, "ValidationError", []string{"model_name"}},
		{"unknown tier", "POST", "/v1/deployments", "key-alice-0123456789", `{"hf_model_id":"a/b","gpu_tier":"Z9000","user_runpod_key":"k","user_webhook_url":"https://example.com/"}`, 422, "ValidationError", []string{"gpu_tier"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b []byte
			if tc.body != "" {
				b = []byte(tc.body)
			}
			cc := &client{t: t, base: srv.base, v: c.v}
			if tc.status == 413 {
				cc.v = nil // the validator would need to parse the oversized body
			}
			code, hdr, body := cc.do(tc.method, tc.path, tc.key, b, nil)
			if code != tc.status {
				t.Fatalf("status = %d, want %d: %s", code, tc.status, body)
			}
			e := decode(t, body)
			if e["error"] != tc.errName || e["message"] == "" || e["details"] == nil {
				t.Errorf("body = %s", body)
			}
			details, _ := e["details"].(map[string]any)
			for _, f := range tc.fields {
				if _, ok := details[f]; !ok {
					t.Errorf("details lack %q: %s", f, body)
				}
			}
			if tc.status == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	// Delete: 204 twice, then deleted, and the simulator's endpoint is gone.
	for range 2 {
		if code, _, body := c.do("DELETE", "/v1/deployments/"+id, "key-alice-0123456789", nil, nil); code != 204 || len(body) != 0 {
			t.Errorf("DELETE = %d %q", code, body)
		}
	}
	waitFor(t, "teardown", 20*time.Second, func() bool {
		_, _, body := c.do("GET", "/v1/deployments/"+id, "key-alice-0123456789", nil, nil)
		d := decode(t, body)
		return d["status"] == "deleted" && strings.Contains(fmt.Sprint(d["logs"]), "deleted")
	})

	srv.stop()
	all := srv.logs.String() + strings.Join(c.seen, "\n")
	for _, s := range []string{runpodKey, hfToken} {
		if strings.Contains(all, s) {
			t.Errorf("secret %q appears in a response or log line", s)
		}
	}
}
