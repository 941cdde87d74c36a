package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/syncbuf"
	"github.com/visgate/deployment-orchestrator/shared/wait"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

// The kill -9 crash test (issue 11): the real server binary, killed with
// SIGKILL at random moments (from a seed) while deployments are in flight,
// restarted on the same data, again and again; then every deployment
// finishes as it would without the kills: ready with one endpoint and its
// webhook delivered under one id (every receiver fails the first attempt,
// so each webhook's retry crosses restarts), or deleted with no endpoint
// left. RunPod and the Hub are simulators that outlive the processes, as
// the real ones do.
//
// make test runs a small one; CRASH_DEPLOYMENTS, CRASH_KILLS and
// CRASH_SEED make it larger (the issue's: CRASH_DEPLOYMENTS=50 CRASH_KILLS=10).
func TestKill9WithDeploymentsInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the server binary")
	}
	deployments, kills, seed := envInt(t, "CRASH_DEPLOYMENTS", 10), envInt(t, "CRASH_KILLS", 4), envInt(t, "CRASH_SEED", 1)
	rnd := rand.New(rand.NewPCG(uint64(seed), 9))
	bin := filepath.Join(t.TempDir(), "orchestrator")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	hub := hubsim.New()
	t.Cleanup(hub.Close)
	rp := runpodsim.New(runpodsim.WithAnyKey(), runpodsim.WithBootDelay(1500*time.Millisecond), runpodsim.WithCallbackInterval(200*time.Millisecond))
	t.Cleanup(rp.Close)
	hooks := newCrashHooks(t)

	const key = "crash-key-0123456789"
	port := freePort(t)
	dataDir := t.TempDir()
	env := append(os.Environ(),
		"PORT="+strconv.Itoa(port), "HOST=127.0.0.1", "DATA_DIR="+dataDir, "API_KEYS="+key,
		"RATE_LIMIT_PER_MINUTE=1000000", "WEBHOOK_ALLOW_PRIVATE=1", "HF_API_URL="+hub.URL, "RUNPOD_API_URL="+rp.URL,
		"POLL_INTERVAL=200ms", "LATE_CREATE_WINDOW=3s", "INFERENCE_IMAGE=example/inference:1",
		"LOG_LEVEL=warn", "SIMULATE=", "WEBHOOK_SIGNING_KEY=crash-signing-key-0123456789abcdef")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	logs := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	})

	var proc *exec.Cmd
	start := func() {
		proc = exec.Command(bin)
		proc.Env = env
		proc.Stdout, proc.Stderr = logs, logs
		if err := proc.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the server to answer /health", 30*time.Second, func() bool {
			resp, err := http.Get(base + "/health")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	kill := func() {
		if err := proc.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		_ = proc.Wait()
	}
	t.Cleanup(func() {
		if proc != nil && proc.ProcessState == nil {
			kill()
		}
	})

	api := func(method, path string, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil // the server is being killed
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	created := map[string]time.Time{}
	var ids []string
	deleted := map[string]bool{}
	createOne := func(i int) {
		body := fmt.Sprintf(`{"hf_model_id":"openai-community/gpt2","user_runpod_key":"rpa_crash_%d","user_webhook_url":%q}`, i%3, hooks.URL+"/hook")
		var code int
		var m map[string]any
		wait.Until(t, 10*time.Second, "a create accepted", func() bool {
			code, m = api("POST", "/v1/deployments", body)
			return code == http.StatusAccepted
		}, func() string { return fmt.Sprintf("last POST = %d %v", code, m) })
		id := m["deployment_id"].(string)
		ids = append(ids, id)
		created[id] = time.Now()
	}

	start()
	perRound := max(1, deployments/(kills+1))
	for round := 0; round <= kills; round++ {
		for i := 0; i < perRound && len(ids) < deployments; i++ {
			createOne(len(ids))
		}
		if round == kills {
			break
		}
		// A DELETE now and then, of a deployment still in flight.
		if len(ids) > 0 && rnd.Float64() < 0.5 {
			id := ids[rnd.IntN(len(ids))]
			if code, _ := api("DELETE", "/v1/deployments/"+id, ""); code == http.StatusNoContent {
				deleted[id] = true
			}
		}
		// Time is the point: the kill lands at a random moment of the
		// deployments' progress (from the seed), not after an event.
		time.Sleep(time.Duration(100+rnd.IntN(1400)) * time.Millisecond)
		kill()
		start()
	}
	for len(ids) < deployments {
		createOne(len(ids))
	}

	// Everything finishes after the last restart, within a bound: the
	// webhook's second attempt comes 5 s after the first.
	final := map[string]map[string]any{}
	readyAfter := map[string]time.Duration{}
	waitFor(t, "every deployment to finish", 90*time.Second, func() bool {
		for _, id := range ids {
			code, m := api("GET", "/v1/deployments/"+id, "")
			if code != http.StatusOK {
				return false
			}
			final[id] = m
			wh, _ := m["webhook"].(map[string]any)
			switch m["status"] {
			case "ready":
				if _, ok := readyAfter[id]; !ok {
					readyAfter[id] = time.Since(created[id])
				}
				if wh["delivered"] != true {
					return false
				}
			case "deleted":
				if len(endpointsFor(rp, id)) != 0 {
					return false
				}
			default:
				return false
			}
		}
		return true
	})

	worst := time.Duration(0)
	for _, id := range ids {
		m := final[id]
		eps := endpointsFor(rp, id)
		switch m["status"] {
		case "ready":
			if deleted[id] {
				t.Errorf("%s: ready, but it was deleted", id)
			}
			if len(eps) != 1 || eps[0] != m["runpod_endpoint_id"] {
				t.Errorf("%s: ready with endpoints %v, recorded %v", id, eps, m["runpod_endpoint_id"])
			}
			worst = max(worst, readyAfter[id])
		case "deleted":
			if !deleted[id] {
				t.Errorf("%s: deleted, but nobody deleted it", id)
			}
		}
		hooks.checkIDs(t, id)
	}
	// No endpoint of another deployment, none twice.
	for _, acct := range []string{"rpa_crash_0", "rpa_crash_1", "rpa_crash_2"} {
		for _, ep := range rp.Endpoints(acct) {
			if !slices.Contains(ids, ep.Env[workerenv.DeploymentID]) {
				t.Errorf("endpoint %s of unknown deployment %q", ep.ID, ep.Env[workerenv.DeploymentID])
			}
		}
	}
	t.Logf("%d deployments (%d deleted), %d kills: slowest ready %s after its POST", len(ids), len(deleted), kills, worst.Round(100*time.Millisecond))
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number", name, v)
	}
	return n
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func endpointsFor(rp *runpodsim.Server, id string) []any {
	var out []any
	for _, acct := range []string{"rpa_crash_0", "rpa_crash_1", "rpa_crash_2"} {
		for _, ep := range rp.Endpoints(acct) {
			if ep.Env[workerenv.DeploymentID] == id {
				out = append(out, ep.ID)
			}
		}
	}
	return out
}

// crashHooks fails the first webhook attempt of every deployment, then
// accepts; it records the webhook-id of every attempt.
type crashHooks struct {
	*httptest.Server
	mu  sync.Mutex
	ids map[string][]string
}

func newCrashHooks(t *testing.T) *crashHooks {
	h := &crashHooks{ids: map[string][]string{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev struct {
			Data struct {
				DeploymentID string `json:"deployment_id"`
			} `json:"data"`
		}
		_ = json.NewDecoder(bytes.NewReader(b)).Decode(&ev)
		h.mu.Lock()
		h.ids[ev.Data.DeploymentID] = append(h.ids[ev.Data.DeploymentID], r.Header.Get(webhook.HeaderID))
		n := len(h.ids[ev.Data.DeploymentID])
		h.mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

// checkIDs: every attempt of a deployment's webhook carries one id.
func (h *crashHooks) checkIDs(t *testing.T, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, got := range h.ids[id] {
		if got != h.ids[id][0] || !strings.HasPrefix(got, "msg_"+id+"_") {
			t.Errorf("%s: webhook attempt %d has id %q (first %q)", id, i+1, got, h.ids[id][0])
		}
	}
}
