package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	testAPIKey    = "test-api-key-0123456789"
	testRunPodKey = "rpa_CLITESTSECRET0123"
)

// fakeAPI is the orchestrator's API as the CLI sees it: it records every
// request and serves a scripted deployment, one state per GET.
type fakeAPI struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
	states   []map[string]any // GET answers in turn; the last one stays
	gets     int
	create   func(body map[string]any) (int, any)
	onGet    func() // called after each GET of a deployment is answered
}

type recorded struct {
	method, path, auth, idem string
	body                     map[string]any
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

// set changes the fake's script under its lock (the server reads it from
// its own goroutines).
func (f *fakeAPI) set(states []map[string]any, create func(body map[string]any) (int, any)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states, f.gets = states, 0
	if create != nil {
		f.create = create
	}
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		_ = json.Unmarshal(b, &body)
	}
	f.mu.Lock()
	f.requests = append(f.requests, recorded{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("Idempotency-Key"), body})
	f.mu.Unlock()
	write := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case r.Method == "POST" && r.URL.Path == "/v1/deployments":
		f.mu.Lock()
		create := f.create
		f.mu.Unlock()
		if create != nil {
			code, v := create(body)
			write(code, v)
			return
		}
		write(202, map[string]any{"deployment_id": "dep_2026_0a1b2c3d", "status": "validating"})
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/deployments/"):
		f.mu.Lock()
		if len(f.states) == 0 {
			f.mu.Unlock()
			write(404, map[string]any{"error": "DeploymentNotFound", "message": "No deployment with this id"})
			return
		}
		st := f.states[min(f.gets, len(f.states)-1)]
		f.gets++
		onGet := f.onGet
		f.mu.Unlock()
		write(200, st)
		if onGet != nil {
			w.(http.Flusher).Flush() // the answer is on its way first
			onGet()
		}
	case r.Method == "DELETE":
		w.WriteHeader(204)
	default:
		write(404, map[string]any{"error": "NotFound", "message": "no such path"})
	}
}

func (f *fakeAPI) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded{}, f.requests...)
}

func (f *fakeAPI) methods() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.requests {
		out = append(out, r.method+" "+r.path)
	}
	return out
}

// state is a deployment as GET shows it.
func state(status string, prog *progress, logs ...string) map[string]any {
	d := map[string]any{
		"deployment_id": "dep_2026_0a1b2c3d", "status": status, "model_id": "visgate-tiny/text-to-image",
		"task": "text-to-image", "webhook_url": nil, "created_at": "2026-12-06T10:00:00Z",
	}
	if prog != nil {
		d["progress"] = map[string]any{"phase": prog.Phase, "bytes_done": prog.BytesDone, "bytes_total": prog.BytesTotal}
	}
	var entries []any
	for i, l := range logs {
		entries = append(entries, map[string]any{"timestamp": fmt.Sprintf("2026-12-06T10:00:%02dZ", i), "level": "INFO", "message": l})
	}
	d["logs"] = entries
	return d
}

// cli runs one command line in-process with the test's environment.
type cli struct {
	env map[string]string
}

func newCLI(base string) *cli {
	return &cli{env: map[string]string{
		"VISGATE_URL": base, "VISGATE_API_KEY": testAPIKey, "RUNPOD_API_KEY": testRunPodKey,
		"XDG_CONFIG_HOME": "/nonexistent-visgate-test",
	}}
}

func (c *cli) run(t *testing.T, ctx context.Context, stdout io.Writer, args ...string) (code int, errOut string) {
	t.Helper()
	var stderr bytes.Buffer
	code = run(ctx, append([]string{"--poll-interval", "20ms"}, args...), func(k string) string { return c.env[k] }, stdout, &stderr)
	return code, stderr.String()
}

func (c *cli) text(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	var stdout bytes.Buffer
	code, errOut = c.run(t, context.Background(), &stdout, args...)
	return code, stdout.String(), errOut
}

