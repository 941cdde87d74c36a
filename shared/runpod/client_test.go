package runpod_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

const testKey = "rpa_TESTKEY0123456789"

func newSim(t *testing.T, opts ...runpodsim.Option) (*runpodsim.Server, *runpod.Client) {
	t.Helper()
	opts = append([]runpodsim.Option{
		runpodsim.WithBootDelay(50 * time.Millisecond),
		runpodsim.WithCallbackInterval(10 * time.Millisecond),
	}, opts...)
	s := runpodsim.New(opts...)
	t.Cleanup(s.Close)
	s.AddAccount(testKey, 10)
	return s, runpod.NewClient(s.URL, &http.Client{Timeout: 5 * time.Second})
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func spec(marker string) runpod.EndpointSpec {
	return runpod.EndpointSpec{
		Name:               "visgate-" + marker,
		Image:              "visgate/inference:1",
		Env:                map[string]string{"VISGATE_DEPLOYMENT_ID": marker, "MODEL_ID": "stabilityai/sdxl-turbo"},
		Pools:              []string{"AMPERE_48", "ADA_48_PRO"},
		ExcludedTypes:      []string{"NVIDIA RTX A6000"},
		WorkersMin:         1,
		WorkersMax:         2,
		IdleTimeout:        60,
		ContainerDiskGB:    40,
		ExecutionTimeoutMs: 600000,
	}
}

func workerStatuses(t *testing.T, c *runpod.Client, id string) []runpod.WorkerStatus {
	t.Helper()
	ws, err := c.Workers(testCtx(t), secret.New(testKey), id)
	if err != nil {
		t.Fatalf("Workers: %v", err)
	}
	var out []runpod.WorkerStatus
	for _, w := range ws {
		out = append(out, w.Status)
	}
	return out
}

func TestEndpointLifecycle(t *testing.T) {
	s, c := newSim(t)
	ctx, key := testCtx(t), secret.New(testKey)

	created, err := c.CreateEndpoint(ctx, key, spec("dep_2026_00000001"))
	if err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	want := runpod.Endpoint{
		ID:                 created.ID,
		Name:               "visgate-dep_2026_00000001",
		Type:               "QUEUE",
		Image:              "visgate/inference:1",
		Env:                map[string]string{"VISGATE_DEPLOYMENT_ID": "dep_2026_00000001", "MODEL_ID": "stabilityai/sdxl-turbo"},
		Pools:              []string{"AMPERE_48", "ADA_48_PRO"},
		ExcludedTypes:      []string{"NVIDIA RTX A6000"},
		GPUCount:           1,
		WorkersMin:         1,
		WorkersMax:         2,
		IdleTimeout:        60,
		URL:                "https://api.runpod.ai/v2/" + created.ID,
		Flashboot:          "OFF",
		ExecutionTimeoutMs: 600000,
		ContainerDiskGB:    40,
	}
	if diff := cmp.Diff(want, *created, cmpopts.IgnoreFields(runpod.Endpoint{}, "CreatedAt")); diff != "" {
		t.Errorf("created endpoint (-want +got):\n%s", diff)
	}
	if created.ID == "" || time.Since(created.CreatedAt) > time.Minute {
		t.Errorf("id %q, createdAt %v", created.ID, created.CreatedAt)
	}

	got, err := c.GetEndpoint(ctx, key, created.ID)
	if err != nil {
		t.Fatalf("GetEndpoint: %v", err)
	}
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("GetEndpoint differs from the create answer (-create +get):\n%s", diff)
	}
	list, err := c.ListEndpoints(ctx, key)
	if err != nil {
		t.Fatalf("ListEndpoints: %v", err)
	}
	if diff := cmp.Diff([]runpod.Endpoint{*created}, list); diff != "" {
		t.Errorf("ListEndpoints (-want +got):\n%s", diff)
	}

	if err := c.DeleteEndpoint(ctx, key, created.ID); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	if _, err := c.GetEndpoint(ctx, key, created.ID); !runpod.IsNotFound(err) {
		t.Errorf("GetEndpoint after delete: %v, want not found", err)
	}
	if err := c.DeleteEndpoint(ctx, key, created.ID); err != nil {
		t.Errorf("second DeleteEndpoint: %v, want nil (404 counts as deleted)", err)
	}
	if eps := s.Endpoints(testKey); len(eps) != 0 {
		t.Errorf("endpoints left after delete: %+v", eps)
	}
	if n := s.Calls()[runpodsim.OpDeleteEndpoint]; n != 2 {
		t.Errorf("deleteEndpoint calls = %d, want 2", n)
	}
}

