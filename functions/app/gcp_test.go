package app

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	gfirestore "cloud.google.com/go/firestore"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/visgate/deployment-orchestrator/functions/dev/bridge"
	"github.com/visgate/deployment-orchestrator/functions/localsim"
	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	qct "github.com/visgate/deployment-orchestrator/shared/queue/cloudtasks"
	"github.com/visgate/deployment-orchestrator/shared/store/storetest"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

const gcpKey = "gcp-e2e-key-0123456789"

// gcpStack is the Google Cloud runtime on the emulators: the functions on
// one loopback server (public paths, the task target, the event target),
// Cloud Tasks delivering to it, and the bridge standing in for Eventarc.
type gcpStack struct {
	app  *App
	base string
	// triggerQueue is the queue of the trigger's notifier, which can lose tasks.
	triggerQueue *losingQueue
}

func startGCPStack(t *testing.T) *gcpStack {
	t.Helper()
	firestoreAddr := storetest.RequireEnv(t, "FIRESTORE_EMULATOR_HOST", storetest.HowToFirestore)
	tasksAddr := storetest.RequireEnv(t, "CLOUD_TASKS_EMULATOR_HOST", storetest.HowToCloudTasks)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	project := "demo-e2e-" + strings.ToLower(rand.Text()[:10])
	const location = "europe-west1"
	queueID := "provision-" + strings.ToLower(rand.Text()[:8])
	admin, err := cloudtasks.NewClient(ctx, qct.NewEmulatorClientOptions(tasksAddr)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	parent := "projects/" + project + "/locations/" + location
	if _, err := admin.CreateQueue(ctx, &cloudtaskspb.CreateQueueRequest{Parent: parent, Queue: &cloudtaskspb.Queue{
		Name: parent + "/queues/" + queueID,
		RetryConfig: &cloudtaskspb.RetryConfig{MaxAttempts: 20, MinBackoff: durationpb.New(100 * time.Millisecond),
			MaxBackoff: durationpb.New(time.Second), MaxDoublings: 3},
	}}); err != nil {
		t.Fatalf("create queue: %v", err)
	}

	var handler http.Handler = http.NotFoundHandler()
	var mu sync.RWMutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.RLock()
		h := handler
		mu.RUnlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	env := map[string]string{
		"BACKEND": "gcp", "GCP_PROJECT_ID": project, "GCP_LOCATION": location, "TASKS_QUEUE": queueID,
		"PROVISION_TASK_URL": srv.URL + "/_tasks", "PUBLIC_BASE_URL": srv.URL, "DATA_DIR": t.TempDir(),
		"WEBHOOK_ALLOW_PRIVATE": "1", "API_KEYS": gcpKey, "POLL_INTERVAL": "200ms",
		"RATE_LIMIT_PER_MINUTE":   "100000", // the tests poll
		"FIRESTORE_EMULATOR_HOST": firestoreAddr, "CLOUD_TASKS_EMULATOR_HOST": tasksAddr,
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	sims := localsim.Start(slog.New(slog.DiscardHandler), cfg)
	t.Cleanup(sims.Close)
	sims.Apply(cfg)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	a, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	lq := &losingQueue{Queue: a.Notifier.Queue, lost: make(chan queue.Task, 100)}
	a.Notifier.Queue = lq

	p, err := cloudevents.NewHTTP()
	if err != nil {
		t.Fatal(err)
	}
	events, err := cloudevents.NewHTTPReceiveHandler(ctx, p, a.DeploymentChanged)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/_tasks", a.TaskHandler())
	mux.Handle("/_events", events)
	mux.Handle("/", a.Handler())
	mu.Lock()
	handler = mux
	mu.Unlock()

	fs, err := gfirestore.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	listening := make(chan struct{})
	br := &bridge.Bridge{Client: fs, ProjectID: project, Collection: "deployments", Target: srv.URL + "/_events",
		HTTP: &http.Client{Timeout: 10 * time.Second}, Log: log, Listening: func() { close(listening) }}
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bridge: %v", err)
		}
	})
	select {
	case <-listening: // writes from now on reach DeploymentChanged
	case err := <-done:
		t.Fatalf("bridge: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the bridge never got its first snapshot")
	}
	return &gcpStack{app: a, base: srv.URL, triggerQueue: lq}
}

