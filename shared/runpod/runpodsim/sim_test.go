package runpodsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/wait"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

const key = "rpa_SIMKEY"

func newSim(t *testing.T, opts ...runpodsim.Option) *runpodsim.Server {
	t.Helper()
	opts = append([]runpodsim.Option{
		runpodsim.WithBootDelay(50 * time.Millisecond),
		runpodsim.WithCallbackInterval(10 * time.Millisecond),
	}, opts...)
	s := runpodsim.New(opts...)
	t.Cleanup(s.Close)
	s.AddAccount(key, 10)
	return s
}

type answer struct {
	status  int
	header  http.Header
	body    map[string]any
	rawBody string
}

func call(t *testing.T, s *runpodsim.Server, method, path, auth, body string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(s.URL, "/v2")+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, rawBody: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("%s %s answered %d with a body that is not a JSON object: %q", method, path, resp.StatusCode, raw)
		}
	}
	return a
}

const validCreate = `{"name":"n","image":"img","type":"QUEUE",
  "gpu":{"pools":["AMPERE_48"],"count":1},"workers":{"min":0,"max":2,"idleTimeout":5},
  "scaling":{"type":"QUEUE_DELAY","queueDelay":4}}`

// with replaces top-level fields of validCreate (null deletes one).
func with(t *testing.T, patch string) string {
	t.Helper()
	var base, p map[string]any
	if err := json.Unmarshal([]byte(validCreate), &base); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(patch), &p); err != nil {
		t.Fatal(err)
	}
	for k, v := range p {
		if v == nil {
			delete(base, k)
			continue
		}
		base[k] = v
	}
	b, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCreateValidation(t *testing.T) {
	s := newSim(t)
	bearer := "Bearer " + key
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantText   string // in detail or errors
	}{
		{"not JSON", `{"name":`, 400, "not valid JSON"},
		{"not an object", `["n"]`, 422, "$: expected object"},
		{"unknown property", with(t, `{"bogus":1}`), 422, "$: additional properties 'bogus' not allowed"},
		{"missing name", with(t, `{"name":null}`), 422, "missing property 'name'"},
		{"missing type", with(t, `{"type":null}`), 422, "missing property 'type'"},
		{"missing scaling", with(t, `{"scaling":null}`), 422, "missing property 'scaling'"},
		{"missing image", with(t, `{"image":null}`), 422, "missing property 'image'"},
		{"empty name", with(t, `{"name":""}`), 422, "$.name: length must be >= 1"},
		{"bad type", with(t, `{"type":"BATCH"}`), 422, "$.type: value must be one of"},
		{"count zero", with(t, `{"gpu":{"pools":["AMPERE_48"],"count":0}}`), 422, "$.gpu.count: must be >= 1"},
		{"no pools", with(t, `{"gpu":{"pools":[]}}`), 422, "$.gpu.pools: minimum 1 items"},
		{"unknown gpu property", with(t, `{"gpu":{"pools":["AMPERE_48"],"id":"NVIDIA A40"}}`), 422, "$.gpu: additional properties 'id'"},
		{"idle timeout zero", with(t, `{"workers":{"idleTimeout":0}}`), 422, "$.workers.idleTimeout: must be >= 1"},
		{"idle timeout too long", with(t, `{"workers":{"idleTimeout":3601}}`), 422, "must be <= 3600"},
		{"workers as string", with(t, `{"workers":{"min":"1"}}`), 422, "$.workers.min: expected integer, got string"},
		{"fractional min", with(t, `{"workers":{"min":1.5}}`), 422, "$.workers.min: expected integer"},
		{"bad flashboot", with(t, `{"flashboot":"ON"}`), 422, "$.flashboot: value must be one of"},
		{"env not strings", with(t, `{"env":{"A":1}}`), 422, "$.env.A: expected string"},
		{"queue delay too small", with(t, `{"scaling":{"type":"QUEUE_DELAY","queueDelay":0.1}}`), 422, "must be >= 0.5"},
		{"load balancer on queue delay", with(t, `{"type":"LOAD_BALANCER"}`), 422, "REQUEST_COUNT"},
		{"bad cuda version", with(t, `{"gpu":{"pools":["AMPERE_48"],"minCudaVersion":"12"}}`), 422, "does not match pattern"},
		{"both gpu and cpu", with(t, `{"cpu":[{"id":"cpu5c","vcpuCount":4}]}`), 400, "exactly one of gpu or cpu"},
		{"neither gpu nor cpu", with(t, `{"gpu":null}`), 400, "exactly one of gpu or cpu"},
		{"unknown pool", with(t, `{"gpu":{"pools":["AMPERE_48","NOPE_1"]}}`), 400, `unknown GPU pool "NOPE_1"`},
		{"exclusion outside the pools", with(t, `{"gpu":{"pools":["AMPERE_48"],"excludedTypes":["NVIDIA L40"]}}`), 400, "not a GPU type in the selected pools"},
		{"exclusion of every card", with(t, `{"gpu":{"pools":["AMPERE_48"],"excludedTypes":["NVIDIA A40"," NVIDIA RTX A6000"]}}`), 400, "leaves no GPU type"},
		{"cuda set and floor", with(t, `{"gpu":{"pools":["AMPERE_48"],"allowedCudaVersions":["12.8"],"minCudaVersion":"12.1"}}`), 400, "mutually exclusive"},
		{"min above max", with(t, `{"workers":{"min":3,"max":1}}`), 400, "cannot exceed"},
		{"unknown template", with(t, `{"templateId":"30zmvf89kd","image":null}`), 404, "template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, s, "POST", "/v2/serverless", bearer, tt.body)
			if a.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", a.status, tt.wantStatus, a.rawBody)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if a.body["status"] != float64(tt.wantStatus) || a.body["title"] != http.StatusText(tt.wantStatus) {
				t.Errorf("problem body %v", a.body)
			}
			text := a.body["detail"].(string)
			if errs, ok := a.body["errors"].([]any); ok {
				for _, e := range errs {
					text += "\n" + e.(string)
				}
			}
			if !strings.Contains(text, tt.wantText) {
				t.Errorf("problem %q lacks %q", text, tt.wantText)
			}
		})
	}
	if eps := s.Endpoints(key); len(eps) != 0 {
		t.Errorf("invalid creates made endpoints: %+v", eps)
	}
}

