package cloudtasks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/queue/queuetest"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

const testQueuePath = "projects/demo-project/locations/us-central1/queues/provision"

func TestTaskID(t *testing.T) {
	long := strings.Repeat("a", MaxTaskIDLength)
	tests := []struct {
		name string
		in   string
		// want is the exact id; empty means only the invariants are checked
		// along with wantPrefix.
		want       string
		wantPrefix string
	}{
		{name: "valid", in: "dep_2026_0a1b2c3d-select_gpu-2", want: "dep_2026_0a1b2c3d-select_gpu-2"},
		{name: "longest valid", in: long, want: long},
		{name: "dots and slashes", in: "dep.1/watch-3", wantPrefix: "dep_1_watch-3-"},
		{name: "non-ASCII", in: "dép-watch-0", wantPrefix: "d_p-watch-0-"},
		{name: "too long", in: long + "b", wantPrefix: strings.Repeat("a", MaxTaskIDLength-17) + "-"},
		{name: "empty", in: "", wantPrefix: "-"},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := TaskID(tc.in)
			if tc.want != "" && got != tc.want {
				t.Errorf("TaskID(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if !strings.HasPrefix(got, tc.wantPrefix) {
				t.Errorf("TaskID(%q) = %q, want prefix %q", tc.in, got, tc.wantPrefix)
			}
			if len(got) == 0 || len(got) > MaxTaskIDLength || strings.ContainsFunc(got, invalidIDRune) {
				t.Errorf("TaskID(%q) = %q is not a valid Cloud Tasks id", tc.in, got)
			}
			if got2 := TaskID(tc.in); got2 != got {
				t.Errorf("TaskID(%q) not deterministic: %q then %q", tc.in, got, got2)
			}
			if other, ok := seen[got]; ok {
				t.Errorf("TaskID(%q) = TaskID(%q) = %q", tc.in, other, got)
			}
			seen[got] = tc.in
		})
	}
	// Names that differ only in invalid characters stay distinct.
	if a, b := TaskID("dep.1-watch-0"), TaskID("dep/1-watch-0"); a == b {
		t.Errorf("TaskID collides: %q", a)
	}
}