func TestFindEndpointByEnvMarker(t *testing.T) {
	_, c := newSim(t)
	ctx, key := testCtx(t), secret.New(testKey)

	first := spec("dep_a")
	first.Flashboot = true // RunPod alters the name of a FlashBoot endpoint
	a, err := c.CreateEndpoint(ctx, key, first)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name == first.Name {
		t.Fatalf("the simulator should have altered the name %q", a.Name)
	}
	b, err := c.CreateEndpoint(ctx, key, spec("dep_b"))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		value  string
		wantID string
	}{
		{"dep_a", a.ID},
		{"dep_b", b.ID},
		{"dep_c", ""},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			got, err := c.FindEndpoint(ctx, key, "VISGATE_DEPLOYMENT_ID", tt.value)
			if err != nil {
				t.Fatalf("FindEndpoint: %v", err)
			}
			gotID := ""
			if got != nil {
				gotID = got.ID
			}
			if gotID != tt.wantID {
				t.Errorf("FindEndpoint(%s) = %q, want %q", tt.value, gotID, tt.wantID)
			}
		})
	}
}

func TestFindEndpointReturnsTheOldestOfDuplicates(t *testing.T) {
	_, c := newSim(t)
	ctx, key := testCtx(t), secret.New(testKey)
	var ids []string
	for range 3 {
		e, err := c.CreateEndpoint(ctx, key, spec("dep_dup"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	all, err := c.FindEndpoints(ctx, key, "VISGATE_DEPLOYMENT_ID", "dep_dup")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range all {
		got = append(got, e.ID)
	}
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Errorf("FindEndpoints order (-want +got):\n%s", diff)
	}
	one, err := c.FindEndpoint(ctx, key, "VISGATE_DEPLOYMENT_ID", "dep_dup")
	if err != nil || one == nil || one.ID != ids[0] {
		t.Errorf("FindEndpoint = %v, %v; want %s", one, err, ids[0])
	}
}

func TestUpdateScaling(t *testing.T) {
	s, c := newSim(t)
	ctx, key := testCtx(t), secret.New(testKey)
	e, err := c.CreateEndpoint(ctx, key, spec("dep_scale"))
	if err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 3*time.Second, "one worker idle", func() bool {
		return cmp.Equal(workerStatuses(t, c, e.ID), []runpod.WorkerStatus{runpod.WorkerIdle})
	})

	if err := c.UpdateScaling(ctx, key, e.ID, 0, 3, 5); err != nil {
		t.Fatalf("UpdateScaling: %v", err)
	}
	got, err := c.GetEndpoint(ctx, key, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.WorkersMin != 0 || got.WorkersMax != 3 || got.IdleTimeout != 5 {
		t.Errorf("after UpdateScaling: min %d max %d idle %d, want 0 3 5", got.WorkersMin, got.WorkersMax, got.IdleTimeout)
	}
	if diff := cmp.Diff(e, got, cmpopts.IgnoreFields(runpod.Endpoint{}, "WorkersMin", "WorkersMax", "IdleTimeout")); diff != "" {
		t.Errorf("UpdateScaling changed more than the scaling (-before +after):\n%s", diff)
	}
	if ws := workerStatuses(t, c, e.ID); len(ws) != 0 {
		t.Errorf("workers after scaling to min 0: %v", ws)
	}

	// idleTimeout 0 leaves the current one.
	if err := c.UpdateScaling(ctx, key, e.ID, 2, 2, 0); err != nil {
		t.Fatal(err)
	}
	if eps := s.Endpoints(testKey); eps[0].IdleTimeout != 5 || eps[0].WorkersMin != 2 || len(eps[0].Workers) != 2 {
		t.Errorf("after UpdateScaling(2, 2, 0): %+v", eps[0])
	}

	if err := c.UpdateScaling(ctx, key, e.ID, 3, 1, 5); err == nil {
		t.Error("UpdateScaling accepted min above max")
	}
	if err := c.UpdateScaling(ctx, key, "nope1234", 0, 1, 5); !runpod.IsNotFound(err) {
		t.Errorf("UpdateScaling of an unknown endpoint: %v, want not found", err)
	}
}

func TestWorkers(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(*runpodsim.Server)
		pools    []string
		want     runpod.WorkerStatus
		wantCard string
	}{
		{
			name: "boots to idle on the first pool, excluded card skipped",
			want: runpod.WorkerIdle, wantCard: "NVIDIA A40",
		},
		{
			name:  "stock-out of the first pool: placed on the fallback",
			setup: func(s *runpodsim.Server) { s.SetStockOut("AMPERE_48") },
			want:  runpod.WorkerIdle, wantCard: "NVIDIA L40",
		},
		{
			name:  "stock-out everywhere: throttled",
			setup: func(s *runpodsim.Server) { s.SetStockOut(runpodsim.AllPools) },
			want:  runpod.WorkerThrottled,
		},
		{
			name:  "crash loop: unhealthy",
			setup: func(s *runpodsim.Server) { s.SetCrashLoop(true) },
			want:  runpod.WorkerUnhealthy, wantCard: "NVIDIA A40",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newSim(t)
			if tt.setup != nil {
				tt.setup(s)
			}
			ctx, key := testCtx(t), secret.New(testKey)
			e, err := c.CreateEndpoint(ctx, key, spec("dep_w"))
			if err != nil {
				t.Fatal(err)
			}
			var ws []runpod.Worker
			wait.Until(t, 3*time.Second, "worker reaches "+string(tt.want), func() bool {
				ws, err = c.Workers(ctx, key, e.ID)
				return err == nil && len(ws) == 1 && ws[0].Status == tt.want
			})
			if ws[0].GPUTypeID != tt.wantCard {
				t.Errorf("worker on %q, want %q", ws[0].GPUTypeID, tt.wantCard)
			}
			if tt.want != runpod.WorkerThrottled && (ws[0].StartedAt.IsZero() || ws[0].GPUCount != 1 || ws[0].Image != "visgate/inference:1") {
				t.Errorf("placed worker lacks details: %+v", ws[0])
			}
			if got := runpod.CountByStatus(ws)[tt.want]; got != 1 {
				t.Errorf("CountByStatus[%s] = %d", tt.want, got)
			}
		})
	}
}