func TestCreateAnswerFollowsTheSchema(t *testing.T) {
	s := newSim(t)
	a := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t, `{"flashboot":"FLASHBOOT","env":{"K":"v"}}`))
	if a.status != http.StatusCreated || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", a.status, a.rawBody)
	}
	for _, field := range []string{"id", "name", "workers", "scaling", "dataCenterIds", "networkVolumes", "timeout", "flashboot", "createdAt"} {
		if _, ok := a.body[field]; !ok {
			t.Errorf("required field %q missing from %s", field, a.rawBody)
		}
	}
	id := a.body["id"].(string)
	want := map[string]any{
		"name": "n -fb", "type": "QUEUE", "image": "img", "args": "", "disk": 20.0, "ports": []any{},
		"env": map[string]any{"K": "v"}, "registry": nil,
		"gpu": map[string]any{"pools": []any{"AMPERE_48"}, "count": 1.0, "allowedCudaVersions": []any{},
			"minCudaVersion": nil},
		"workers":       map[string]any{"min": 0.0, "max": 2.0, "idleTimeout": 5.0},
		"scaling":       map[string]any{"type": "QUEUE_DELAY", "queueDelay": 4.0},
		"dataCenterIds": []any{}, "networkVolumes": []any{}, "timeout": 300000.0, "flashboot": "FLASHBOOT",
		"requestUrls": map[string]any{
			"run": "https://api.runpod.ai/v2/" + id + "/run", "runSync": "https://api.runpod.ai/v2/" + id + "/runsync",
			"status": "https://api.runpod.ai/v2/" + id + "/status/{job_id}", "stream": "https://api.runpod.ai/v2/" + id + "/stream/{job_id}",
			"cancel": "https://api.runpod.ai/v2/" + id + "/cancel/{job_id}", "retry": "https://api.runpod.ai/v2/" + id + "/retry/{job_id}",
			"purgeQueue": "https://api.runpod.ai/v2/" + id + "/purge-queue", "health": "https://api.runpod.ai/v2/" + id + "/health",
		},
	}
	got := a.body
	delete(got, "id")
	if _, err := time.Parse(time.RFC3339Nano, got["createdAt"].(string)); err != nil {
		t.Errorf("createdAt: %v", err)
	}
	delete(got, "createdAt")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created endpoint (-want +got):\n%s", diff)
	}
}