// TestDeployRequest: each flag becomes its API field, only when given.
func TestDeployRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want map[string]any
		idem string
	}{
		{"hugging face id", []string{"deploy", "org/model"},
			map[string]any{"hf_model_id": "org/model", "user_runpod_key": testRunPodKey}, ""},
		{"catalogue name", []string{"deploy", "veo3", "--provider", "fal"},
			map[string]any{"model_name": "veo3", "provider": "fal", "user_runpod_key": testRunPodKey}, ""},
		{"every option", []string{"deploy", "org/model", "--gpu", "A40", "--hf-token", "hf_x", "--webhook", "https://example.com/h",
			"--min-workers", "0", "--max-workers", "3", "--idle-timeout", "2m", "--max-spend", "2.5", "--ttl", "24h",
			"--idempotency-key", "k1"},
			map[string]any{"hf_model_id": "org/model", "user_runpod_key": testRunPodKey, "gpu_tier": "A40", "hf_token": "hf_x",
				"user_webhook_url": "https://example.com/h", "min_workers": 0.0, "max_workers": 3.0, "idle_timeout_seconds": 120.0,
				"max_spend_usd": 2.5, "ttl_seconds": 86400.0}, "k1"},
		{"seconds and expiry", []string{"deploy", "org/model", "--idle-timeout", "30", "--expires-at", "2027-01-31T12:00:00Z"},
			map[string]any{"hf_model_id": "org/model", "user_runpod_key": testRunPodKey, "idle_timeout_seconds": 30.0,
				"expires_at": "2027-01-31T12:00:00Z"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t)
			code, out, errOut := newCLI(api.URL).text(t, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, "dep_2026_0a1b2c3d accepted") {
				t.Errorf("stdout = %q", out)
			}
			reqs := api.recorded()
			if len(reqs) != 1 {
				t.Fatalf("requests = %v", api.methods())
			}
			r := reqs[0]
			if diff := cmp.Diff(tc.want, r.body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if r.auth != "Bearer "+testAPIKey || r.idem != tc.idem {
				t.Errorf("Authorization %q, Idempotency-Key %q", r.auth, r.idem)
			}
		})
	}
}

// TestExitCodes: each documented exit code for its cause.
func TestExitCodes(t *testing.T) {
	api := newFakeAPI(t)
	create := func(body map[string]any) (int, any) {
		switch body["hf_model_id"] {
		case "org/bad":
			return 422, map[string]any{"error": "ValidationError", "message": "Invalid request", "details": map[string]any{"gpu_tier": "unknown GPU"}}
		case "org/boom":
			return 500, map[string]any{"error": "InternalError", "message": "Internal error"}
		}
		return 202, map[string]any{"deployment_id": "dep_2026_0a1b2c3d"}
	}
	failed := state("failed", nil)
	failed["error"] = "The model is gated: give hf_token."
	states := []map[string]any{state("validating", nil), failed}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		errLine string
	}{
		{"ok", nil, []string{"deploy", "org/ok"}, exitOK, ""},
		{"unknown flag", nil, []string{"deploy", "org/ok", "--nope"}, exitUsage, "unknown flag"},
		{"unknown command", nil, []string{"nope"}, exitUsage, "unknown command"},
		{"missing argument", nil, []string{"get"}, exitUsage, "missing argument"},
		{"no api key", map[string]string{"VISGATE_API_KEY": ""}, []string{"ls"}, exitUsage, "no API key"},
		{"no runpod key", map[string]string{"RUNPOD_API_KEY": ""}, []string{"deploy", "org/ok"}, exitUsage, "no RunPod API key"},
		{"ttl and expiry", nil, []string{"deploy", "org/ok", "--ttl", "1h", "--expires-at", "2027-01-01T00:00:00Z"}, exitUsage, "not both"},
		{"bad output", nil, []string{"ls", "-o", "yaml"}, exitUsage, "--output"},
		{"refused", nil, []string{"deploy", "org/bad"}, exitRefused, "gpu_tier: unknown GPU"},
		{"server error", nil, []string{"deploy", "org/boom"}, exitError, "Internal error (HTTP 500)"},
		{"unreachable", map[string]string{"VISGATE_URL": "http://127.0.0.1:1"}, []string{"gpus"}, exitError, "connect"},
		{"deployment failed", nil, []string{"deploy", "org/ok", "--wait"}, exitFailed, "The model is gated: give hf_token."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(api.URL)
			for k, v := range tc.env {
				c.env[k] = v
			}
			api.set(states, create)
			code, _, errOut := c.text(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if !strings.Contains(errOut, tc.errLine) {
				t.Errorf("stderr %q lacks %q", errOut, tc.errLine)
			}
		})
	}
}

