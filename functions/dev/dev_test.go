package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/protobuf/types/known/durationpb"

	orchestrator "github.com/visgate/deployment-orchestrator"
	qct "github.com/visgate/deployment-orchestrator/shared/queue/cloudtasks"
	"github.com/visgate/deployment-orchestrator/shared/store/storetest"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

// freeRange finds a base port whose next len(EntryPoints) ports are free
// too. It looks below the kernel's ephemeral range (32768 and up here), so
// that no outgoing connection or ":0" listener of a test running beside
// this one takes a port between the check and the function's bind.
func freeRange(t *testing.T) int {
	n := len(orchestrator.EntryPoints())
	lo, hi := 10000, ephemeralLow(t)-n-1
	for try := 0; try < 50; try++ {
		base := lo + mrand.IntN(hi-lo)
		ok := true
		for p := base; p <= base+n; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default, 32768, where it cannot be read).
func ephemeralLow(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo < 12000 {
		return 32768 // too low to leave room below it: the default's bound
	}
	return lo
}

// TestDevStack runs `make dev`'s supervisor as a process: every function in
// its own functions-framework process on the emulators, the front door and
// the bridge. A deployment goes from POST to ready with its webhook, and
// SIGTERM stops every process it started.
func TestDevStack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts nine processes")
	}
	storetest.RequireEnv(t, "FIRESTORE_EMULATOR_HOST", storetest.HowToFirestore)
	tasksAddr := storetest.RequireEnv(t, "CLOUD_TASKS_EMULATOR_HOST", storetest.HowToCloudTasks)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	bin := filepath.Join(t.TempDir(), "dev")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	project := "demo-dev-" + strings.ToLower(rand.Text()[:8])
	const location = "europe-west1"
	admin, err := cloudtasks.NewClient(ctx, qct.NewEmulatorClientOptions(tasksAddr)...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	parent := "projects/" + project + "/locations/" + location
	if _, err := admin.CreateQueue(ctx, &cloudtaskspb.CreateQueueRequest{Parent: parent, Queue: &cloudtaskspb.Queue{
		Name:        parent + "/queues/provision",
		RetryConfig: &cloudtaskspb.RetryConfig{MaxAttempts: 20, MinBackoff: durationpb.New(100 * time.Millisecond), MaxBackoff: durationpb.New(time.Second)},
	}}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var hooks []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hooks = append(hooks, string(b))
		mu.Unlock()
	}))
	defer rcv.Close()

	port := freeRange(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "GCP_PROJECT_ID="+project, "GCP_LOCATION="+location,
		"TASKS_QUEUE=provision", "SIMULATE=1", "WEBHOOK_ALLOW_PRIVATE=1", "API_KEYS=dev-test-key-0123456789", "RATE_LIMIT_PER_MINUTE=100000",
		"DATA_DIR="+t.TempDir(), "POLL_INTERVAL=300ms")
	logs := &strings.Builder{}
	var logMu sync.Mutex
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) })
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	call := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer dev-test-key-0123456789")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	deadline, _ := ctx.Deadline()
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		wait.Until(t, time.Until(deadline), what, cond, func() string {
			logMu.Lock()
			defer logMu.Unlock()
			return "logs:\n" + logs.String()
		})
	}
	waitUntil("the front door", func() bool { code, _ := call("GET", "/health", ""); return code == 200 })
	if code, m := call("GET", "/readiness", ""); code != 200 || m["status"] != "ready" {
		t.Errorf("readiness = %d %v", code, m)
	}
	if code, m := call("GET", "/v1/deployments/dep_fake_123", ""); code != 404 || m["error"] != "DeploymentNotFoundError" {
		t.Errorf("404 through the front door = %d %v", code, m)
	}
	code, m := call("POST", "/v1/deployments", fmt.Sprintf(`{"hf_model_id":"stabilityai/sdxl-turbo","user_runpod_key":"rpa_dev","user_webhook_url":%q,"gpu_tier":"A40"}`, rcv.URL))
	if code != 202 {
		t.Fatalf("POST = %d %v", code, m)
	}
	id := m["deployment_id"].(string)
	// Delivered in the record: every attempt it counts reached the receiver.
	var hook map[string]any
	waitUntil("ready, the webhook delivered", func() bool {
		_, m := call("GET", "/v1/deployments/"+id, "")
		hook, _ = m["webhook"].(map[string]any)
		return m["status"] == "ready" && hook["delivered"] == true
	})
	mu.Lock()
	if len(hooks) != 1 || hook["attempts"] != 1.0 || !strings.Contains(hooks[0], `"type":"deployment.ready"`) {
		t.Errorf("webhook POSTs = %v in %v attempts", hooks, hook["attempts"])
	}
	mu.Unlock()

	// SIGTERM stops the supervisor and every function process.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Errorf("supervisor exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		ps, _ := exec.Command("ps", "-eo", "pid,ppid,stat,args").Output()
		var mine []string
		for _, l := range strings.Split(string(ps), "\n") {
			if strings.Contains(l, bin) {
				mine = append(mine, l)
			}
		}
		// SIGQUIT: the Go runtime writes every goroutine's stack and
		// exits; its exit (the output copied) says the dump is in logs.
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
			stopped = true
		case <-time.After(10 * time.Second):
		}
		logMu.Lock()
		tail := logs.String()
		if i := strings.Index(tail, "goroutine 1 "); i >= 0 {
			tail = tail[i:]
		}
		logMu.Unlock()
		if len(tail) > 3000 {
			tail = tail[:3000]
		}
		t.Fatalf("supervisor still running 20s after SIGTERM:\n%s\nlog tail:\n%s", strings.Join(mine, "\n"), tail)
	}
	for p := port; p <= port+len(orchestrator.EntryPoints()); p++ {
		wait.Until(t, 10*time.Second, fmt.Sprintf("port %d closed after the supervisor stopped", p), func() bool {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), 200*time.Millisecond)
			if err != nil {
				return true
			}
			c.Close()
			return false
		})
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