func TestRoutingAndAuth(t *testing.T) {
	s := newSim(t)
	bearer := "Bearer " + key
	tests := []struct {
		name, method, path, auth string
		wantStatus               int
		wantText                 string
	}{
		{"no token", "GET", "/v2/serverless", "", 401, "missing bearer token"},
		{"not bearer", "GET", "/v2/serverless", "Basic abc", 401, "missing bearer token"},
		{"unknown key", "GET", "/v2/serverless", "Bearer rpa_other", 401, "invalid API key"},
		{"unknown endpoint", "GET", "/v2/serverless/nope1234", bearer, 404, "not found"},
		{"unknown endpoint workers", "GET", "/v2/serverless/nope1234/workers", bearer, 404, "not found"},
		{"delete unknown", "DELETE", "/v2/serverless/nope1234", bearer, 404, "not found"},
		{"patch unknown", "PATCH", "/v2/serverless/nope1234", bearer, 404, "not found"},
		{"wrong method", "PUT", "/v2/serverless", bearer, 405, "not allowed"},
		{"unknown path", "GET", "/v2/nothing", bearer, 404, "no such path"},
		{"availability without product", "GET", "/v2/catalog/gpus?include=AVAILABILITY", bearer, 400, "product is required"},
		{"product without availability", "GET", "/v2/catalog/gpus?product=SERVERLESS", bearer, 400, "product is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, s, tt.method, tt.path, tt.auth, "")
			if a.status != tt.wantStatus || !strings.Contains(a.rawBody, tt.wantText) {
				t.Errorf("%d %s; want %d with %q", a.status, a.rawBody, tt.wantStatus, tt.wantText)
			}
			if a.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type %q", a.header.Get("Content-Type"))
			}
		})
	}
	if a := call(t, s, "PUT", "/v2/serverless", bearer, ""); a.header.Get("Allow") != "GET, POST" {
		t.Errorf("405 Allow = %q", a.header.Get("Allow"))
	}
}

func TestAccountsAreIsolated(t *testing.T) {
	s := newSim(t)
	s.AddAccount("rpa_other", 10)
	a := call(t, s, "POST", "/v2/serverless", "Bearer "+key, validCreate)
	if a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.rawBody)
	}
	id := a.body["id"].(string)
	if got := call(t, s, "GET", "/v2/serverless/"+id, "Bearer rpa_other", ""); got.status != http.StatusNotFound {
		t.Errorf("another account reads the endpoint: %d", got.status)
	}
	if got := call(t, s, "GET", "/v2/serverless", "Bearer rpa_other", ""); got.rawBody != "{\"endpoints\":[]}\n" {
		t.Errorf("another account lists %s", got.rawBody)
	}
	if len(s.Endpoints("rpa_other")) != 0 || len(s.Endpoints(key)) != 1 {
		t.Error("Endpoints does not follow the accounts")
	}
}

func TestAnyKey(t *testing.T) {
	s := newSim(t, runpodsim.WithAnyKey())
	if a := call(t, s, "POST", "/v2/serverless", "Bearer whatever", validCreate); a.status != http.StatusCreated {
		t.Fatalf("create with any key: %d %s", a.status, a.rawBody)
	}
	if a := call(t, s, "GET", "/v2/serverless", "", ""); a.status != http.StatusUnauthorized {
		t.Errorf("no key at all: %d", a.status)
	}
}