func TestCreateTaskRequest(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	const target = "https://provision-abc-uc.a.run.app"
	task := queue.Task{DeploymentID: "dep_2026_0a1b2c3d", Step: "watch", Seq: 4}
	body := []byte(`{"deployment_id":"dep_2026_0a1b2c3d","step":"watch","seq":4}`)
	name := testQueuePath + "/tasks/dep_2026_0a1b2c3d-watch-4"
	httpReq := func(auth *cloudtaskspb.OidcToken) *cloudtaskspb.Task_HttpRequest {
		r := &cloudtaskspb.HttpRequest{
			Url:        target,
			HttpMethod: cloudtaskspb.HttpMethod_POST,
			Headers:    map[string]string{"Content-Type": "application/json"},
			Body:       body,
		}
		if auth != nil {
			r.AuthorizationHeader = &cloudtaskspb.HttpRequest_OidcToken{OidcToken: auth}
		}
		return &cloudtaskspb.Task_HttpRequest{HttpRequest: r}
	}

	tests := []struct {
		name string
		cfg  Config
		task queue.Task
		want *cloudtaskspb.Task
	}{
		{
			name: "plain",
			cfg:  Config{QueuePath: testQueuePath, TargetURL: target},
			task: task,
			want: &cloudtaskspb.Task{Name: name, MessageType: httpReq(nil)},
		},
		{
			name: "delayed",
			cfg:  Config{QueuePath: testQueuePath, TargetURL: target},
			task: queue.Task{DeploymentID: task.DeploymentID, Step: task.Step, Seq: task.Seq, Delay: 90 * time.Second},
			want: &cloudtaskspb.Task{Name: name, MessageType: httpReq(nil), ScheduleTime: timestamppb.New(now.Add(90 * time.Second))},
		},
		{
			name: "OIDC with the target as audience",
			cfg:  Config{QueuePath: testQueuePath, TargetURL: target, ServiceAccountEmail: "tasks@demo-project.iam.gserviceaccount.com"},
			task: task,
			want: &cloudtaskspb.Task{Name: name, MessageType: httpReq(&cloudtaskspb.OidcToken{
				ServiceAccountEmail: "tasks@demo-project.iam.gserviceaccount.com", Audience: target,
			})},
		},
		{
			name: "OIDC with an audience and a dispatch deadline",
			cfg: Config{QueuePath: testQueuePath, TargetURL: target, ServiceAccountEmail: "tasks@demo-project.iam.gserviceaccount.com",
				Audience: "https://provision", DispatchDeadline: 5 * time.Minute},
			task: task,
			want: &cloudtaskspb.Task{Name: name, DispatchDeadline: durationpb.New(5 * time.Minute), MessageType: httpReq(&cloudtaskspb.OidcToken{
				ServiceAccountEmail: "tasks@demo-project.iam.gserviceaccount.com", Audience: "https://provision",
			})},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &Queue{cfg: tc.cfg, now: func() time.Time { return now }}
			got, err := q.createTaskRequest(tc.task)
			if err != nil {
				t.Fatal(err)
			}
			want := &cloudtaskspb.CreateTaskRequest{Parent: testQueuePath, Task: tc.want}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	const target = "https://provision.example"
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "valid", cfg: Config{QueuePath: testQueuePath, TargetURL: target}},
		{name: "valid with deadline", cfg: Config{QueuePath: testQueuePath, TargetURL: "http://127.0.0.1:8080/", DispatchDeadline: 15 * time.Second}},
		{name: "no queue", cfg: Config{TargetURL: target}, wantErr: "queue path"},
		{name: "queue without project", cfg: Config{QueuePath: "locations/l/queues/q", TargetURL: target}, wantErr: "queue path"},
		{name: "queue with task", cfg: Config{QueuePath: testQueuePath + "/tasks/x", TargetURL: target}, wantErr: "queue path"},
		{name: "no target", cfg: Config{QueuePath: testQueuePath}, wantErr: "target URL"},
		{name: "relative target", cfg: Config{QueuePath: testQueuePath, TargetURL: "/provision"}, wantErr: "target URL"},
		{name: "ftp target", cfg: Config{QueuePath: testQueuePath, TargetURL: "ftp://host/x"}, wantErr: "target URL"},
		{name: "short deadline", cfg: Config{QueuePath: testQueuePath, TargetURL: target, DispatchDeadline: time.Second}, wantErr: "dispatch deadline"},
		{name: "long deadline", cfg: Config{QueuePath: testQueuePath, TargetURL: target, DispatchDeadline: time.Hour}, wantErr: "dispatch deadline"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Nothing listens there: the client connects lazily.
			q, err := New(t.Context(), tc.cfg, NewEmulatorClientOptions("127.0.0.1:1")...)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if err := q.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				return
			}
			if err == nil {
				q.Close()
				t.Fatalf("New succeeded, want an error about %s", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New error %q, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

// emulatorAddr returns the emulator's address, or skips the test when none
// is running (fails it when REQUIRE_EMULATORS=1).
func emulatorAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("CLOUD_TASKS_EMULATOR_HOST")
	if addr != "" {
		return addr
	}
	const msg = "CLOUD_TASKS_EMULATOR_HOST is not set; `make test` starts the Cloud Tasks emulator (built from tools/go.mod); by hand: eval \"$(scripts/cloudtasks-emulator.sh start)\""
	if os.Getenv("REQUIRE_EMULATORS") == "1" {
		t.Fatal(msg + " (REQUIRE_EMULATORS=1)")
	}
	t.Skip(msg)
	return ""
}

// newEmulatorQueue creates a fresh queue on the emulator, with quick retries,
// deleted when the test ends, and returns its path.
func newEmulatorQueue(t *testing.T, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	admin, err := cloudtasks.NewClient(ctx, NewEmulatorClientOptions(addr)...)
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	const parent = "projects/demo-project/locations/us-central1"
	path := parent + "/queues/queuetest-" + strings.ToLower(rand.Text())
	_, err = admin.CreateQueue(ctx, &cloudtaskspb.CreateQueueRequest{
		Parent: parent,
		Queue: &cloudtaskspb.Queue{
			Name: path,
			RetryConfig: &cloudtaskspb.RetryConfig{
				MaxAttempts:  10,
				MinBackoff:   durationpb.New(50 * time.Millisecond),
				MaxBackoff:   durationpb.New(500 * time.Millisecond),
				MaxDoublings: 4,
			},
		},
	})
	if err != nil {
		t.Fatalf("create queue %s on the emulator at %s: %v", path, addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := admin.DeleteQueue(ctx, &cloudtaskspb.DeleteQueueRequest{Name: path}); err != nil {
			t.Errorf("delete queue %s: %v", path, err)
		}
	})
	return path
}

// openEmulatorQueue serves target on loopback and returns a Queue whose tasks
// the emulator delivers to it.
func openEmulatorQueue(t *testing.T, target http.Handler, cfg Config) *Queue {
	t.Helper()
	addr := emulatorAddr(t)
	srv := httptest.NewServer(target) // registered first, so closed last
	t.Cleanup(srv.Close)
	cfg.QueuePath = newEmulatorQueue(t, addr)
	cfg.TargetURL = srv.URL + "/ProvisionTask"
	q, err := New(t.Context(), cfg, NewEmulatorClientOptions(addr)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return q
}

func TestConformanceWithEmulator(t *testing.T) {
	emulatorAddr(t)
	idle := func(ctx context.Context, q queue.Queue) (bool, error) {
		names, err := listTasks(ctx, q.(*Queue))
		return len(names) == 0, err
	}
	queuetest.Run(t, queuetest.Options{Idle: idle}, func(t *testing.T, h queue.Handler) queue.Queue {
		logger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
		return openEmulatorQueue(t, Handler(h, logger), Config{})
	})
}

// listTasks returns the names of the tasks that q's Cloud Tasks queue lists:
// those not yet answered 2xx (waiting, being dispatched, or due for a retry;
// TestEmulatorListsTasksUntilDone shows it). A created name that is already
// taken adds nothing.
//
// The emulator serialises a task while a dispatch may be updating it (its
// ListTasks reads the state without the task's lock), so a list taken during
// a dispatch can arrive garbled: the client cannot parse it. Such an answer
// says nothing, and listTasks asks again. It never reads as an empty list:
// every listed task's bytes start with its field tag, written before any of
// its changing content.
func listTasks(ctx context.Context, q *Queue) ([]string, error) {
	const tries = 10
	var err error
	for range tries {
		var names []string
		names, err = listTasksOnce(ctx, q)
		if !garbled(err) {
			return names, err
		}
	}
	return nil, fmt.Errorf("%w (garbled %d times)", err, tries)
}

func listTasksOnce(ctx context.Context, q *Queue) ([]string, error) {
	var names []string
	it := q.client.ListTasks(ctx, &cloudtaskspb.ListTasksRequest{Parent: q.cfg.QueuePath})
	for {
		task, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list tasks of %s: %w", q.cfg.QueuePath, err)
		}
		names = append(names, task.GetName())
	}
}

// garbled reports whether err is the client failing to parse the answer.
func garbled(err error) bool {
	return status.Code(err) == codes.Internal && strings.Contains(err.Error(), "failed to unmarshal")
}

// The conformance suite knows that nothing more will be delivered once the
// queue lists no task. That holds because the emulator, like Cloud Tasks,
// lists a task from its creation until its target answered 2xx: while it
// waits for its schedule time, while it is being delivered, between and
// during retries; and because a duplicate name creates nothing.
func TestEmulatorListsTasksUntilDone(t *testing.T) {
	emulatorAddr(t)
	type call struct {
		attempt string // X-CloudTasks-TaskRetryCount
		answer  chan int
	}
	calls := make(chan call)
	// done releases a delivery still held when the test ends, so that the
	// target's server can close.
	done := make(chan struct{})
	target := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := call{attempt: r.Header.Get(HeaderTaskRetryCount), answer: make(chan int, 1)}
		select {
		case calls <- c:
		case <-done:
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		select {
		case code := <-c.answer:
			w.WriteHeader(code)
		case <-done:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	q := openEmulatorQueue(t, target, Config{})
	t.Cleanup(func() { close(done) }) // runs before the server closes
	ctx := t.Context()
	task := queue.Task{DeploymentID: "dep_2026_0000115d", Step: deployment.StepWatch, Seq: 1}
	later := queue.Task{DeploymentID: task.DeploymentID, Step: deployment.StepWatch, Seq: 2, Delay: time.Hour}
	name, laterName := q.TaskName(task), q.TaskName(later)

	listed := func(want ...string) {
		t.Helper()
		got, err := listTasks(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b }), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("listed tasks (-want +got):\n%s", diff)
		}
	}
	next := func(wantAttempt string) call {
		t.Helper()
		select {
		case c := <-calls:
			if c.attempt != wantAttempt {
				t.Errorf("%s = %q, want %q", HeaderTaskRetryCount, c.attempt, wantAttempt)
			}
			return c
		case <-time.After(20 * time.Second):
			t.Fatalf("no delivery with %s %s within 20s", HeaderTaskRetryCount, wantAttempt)
			return call{}
		}
	}

	for _, tk := range []queue.Task{later, task} {
		if err := q.Enqueue(ctx, tk); err != nil {
			t.Fatalf("Enqueue %s: %v", tk.Name(), err)
		}
	}
	first := next("0")
	listed(name, laterName) // being delivered; not yet due
	first.answer <- http.StatusInternalServerError
	retry := next("1")
	listed(name, laterName) // being delivered again after a failure
	retry.answer <- http.StatusOK
	wait.Until(t, 20*time.Second, "the answered task to leave the list", func() bool {
		got, err := listTasks(ctx, q)
		return err == nil && len(got) == 1
	})
	listed(laterName)
	// The name of a finished task stays taken: enqueueing it again adds
	// nothing, so the queue owes nothing for it.
	if err := q.Enqueue(ctx, task); err != nil {
		t.Fatalf("Enqueue %s again: %v", task.Name(), err)
	}
	listed(laterName)
}

// testWriter sends log output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// seenRequest is what the target saw of one request from the emulator.
type seenRequest struct {
	Method      string
	Path        string
	ContentType string
	Body        map[string]any
	TaskName    string
	// Claims of the OIDC token, when there is one.
	Audience string
	Email    string
}

func TestEmulatorRequest(t *testing.T) {
	emulatorAddr(t)
	const email = "tasks@demo-project.iam.gserviceaccount.com"
	tests := []struct {
		name string
		cfg  Config
		// wantAudience is the token's audience; empty for no token. "target"
		// stands for the test server's URL.
		wantAudience string
	}{
		{name: "no token"},
		{name: "token for the target", cfg: Config{ServiceAccountEmail: email}, wantAudience: "target"},
		{name: "token for an audience", cfg: Config{ServiceAccountEmail: email, Audience: "https://provision.example"}, wantAudience: "https://provision.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu   sync.Mutex
				seen []seenRequest
			)
			got := make(chan struct{}, 1)
			target := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				raw, _ := io.ReadAll(r.Body)
				s := seenRequest{
					Method:      r.Method,
					Path:        r.URL.Path,
					ContentType: r.Header.Get("Content-Type"),
					TaskName:    r.Header.Get(HeaderTaskName),
				}
				if err := json.Unmarshal(raw, &s.Body); err != nil {
					t.Errorf("body %q: %v", raw, err)
				}
				if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
					s.Audience, s.Email = tokenClaims(t, token)
				}
				mu.Lock()
				seen = append(seen, s)
				mu.Unlock()
				select {
				case got <- struct{}{}:
				default:
				}
			})
			q := openEmulatorQueue(t, target, tc.cfg)
			task := queue.Task{DeploymentID: "dep_2026_0a1b2c3d", Step: "create_endpoint", Seq: 1}
			if err := q.Enqueue(t.Context(), task); err != nil {
				t.Fatalf("Enqueue: %v", err)
			}
			select {
			case <-got:
			case <-time.After(20 * time.Second):
				t.Fatal("the emulator delivered nothing within 20s")
			}
			want := seenRequest{
				Method:      http.MethodPost,
				Path:        "/ProvisionTask",
				ContentType: "application/json",
				Body:        map[string]any{"deployment_id": "dep_2026_0a1b2c3d", "step": "create_endpoint", "seq": float64(1)},
				TaskName:    TaskID(task.Name()),
				Audience:    tc.wantAudience,
			}
			if tc.wantAudience == "target" {
				want.Audience = q.cfg.TargetURL
			}
			if tc.wantAudience != "" {
				want.Email = email
			}
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff([]seenRequest{want}, seen); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

// tokenClaims reads aud and email from a JWT without checking its signature
// (the emulator signs with a published key).
func tokenClaims(t *testing.T, token string) (aud, email string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Errorf("token %q is not a JWT", token)
		return "", ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Errorf("token payload: %v", err)
		return "", ""
	}
	var claims struct {
		Aud   string `json:"aud"`
		Email string `json:"email"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Errorf("token claims %s: %v", payload, err)
	}
	return claims.Aud, claims.Email
}

func TestEmulatorEnqueueErrors(t *testing.T) {
	addr := emulatorAddr(t)
	cfg := Config{
		QueuePath: "projects/demo-project/locations/us-central1/queues/missing-" + strings.ToLower(rand.Text()),
		TargetURL: "http://127.0.0.1:1/",
	}
	q, err := New(t.Context(), cfg, NewEmulatorClientOptions(addr)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer q.Close()
	err = q.Enqueue(t.Context(), queue.Task{DeploymentID: "d", Step: "s"})
	if got := status.Code(err); got != codes.NotFound {
		t.Errorf("Enqueue to a missing queue: %v (code %v), want code %v", err, got, codes.NotFound)
	}
	if err != nil && !strings.Contains(err.Error(), "d-s-0") {
		t.Errorf("error %q does not name the task", err)
	}
}