// TestTimeoutAndInterrupt: --timeout exits 5, Ctrl-C 130, and neither
// deletes anything.
func TestTimeoutAndInterrupt(t *testing.T) {
	api := newFakeAPI(t)
	api.set([]map[string]any{state("downloading_model", &progress{"downloading_model", 10, 100})}, nil)
	c := newCLI(api.URL)
	code, _, errOut := c.text(t, "deploy", "org/ok", "--wait", "--timeout", "200ms")
	if code != exitTimeout || !strings.Contains(errOut, "stopped waiting after 200ms") {
		t.Errorf("timeout: exit %d, stderr %q", code, errOut)
	}
	// Ctrl-C once the client waits (its first GET answered), not during
	// the POST: the deployment then exists and goes on.
	ctx, cancel := context.WithCancel(context.Background())
	api.mu.Lock()
	api.onGet = cancel
	api.mu.Unlock()
	code, errOut = c.run(t, ctx, io.Discard, "deploy", "org/ok", "--wait")
	if code != exitInterrupted || !strings.Contains(errOut, "nothing was deleted") {
		t.Errorf("interrupt: exit %d, stderr %q", code, errOut)
	}
	for _, m := range api.methods() {
		if strings.HasPrefix(m, "DELETE") {
			t.Errorf("waiting sent %s", m)
		}
	}
}

// download is a deployment's life as polling sees it.
func download() []map[string]any {
	const total = 3 << 20
	return []map[string]any{
		state("validating", nil, "Validating Hugging Face model"),
		state("creating_endpoint", nil, "Validating Hugging Face model", "Creating RunPod endpoint"),
		state("downloading_model", &progress{"downloading_model", 0, total}, "Validating Hugging Face model", "Creating RunPod endpoint", "Downloading model (3.0 MB)"),
		state("downloading_model", &progress{"downloading_model", total / 4, total}, "Validating Hugging Face model", "Creating RunPod endpoint", "Downloading model (3.0 MB)"),
		state("downloading_model", &progress{"downloading_model", total / 2, total}, "Validating Hugging Face model", "Creating RunPod endpoint", "Downloading model (3.0 MB)"),
		state("loading_model", &progress{"loading_model", total, total}, "Validating Hugging Face model", "Creating RunPod endpoint", "Downloading model (3.0 MB)", "Loading model into GPU memory"),
		func() map[string]any {
			s := state("ready", &progress{"ready", total, total}, "Validating Hugging Face model", "Creating RunPod endpoint", "Downloading model (3.0 MB)", "Loading model into GPU memory", "Deployment ready")
			s["endpoint_url"] = "https://api.runpod.ai/v2/ep123"
			s["gpu_allocated"] = "NVIDIA A40"
			s["price"] = map[string]any{"pool": "AMPERE_48", "per_hour_usd": 1.224, "idle_per_hour_usd": 0.0, "max_per_hour_usd": 1.224}
			return s
		}(),
	}
}

// TestWaitLines: a stdout that is not a terminal gets one line per event,
// no bar, no colour, then the endpoint, the price and calls to paste.
func TestWaitLines(t *testing.T) {
	api := newFakeAPI(t)
	api.set(download(), nil)
	code, out, errOut := newCLI(api.URL).text(t, "deploy", "visgate-tiny/text-to-image", "--wait")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := `log 2026-12-06T10:00:00Z INFO Validating Hugging Face model
status validating
log 2026-12-06T10:00:01Z INFO Creating RunPod endpoint
status creating_endpoint
log 2026-12-06T10:00:02Z INFO Downloading model (3.0 MB)
status downloading_model
download 786432/3145728 bytes (25%)
download 1572864/3145728 bytes (50%)
log 2026-12-06T10:00:03Z INFO Loading model into GPU memory
download 3145728/3145728 bytes (100%)
status loading_model
log 2026-12-06T10:00:04Z INFO Deployment ready
status ready
ready dep_2026_0a1b2c3d  visgate-tiny/text-to-image on NVIDIA A40
endpoint: https://api.runpod.ai/v2/ep123
price:    1.2240 USD per worker-hour (AMPERE_48); idle 0.0000 USD/h; at most 1.2240 USD/h
call it (with your RunPod key in RUNPOD_API_KEY):
  visgate run dep_2026_0a1b2c3d --prompt "a red fox in the snow"
  curl -s -X POST https://api.runpod.ai/v2/ep123/runsync -H "Authorization: Bearer $RUNPOD_API_KEY" -H 'Content-Type: application/json' -d '{"input":{"prompt":"a red fox in the snow"}}'
`
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	if strings.ContainsAny(out, "\r\x1b") {
		t.Errorf("line mode wrote a carriage return or an escape sequence")
	}
	if strings.Contains(out+errOut, testRunPodKey) {
		t.Errorf("the RunPod key was printed")
	}
}