func TestPatch(t *testing.T) {
	s := newSim(t)
	bearer := "Bearer " + key
	created := call(t, s, "POST", "/v2/serverless", bearer, with(t, `{"gpu":{"pools":["AMPERE_48"],"excludedTypes":["NVIDIA RTX A6000"]}}`))
	id := created.body["id"].(string)
	path := "/v2/serverless/" + id

	tests := []struct {
		name       string
		body       string
		wantStatus int
		check      func(t *testing.T, body map[string]any)
	}{
		{"type is not updatable", `{"type":"QUEUE"}`, 422, nil},
		{"exclusions need pools", `{"gpu":{"excludedTypes":["NVIDIA A40"]}}`, 422, nil},
		{"cpu on a gpu endpoint", `{"cpu":[{"id":"cpu5c","vcpuCount":4}]}`, 400, nil},
		{"min above max", `{"workers":{"min":5}}`, 400, nil},
		{"workers merge field by field", `{"workers":{"max":4}}`, 200, func(t *testing.T, b map[string]any) {
			want := map[string]any{"min": 0.0, "max": 4.0, "idleTimeout": 5.0}
			if diff := cmp.Diff(want, b["workers"]); diff != "" {
				t.Errorf("workers (-want +got):\n%s", diff)
			}
			gpu := b["gpu"].(map[string]any)
			if diff := cmp.Diff([]any{"NVIDIA RTX A6000"}, gpu["excludedTypes"]); diff != "" {
				t.Errorf("a PATCH without gpu changed the exclusions: %s", diff)
			}
		}},
		{"pools without exclusions clear them", `{"gpu":{"pools":["AMPERE_48","ADA_48_PRO"]}}`, 200, func(t *testing.T, b map[string]any) {
			gpu := b["gpu"].(map[string]any)
			if _, ok := gpu["excludedTypes"]; ok {
				t.Errorf("exclusions kept: %v", gpu)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, s, "PATCH", path, bearer, tt.body)
			if a.status != tt.wantStatus {
				t.Fatalf("%d %s, want %d", a.status, a.rawBody, tt.wantStatus)
			}
			if tt.check != nil {
				tt.check(t, a.body)
			}
		})
	}
}

func TestWorkersAnswer(t *testing.T) {
	s := newSim(t)
	bearer := "Bearer " + key
	created := call(t, s, "POST", "/v2/serverless", bearer, with(t, `{"workers":{"min":2,"max":2}}`))
	id := created.body["id"].(string)
	var a answer
	wait.Until(t, 3*time.Second, "two idle workers", func() bool {
		a = call(t, s, "GET", "/v2/serverless/"+id+"/workers", bearer, "")
		return a.body["summary"].(map[string]any)["idle"] == 2.0
	}, func() string { return a.rawBody })
	want := map[string]any{"running": 0.0, "idle": 2.0, "initializing": 0.0, "throttled": 0.0, "unhealthy": 0.0, "total": 2.0}
	if diff := cmp.Diff(want, a.body["summary"]); diff != "" {
		t.Fatalf("summary (-want +got):\n%s", diff)
	}
	w := a.body["workers"].([]any)[0].(map[string]any)
	for _, field := range []string{"id", "status", "gpuCount", "isStale", "gpuTypeId", "dataCenterId", "startedAt", "uptimeSeconds", "image"} {
		if _, ok := w[field]; !ok {
			t.Errorf("worker lacks %q: %v", field, w)
		}
	}
	if w["gpuTypeId"] != "NVIDIA A40" || w["isStale"] != false {
		t.Errorf("worker %v", w)
	}
	// A container change makes the running workers stale.
	call(t, s, "PATCH", "/v2/serverless/"+id, bearer, `{"image":"img:2"}`)
	a = call(t, s, "GET", "/v2/serverless/"+id+"/workers", bearer, "")
	if a.body["endpointVersion"] != 2.0 || a.body["workers"].([]any)[0].(map[string]any)["isStale"] != true {
		t.Errorf("after an image change: %s", a.rawBody)
	}
}

func TestCatalogAvailability(t *testing.T) {
	s := newSim(t)
	s.SetStockOut("AMPERE_48")
	a := call(t, s, "GET", "/v2/catalog/gpus?include=AVAILABILITY&product=SERVERLESS", "Bearer "+key, "")
	if a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.rawBody)
	}
	got := map[string]string{}
	for _, g := range a.body["gpus"].([]any) {
		m := g.(map[string]any)
		got[m["id"].(string)] = m["availability"].(string)
	}
	if got["NVIDIA A40"] != "NONE" || got["NVIDIA L40S"] != "HIGH" {
		t.Errorf("availability %v", got)
	}
}

// callbackSink records what the simulated containers POST.
type callbackSink struct {
	mu    sync.Mutex
	got   []string
	auths []string
}