func (s *gcpStack) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+gcpKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func waitStatus(t *testing.T, s *gcpStack, id string, want deployment.Status, d time.Duration) map[string]any {
	t.Helper()
	var m map[string]any
	wait.Until(t, d, fmt.Sprintf("%s to be %s", id, want), func() bool {
		_, m = s.call(t, "GET", "/v1/deployments/"+id, "")
		if m["status"] == "failed" && want != deployment.StatusFailed {
			t.Fatalf("deployment %s failed: %v", id, m["error"])
		}
		return m["status"] == string(want)
	}, func() string { return fmt.Sprintf("last seen: %v", m) })
	return m
}

type hook struct {
	mu    sync.Mutex
	posts [][]byte
}

func newHook(t *testing.T) (*hook, string) {
	h := &hook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.posts = append(h.posts, b)
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL
}

func (h *hook) received() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.posts...)
}

func TestGCPStackLifecycle(t *testing.T) {
	s := startGCPStack(t)
	h, url := newHook(t)
	code, m := s.call(t, "POST", "/v1/deployments",
		fmt.Sprintf(`{"model_name":"veo3","provider":"fal","user_runpod_key":"rpa_gcp","user_webhook_url":%q}`, url))
	if code != 202 {
		t.Fatalf("POST = %d %v", code, m)
	}
	id := m["deployment_id"].(string)
	d := waitStatus(t, s, id, deployment.StatusReady, 60*time.Second)
	if d["runpod_endpoint_id"] == nil || d["model_id"] != "black-forest-labs/FLUX.1-schnell" {
		t.Errorf("ready deployment = %v", d)
	}
	// Delivered in the record: every attempt it counts reached the receiver.
	var hook map[string]any
	wait.Until(t, 30*time.Second, "the webhook delivered", func() bool {
		_, m := s.call(t, "GET", "/v1/deployments/"+id, "")
		hook, _ = m["webhook"].(map[string]any)
		return hook["delivered"] == true
	})
	posts := h.received()
	if len(posts) != 1 || hook["attempts"] != 1.0 {
		t.Fatalf("webhook got %d POSTs in %v attempts, want 1 in 1", len(posts), hook["attempts"])
	}
	var ev map[string]any
	_ = json.Unmarshal(posts[0], &ev)
	if ev["type"] != "deployment.ready" {
		t.Errorf("webhook = %s", posts[0])
	}
}

// losingQueue loses every task while losing is set, as a crash between a
// commit and its enqueue would, and tells lost about each.
type losingQueue struct {
	queue.Queue
	losing atomic.Bool
	lost   chan queue.Task
}

func (q *losingQueue) Enqueue(ctx context.Context, t queue.Task) error {
	if q.losing.Load() {
		q.lost <- t
		return nil
	}
	return q.Queue.Enqueue(ctx, t)
}

func TestReconcileFinishesALostTask(t *testing.T) {
	s := startGCPStack(t)
	lq := s.triggerQueue
	lq.losing.Store(true)
	code, m := s.call(t, "POST", "/v1/deployments",
		`{"hf_model_id":"stabilityai/sdxl-turbo","user_runpod_key":"rpa_gcp","user_webhook_url":"http://127.0.0.1:9/hook"}`)
	if code != 202 {
		t.Fatalf("POST = %d %v", code, m)
	}
	id := m["deployment_id"].(string)
	select {
	case task := <-lq.lost:
		if task.DeploymentID != id || task.Step != deployment.StepValidate {
			t.Fatalf("lost %s, want %s's validate step", task.Name(), id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the trigger never enqueued the new deployment's first step")
	}
	lq.losing.Store(false)
	if _, d := s.call(t, "GET", "/v1/deployments/"+id, ""); d["status"] != "validating" {
		t.Fatalf("without its task the deployment moved to %v", d["status"])
	}
	r := s.app.Reconciler()
	r.StuckAfter = 0
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if rep.Resumed != 1 {
		t.Errorf("report = %+v, want 1 resumed", rep)
	}
	waitStatus(t, s, id, deployment.StatusReady, 60*time.Second)
}