func TestThrottledWorkerStartsAfterRestock(t *testing.T) {
	s, c := newSim(t)
	s.SetStockOut(runpodsim.AllPools)
	ctx, key := testCtx(t), secret.New(testKey)
	e, err := c.CreateEndpoint(ctx, key, spec("dep_restock"))
	if err != nil {
		t.Fatal(err)
	}
	// No capacity: the worker is throttled from its creation, and only a
	// restock (below) moves it.
	if got := workerStatuses(t, c, e.ID); !cmp.Equal(got, []runpod.WorkerStatus{runpod.WorkerThrottled}) {
		t.Fatalf("during the stock-out: %v", got)
	}
	s.SetStockOut()
	wait.Until(t, 3*time.Second, "worker idle after restock", func() bool {
		return cmp.Equal(workerStatuses(t, c, e.ID), []runpod.WorkerStatus{runpod.WorkerIdle})
	})
}

func TestGPUTypes(t *testing.T) {
	_, c := newSim(t)
	types, err := c.GPUTypes(testCtx(t), secret.New(testKey))
	if err != nil {
		t.Fatal(err)
	}
	var a40 *runpod.GPUType
	for i := range types {
		if types[i].ID == "NVIDIA A40" {
			a40 = &types[i]
		}
	}
	want := &runpod.GPUType{ID: "NVIDIA A40", Name: "A40", Pool: "AMPERE_48", Manufacturer: "NVIDIA", MemoryGB: 48, PricePerHour: 1.22}
	if diff := cmp.Diff(want, a40); diff != "" {
		t.Errorf("A40 (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name          string
		key           string
		setup         func(*runpodsim.Server)
		spec          func(runpod.EndpointSpec) runpod.EndpointSpec
		wantStatus    int
		wantRetry     bool
		wantAfter     time.Duration
		wantInMessage []string
	}{
		{
			name: "unknown key", key: "rpa_WRONGKEY_abcdef",
			wantStatus: 401, wantInMessage: []string{"RunPod rejected the API key (401)", "invalid API key"},
		},
		{
			name:       "insufficient balance",
			setup:      func(s *runpodsim.Server) { s.AddAccount(testKey, 0) },
			wantStatus: 402, wantInMessage: []string{"balance is insufficient (402)", "insufficient balance"},
		},
		{
			name:       "contract violation",
			setup:      func(s *runpodsim.Server) { s.FailNextCreate(422, "$.gpu.count: must be >= 1") },
			wantStatus: 422, wantInMessage: []string{"invalid (422)", "$.gpu.count: must be >= 1"},
		},
		{
			name:       "unknown pool",
			spec:       func(s runpod.EndpointSpec) runpod.EndpointSpec { s.Pools = []string{"AMPERE_47"}; return s },
			wantStatus: 400, wantInMessage: []string{"refused the request (400)", `unknown GPU pool "AMPERE_47"`},
		},
		{
			name:       "forbidden",
			setup:      func(s *runpodsim.Server) { s.FailNextCreate(403, "access denied") },
			wantStatus: 403, wantInMessage: []string{"not allowed", "access denied"},
		},
		{
			name:       "rate limited",
			setup:      func(s *runpodsim.Server) { s.FailNext(1, 429, 7*time.Second) },
			wantStatus: 429, wantRetry: true, wantAfter: 7 * time.Second,
			wantInMessage: []string{"rate limiting", "retry after 7s"},
		},
		{
			name:       "server error",
			setup:      func(s *runpodsim.Server) { s.FailNext(1, 503, 0) },
			wantStatus: 503, wantRetry: true, wantInMessage: []string{"temporarily unavailable (503)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newSim(t)
			if tt.setup != nil {
				tt.setup(s)
			}
			key := testKey
			if tt.key != "" {
				key = tt.key
			}
			sp := spec("dep_err")
			if tt.spec != nil {
				sp = tt.spec(sp)
			}
			_, err := c.CreateEndpoint(testCtx(t), secret.New(key), sp)
			var rerr *runpod.Error
			if !errors.As(err, &rerr) {
				t.Fatalf("CreateEndpoint error = %v, want *runpod.Error", err)
			}
			if rerr.Status != tt.wantStatus || !runpod.IsStatus(err, tt.wantStatus) {
				t.Errorf("status %d, want %d", rerr.Status, tt.wantStatus)
			}
			retry, after := runpod.Retryable(err)
			if retry != tt.wantRetry || after != tt.wantAfter || rerr.Retryable() != tt.wantRetry {
				t.Errorf("Retryable = %v, %v; want %v, %v", retry, after, tt.wantRetry, tt.wantAfter)
			}
			for _, part := range tt.wantInMessage {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("message %q lacks %q", err, part)
				}
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("message %q carries the API key", err)
			}
			if eps := s.Endpoints(testKey); len(eps) != 0 {
				t.Errorf("a failed create left endpoints: %+v", eps)
			}
		})
	}
}