// TestWaitJSON: --output json prints the final deployment only.
func TestWaitJSON(t *testing.T) {
	api := newFakeAPI(t)
	api.set(download(), nil)
	code, out, errOut := newCLI(api.URL).text(t, "deploy", "visgate-tiny/text-to-image", "--wait", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
	}
	if got["status"] != "ready" || got["endpoint_url"] != "https://api.runpod.ai/v2/ep123" {
		t.Errorf("json = %v", got)
	}
}

// TestConfigPrecedence: flags, then environment, then the config file.
func TestConfigPrecedence(t *testing.T) {
	fileAPI, envAPI, flagAPI := newFakeAPI(t), newFakeAPI(t), newFakeAPI(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "visgate"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf, _ := json.Marshal(fileConfig{URL: fileAPI.URL, APIKey: "file-key", RunPodAPIKey: "rpa_file"})
	if err := os.WriteFile(filepath.Join(dir, "visgate", "config.json"), conf, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		env        map[string]string
		flags      []string
		api        *fakeAPI
		key, rpKey string
	}{
		{"file", map[string]string{"XDG_CONFIG_HOME": dir}, nil, fileAPI, "Bearer file-key", "rpa_file"},
		{"env over file", map[string]string{"XDG_CONFIG_HOME": dir, "VISGATE_URL": envAPI.URL, "VISGATE_API_KEY": "env-key", "RUNPOD_API_KEY": "rpa_env"},
			nil, envAPI, "Bearer env-key", "rpa_env"},
		{"flags over env", map[string]string{"XDG_CONFIG_HOME": dir, "VISGATE_URL": envAPI.URL, "VISGATE_API_KEY": "env-key"},
			[]string{"--url", flagAPI.URL, "--api-key", "flag-key", "--runpod-key", "rpa_flag"}, flagAPI, "Bearer flag-key", "rpa_flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cli{env: tc.env}
			code, _, errOut := c.text(t, append([]string{"deploy", "org/m"}, tc.flags...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			reqs := tc.api.recorded()
			last := reqs[len(reqs)-1]
			if last.auth != tc.key || last.body["user_runpod_key"] != tc.rpKey {
				t.Errorf("Authorization %q, user_runpod_key %v; want %q, %q", last.auth, last.body["user_runpod_key"], tc.key, tc.rpKey)
			}
		})
	}
	c := &cli{env: map[string]string{"VISGATE_CONFIG": filepath.Join(dir, "missing.json")}}
	if code, _, errOut := c.text(t, "gpus"); code != exitUsage || !strings.Contains(errOut, "config file") {
		t.Errorf("a named config file that is missing: exit %d, %q", code, errOut)
	}
}

// fakeEndpoint is a RunPod endpoint's job API: the first status poll
// answers IN_PROGRESS, then the output.
func fakeEndpoint(t *testing.T, output func(input map[string]any) (string, any)) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	results := map[string]map[string]any{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && r.URL.Path == "/v2/ep1/runsync":
			var req struct {
				Input map[string]any `json:"input"`
			}
			_ = json.NewDecoder(r.Body).Decode(&req)
			status, out := output(req.Input)
			id := fmt.Sprintf("job-%d", len(results))
			res := map[string]any{"id": id, "status": status}
			if status == "FAILED" {
				res["error"] = out
			} else {
				res["output"] = out
			}
			results[id] = res
			_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "status": "IN_PROGRESS"})
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v2/ep1/status/"):
			_ = json.NewEncoder(w).Encode(results[strings.TrimPrefix(r.URL.Path, "/v2/ep1/status/")])
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string{}, seen...)
	}
}