func (c *callbackSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Status string `json:"status"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	c.mu.Lock()
	c.got = append(c.got, r.URL.Path+" "+body.Status)
	c.auths = append(c.auths, r.Header.Get(runpodsim.HeaderInternalAuth))
	c.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (c *callbackSink) statuses() ([]string, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...), append([]string(nil), c.auths...)
}

func createWithCallback(t *testing.T, s *runpodsim.Server, sinkURL string) string {
	t.Helper()
	env, err := json.Marshal(map[string]any{"env": map[string]string{
		workerenv.CallbackURL:    sinkURL + "/internal/deployment-ready/dep_2026_c1badc17",
		workerenv.CallbackSecret: "cb-secret",
		workerenv.DeploymentID:   "dep_2026_c1badc17",
	}, "workers": map[string]int{"min": 1, "max": 1}})
	if err != nil {
		t.Fatal(err)
	}
	a := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t, string(env)))
	if a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.rawBody)
	}
	return a.body["id"].(string)
}

func waitIdle(t *testing.T, s *runpodsim.Server) {
	t.Helper()
	var eps []runpodsim.Endpoint
	wait.Until(t, 3*time.Second, "an idle worker", func() bool {
		eps = s.Endpoints(key)
		return len(eps) == 1 && len(eps[0].Workers) == 1 && eps[0].Workers[0].Status == runpod.WorkerIdle
	}, func() string { return fmt.Sprintf("endpoints: %+v", eps) })
}

func TestContainerCallbacks(t *testing.T) {
	sink := &callbackSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	s := newSim(t)
	id := createWithCallback(t, s, srv.URL)
	waitIdle(t, s)

	got, auths := sink.statuses()
	path := "/internal/deployment-ready/dep_2026_c1badc17 "
	want := []string{path + "downloading_model", path + "loading_model", path + "ready"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("callbacks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"cb-secret", "cb-secret", "cb-secret"}, auths); diff != "" {
		t.Errorf("secret header (-want +got):\n%s", diff)
	}
	recs := s.Callbacks()
	if len(recs) != 3 || recs[2].EndpointID != id || recs[2].HTTPStatus != 200 || recs[2].DeploymentID != "dep_2026_c1badc17" {
		t.Errorf("Callbacks() = %+v", recs)
	}
}

func TestSilentContainer(t *testing.T) {
	sink := &callbackSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	s := newSim(t, runpodsim.WithSilentContainer())
	createWithCallback(t, s, srv.URL)
	waitIdle(t, s)
	if got, _ := sink.statuses(); len(got) != 0 {
		t.Errorf("a silent container called back: %v", got)
	}
}

func TestDeleteStopsWorkersAndCallbacks(t *testing.T) {
	sink := &callbackSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	s := newSim(t, runpodsim.WithCallbackInterval(200*time.Millisecond))
	id := createWithCallback(t, s, srv.URL)
	if a := call(t, s, "DELETE", "/v2/serverless/"+id, "Bearer "+key, ""); a.status != http.StatusNoContent || a.rawBody != "" {
		t.Fatalf("delete: %d %q", a.status, a.rawBody)
	}
	// DELETE returns once the endpoint's workers have stopped: what the
	// sink has now is all it will ever get.
	if got, _ := sink.statuses(); len(got) != 0 {
		t.Errorf("callbacks after delete: %v", got)
	}
	if eps := s.Endpoints(key); len(eps) != 0 {
		t.Errorf("endpoints after delete: %+v", eps)
	}
}

func TestCallbacksStayOnLoopback(t *testing.T) {
	s := newSim(t)
	createWithCallback(t, s, "http://example.com")
	waitIdle(t, s)
	recs := s.Callbacks()
	if len(recs) != 3 {
		t.Fatalf("Callbacks() = %+v", recs)
	}
	for _, r := range recs {
		if r.HTTPStatus != 0 || !strings.Contains(r.Err, "not a loopback address") {
			t.Errorf("record %+v", r)
		}
	}
}

func TestCloseStopsRunningWorkers(t *testing.T) {
	s := runpodsim.New(runpodsim.WithBootDelay(time.Hour))
	s.AddAccount(key, 10)
	if a := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t, `{"workers":{"min":2,"max":2}}`)); a.status != http.StatusCreated {
		t.Fatalf("create: %d", a.status)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with workers booting")
	}
}