func TestRateLimitForTheNextCalls(t *testing.T) {
	s, c := newSim(t)
	s.FailNext(2, http.StatusTooManyRequests, time.Second)
	ctx, key := testCtx(t), secret.New(testKey)
	for i := range 2 {
		_, err := c.ListEndpoints(ctx, key)
		if retry, after := runpod.Retryable(err); !retry || after != time.Second {
			t.Fatalf("call %d: %v (retryable %v after %v)", i, err, retry, after)
		}
	}
	if _, err := c.ListEndpoints(ctx, key); err != nil {
		t.Fatalf("third call: %v", err)
	}
	if n := s.Calls()[runpodsim.OpListEndpoints]; n != 3 {
		t.Errorf("listEndpoints calls = %d, want 3", n)
	}
}

func TestRefusedBeforeAnyCall(t *testing.T) {
	s, c := newSim(t)
	ctx := testCtx(t)
	tests := []struct {
		name string
		call func() error
	}{
		{"empty key", func() error {
			_, err := c.ListEndpoints(ctx, secret.New(""))
			if !errors.Is(err, runpod.ErrNoKey) {
				t.Errorf("empty key: %v, want ErrNoKey", err)
			}
			return err
		}},
		{"no image", func() error {
			sp := spec("x")
			sp.Image = ""
			_, err := c.CreateEndpoint(ctx, secret.New(testKey), sp)
			return err
		}},
		{"no pools", func() error {
			sp := spec("x")
			sp.Pools = nil
			_, err := c.CreateEndpoint(ctx, secret.New(testKey), sp)
			return err
		}},
		{"min above max", func() error {
			sp := spec("x")
			sp.WorkersMin = 3
			_, err := c.CreateEndpoint(ctx, secret.New(testKey), sp)
			return err
		}},
		{"no endpoint id", func() error { _, err := c.GetEndpoint(ctx, secret.New(testKey), ""); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("no error")
			}
			if retry, _ := runpod.Retryable(err); retry {
				t.Errorf("%v is retryable", err)
			}
		})
	}
	if calls := s.Calls(); len(calls) != 0 {
		t.Errorf("requests were sent: %v", calls)
	}
}