func pngBase64(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// TestRun: each task's flags make its input, and its output is written
// (images to files) or printed; a failed job exits 4.
func TestRun(t *testing.T) {
	img := pngBase64(t)
	var mu sync.Mutex
	var gotInput map[string]any
	ep, seen := fakeEndpoint(t, func(in map[string]any) (string, any) {
		mu.Lock()
		gotInput = in
		mu.Unlock()
		switch {
		case in["prompt"] == "boom":
			return "FAILED", "CUDA out of memory"
		case in["prompt"] != nil:
			return "COMPLETED", map[string]any{"images": []string{img, img}, "seed": 1}
		case in["audio"] != nil:
			return "COMPLETED", map[string]any{"text": "hello world"}
		case in["inputs"] != nil && len(in["inputs"].([]any)) == 2:
			return "COMPLETED", map[string]any{"embeddings": [][]float64{{0.5, 1}, {0, -1}}}
		default:
			return "COMPLETED", map[string]any{"predictions": []any{[]any{map[string]any{"label": "POSITIVE", "score": 0.9}}}}
		}
	})
	api := newFakeAPI(t)
	ready := state("ready", nil)
	ready["endpoint_url"] = ep.URL + "/v2/ep1"
	api.set([]map[string]any{ready}, nil)
	audio := filepath.Join(t.TempDir(), "a.wav")
	if err := os.WriteFile(audio, []byte("RIFFfake"), 0o600); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	for _, tc := range []struct {
		name      string
		args      []string
		wantInput map[string]any
		code      int
		wantOut   string
	}{
		{"prompt", []string{"--prompt", "a fox", "--width", "64", "--height", "64", "--steps", "2", "--seed", "7", "--out-dir", outDir},
			map[string]any{"prompt": "a fox", "width": 64.0, "height": 64.0, "num_inference_steps": 2.0, "seed": 7.0}, 0,
			filepath.Join(outDir, "dep_2026_0a1b2c3d-job-0-0.png") + "\n" + filepath.Join(outDir, "dep_2026_0a1b2c3d-job-0-1.png") + "\n"},
		{"texts", []string{"--text", "a", "--text", "b"}, map[string]any{"inputs": []any{"a", "b"}}, 0, "[0.5,1]\n[0,-1]\n"},
		{"labels", []string{"--text", "great"}, map[string]any{"inputs": []any{"great"}}, 0, `[{"label":"POSITIVE","score":0.9}]` + "\n"},
		{"audio", []string{"--audio", audio}, map[string]any{"audio": base64.StdEncoding.EncodeToString([]byte("RIFFfake"))}, 0, "hello world\n"},
		{"raw input", []string{"--input", `{"inputs":["x"]}`}, map[string]any{"inputs": []any{"x"}}, 0, `[{"label":"POSITIVE","score":0.9}]` + "\n"},
		{"failed job", []string{"--prompt", "boom"}, map[string]any{"prompt": "boom"}, exitFailed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			gotInput = nil
			mu.Unlock()
			code, out, errOut := newCLI(api.URL).text(t, append([]string{"run", "dep_2026_0a1b2c3d"}, tc.args...)...)
			mu.Lock()
			defer mu.Unlock()
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, errOut)
			}
			if diff := cmp.Diff(tc.wantInput, gotInput); diff != "" {
				t.Errorf("input (-want +got):\n%s", diff)
			}
			if out != tc.wantOut {
				t.Errorf("stdout = %q, want %q", out, tc.wantOut)
			}
			if tc.code == exitFailed && !strings.Contains(errOut, "CUDA out of memory") {
				t.Errorf("stderr = %q", errOut)
			}
		})
	}
	b, err := os.ReadFile(filepath.Join(outDir, "dep_2026_0a1b2c3d-job-0-1.png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Errorf("the image file is not a PNG: %v", err)
	}
	for _, s := range seen() {
		if !strings.HasSuffix(s, " Bearer "+testRunPodKey) {
			t.Errorf("endpoint request %q was not made with the RunPod key", s)
		}
	}
	if code, _, errOut := newCLI(api.URL).text(t, "run", "dep_2026_0a1b2c3d", "--prompt", "a", "--text", "b"); code != exitUsage {
		t.Errorf("two inputs: exit %d (%s)", code, errOut)
	}
}