func TestTransportErrorsAreRetryable(t *testing.T) {
	s := runpodsim.New()
	url := s.URL
	s.Close()
	c := runpod.NewClient(url, &http.Client{Timeout: 2 * time.Second})
	_, err := c.ListEndpoints(testCtx(t), secret.New(testKey))
	var te *runpod.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v, want *TransportError", err)
	}
	if retry, after := runpod.Retryable(err); !retry || after != 0 {
		t.Errorf("Retryable = %v, %v", retry, after)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("message %q carries the key", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.ListEndpoints(ctx, secret.New(testKey))
	if retry, _ := runpod.Retryable(err); retry || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v, retryable %v", err, retry)
	}
}

func TestSlowRunPodIsRetryable(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := runpod.NewClient(srv.URL+"/v2", srv.Client()).ListEndpoints(ctx, secret.New(testKey))
	if retry, _ := runpod.Retryable(err); !retry || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline exceeded: %v, retryable %v", err, retry)
	}
}

// The tests below check the client against the openapi document directly,
// with hand-written answers, independently of the simulator.

func TestCreateRequestMatchesTheContract(t *testing.T) {
	var gotBody map[string]any
	var gotAuth, gotType, gotMethod, gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotType, gotMethod, gotPath = r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.Method, r.URL.Path
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &gotBody)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"4m7x2k9q","name":"n","workers":{"min":0,"max":1},"createdAt":"2026-06-01T12:00:00Z"}`)
	}))
	defer srv.Close()
	c := runpod.NewClient(srv.URL+"/v2/", srv.Client())
	sp := runpod.EndpointSpec{Name: "n", Image: "img", Pools: []string{"ADA_24"}}
	if _, err := c.CreateEndpoint(testCtx(t), secret.New(testKey), sp); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "n", "type": "QUEUE", "image": "img",
		"gpu":       map[string]any{"pools": []any{"ADA_24"}, "count": 1.0},
		"workers":   map[string]any{"min": 0.0},
		"scaling":   map[string]any{"type": "QUEUE_DELAY", "queueDelay": 4.0},
		"flashboot": "OFF",
	}
	if diff := cmp.Diff(want, gotBody); diff != "" {
		t.Errorf("create body (-want +got):\n%s", diff)
	}
	if gotAuth != "Bearer "+testKey || gotType != "application/json" || gotMethod != "POST" || gotPath != "/v2/serverless" {
		t.Errorf("request: %s %s, Authorization %q, Content-Type %q", gotMethod, gotPath, gotAuth, gotType)
	}
}

// The CUDA floor and the env go where CreateEndpointGpuConfig and
// ContainerConfig put them: gpu.minCudaVersion as "major.minor", never
// beside a non-empty allowedCudaVersions; env values are strings.
func TestCreateRequestCarriesCudaFloorAndEnv(t *testing.T) {
	var gotBody map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &gotBody)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"4m7x2k9q","name":"n","workers":{"min":0,"max":1},"createdAt":"2026-06-01T12:00:00Z"}`)
	}))
	defer srv.Close()
	c := runpod.NewClient(srv.URL+"/v2/", srv.Client())
	sp := runpod.EndpointSpec{Name: "n", Image: "img", Pools: []string{"ADA_24"}, MinCudaVersion: "13.0",
		Env: map[string]string{"RUNPOD_INIT_TIMEOUT": "2205", "MODEL_NAME": "m"}}
	if _, err := c.CreateEndpoint(testCtx(t), secret.New(testKey), sp); err != nil {
		t.Fatal(err)
	}
	wantGPU := map[string]any{"pools": []any{"ADA_24"}, "count": 1.0, "minCudaVersion": "13.0"}
	if diff := cmp.Diff(wantGPU, gotBody["gpu"]); diff != "" {
		t.Errorf("gpu (-want +got):\n%s", diff)
	}
	wantEnv := map[string]any{"RUNPOD_INIT_TIMEOUT": "2205", "MODEL_NAME": "m"}
	if diff := cmp.Diff(wantEnv, gotBody["env"]); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
}

func TestDecodesTheOpenAPIExamples(t *testing.T) {
	// Bodies from the openapi examples (getEndpoint, load-balancing; and
	// listEndpointWorkers with a placed and an unplaced worker).
	const endpoint = `{"id":"4m7x2k9q","name":"image-generator","type":"LOAD_BALANCER",
	  "requestUrls":{"base":"https://4m7x2k9q.api.runpod.ai","health":"https://4m7x2k9q.api.runpod.ai/ping"},
	  "image":"runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404","args":"","disk":20,"ports":["8000/http"],
	  "env":{"MODEL_NAME":"sdxl"},"registry":null,
	  "gpu":{"pools":["ADA_24"],"count":1,"allowedCudaVersions":[],"minCudaVersion":null},
	  "workers":{"min":0,"max":5,"idleTimeout":5},"scaling":{"type":"REQUEST_COUNT","requestCount":4},
	  "dataCenterIds":["US-KS-2"],"networkVolumes":["2q9m7x4c"],"timeout":300000,"flashboot":"OFF",
	  "createdAt":"2026-06-01T12:00:00Z"}`
	const workers = `{"endpointVersion":4,
	  "summary":{"running":1,"idle":0,"initializing":0,"throttled":1,"unhealthy":0,"total":2},
	  "workers":[{"id":"8g3n5t6r","status":"RUNNING","isStale":false,"version":4,"gpuCount":1,
	    "image":"runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404","uptimeSeconds":3600,
	    "gpuTypeId":"NVIDIA GeForce RTX 4090","dataCenterId":"US-KS-2","startedAt":"2026-06-01T12:05:00Z"},
	    {"id":"9h4p6u7s","status":"THROTTLED","isStale":true,"version":null,"gpuCount":0,"image":null,
	    "uptimeSeconds":null,"gpuTypeId":null,"dataCenterId":null,"startedAt":null}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v2/serverless/4m7x2k9q":
			_, _ = io.WriteString(w, endpoint)
		case "/v2/serverless/4m7x2k9q/workers":
			_, _ = io.WriteString(w, workers)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := runpod.NewClient(srv.URL+"/v2", srv.Client())
	ctx, key := testCtx(t), secret.New(testKey)

	e, err := c.GetEndpoint(ctx, key, "4m7x2k9q")
	if err != nil {
		t.Fatal(err)
	}
	wantE := &runpod.Endpoint{
		ID: "4m7x2k9q", Name: "image-generator", Type: "LOAD_BALANCER",
		Image: "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404", Env: map[string]string{"MODEL_NAME": "sdxl"},
		Pools: []string{"ADA_24"}, GPUCount: 1, WorkersMax: 5, IdleTimeout: 5,
		URL: "https://4m7x2k9q.api.runpod.ai", Flashboot: "OFF", ExecutionTimeoutMs: 300000, ContainerDiskGB: 20,
		CreatedAt: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC),
	}
	if diff := cmp.Diff(wantE, e); diff != "" {
		t.Errorf("endpoint (-want +got):\n%s", diff)
	}

	ws, err := c.Workers(ctx, key, "4m7x2k9q")
	if err != nil {
		t.Fatal(err)
	}
	wantW := []runpod.Worker{
		{ID: "8g3n5t6r", Status: runpod.WorkerRunning, GPUCount: 1, GPUTypeID: "NVIDIA GeForce RTX 4090",
			DataCenterID: "US-KS-2", Image: "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404", UptimeSeconds: 3600,
			StartedAt: time.Date(2026, 6, 1, 12, 5, 0, 0, time.UTC)},
		{ID: "9h4p6u7s", Status: runpod.WorkerThrottled, IsStale: true},
	}
	if diff := cmp.Diff(wantW, ws); diff != "" {
		t.Errorf("workers (-want +got):\n%s", diff)
	}
	if !ws[0].Status.Ready() || ws[1].Status.Ready() {
		t.Error("Ready: RUNNING is ready, THROTTLED is not")
	}
}

func TestErrorBodies(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		header      map[string]string
		body        string
		want        runpod.Error
		wantMessage string
	}{
		{
			name: "problem json with validation errors", status: 422,
			body: `{"title":"Unprocessable Entity","status":422,"detail":"Request validation failed.","errors":["$: additional properties 'bogus' not allowed"]}`,
			want: runpod.Error{Status: 422, Title: "Unprocessable Entity", Detail: "Request validation failed.",
				Errors: []string{"$: additional properties 'bogus' not allowed"}},
			wantMessage: "RunPod rejected the request as invalid (422): Request validation failed. ($: additional properties 'bogus' not allowed)",
		},
		{
			name: "a proxy's HTML page is not repeated", status: 502,
			body:        "<html><body>upstream connect error</body></html>",
			want:        runpod.Error{Status: 502, Title: "Bad Gateway"},
			wantMessage: "RunPod is temporarily unavailable (502): Bad Gateway",
		},
		{
			name: "the key echoed back is scrubbed", status: 401,
			body:        fmt.Sprintf(`{"title":"Unauthorized","status":401,"detail":"key %s is revoked"}`, testKey),
			want:        runpod.Error{Status: 401, Title: "Unauthorized", Detail: "key [REDACTED] is revoked"},
			wantMessage: "RunPod rejected the API key (401): key [REDACTED] is revoked",
		},
		{
			name: "Retry-After as an HTTP date", status: 503,
			header:      map[string]string{"Retry-After": time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)},
			body:        `{"title":"Service Unavailable","status":503,"detail":"maintenance"}`,
			want:        runpod.Error{Status: 503, Title: "Service Unavailable", Detail: "maintenance", RetryAfter: 90 * time.Second},
			wantMessage: "RunPod is temporarily unavailable (503): maintenance; retry after",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			_, err := runpod.NewClient(srv.URL+"/v2", srv.Client()).ListEndpoints(testCtx(t), secret.New(testKey))
			var got *runpod.Error
			if !errors.As(err, &got) {
				t.Fatalf("error = %v", err)
			}
			// An HTTP-date Retry-After loses sub-second precision.
			if got.RetryAfter > 0 && (got.RetryAfter < tt.want.RetryAfter-2*time.Second || got.RetryAfter > tt.want.RetryAfter) {
				t.Errorf("RetryAfter = %v, want about %v", got.RetryAfter, tt.want.RetryAfter)
			}
			if diff := cmp.Diff(tt.want, *got, cmpopts.IgnoreFields(runpod.Error{}, "RetryAfter")); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(got.Error(), tt.wantMessage) {
				t.Errorf("message %q, want prefix %q", got.Error(), tt.wantMessage)
			}
		})
	}
}
