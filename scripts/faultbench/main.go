// Command faultbench measures the five defects of issue 11, and those of
// issue 23 (-issue 23, issue23.go), against a server binary
// (functions/local), so that a build of main and a build of a fix can be
// compared with the same command:
//
//	go build -o /tmp/after ./functions/local
//	go run ./scripts/faultbench -bin /tmp/after -defect 2 -n 10
//	go run ./scripts/faultbench -bin /tmp/after -issue 23 -defect 1 -n 6
//
// RunPod and the Hugging Face Hub are the simulators, on loopback, outliving
// the server's processes; webhooks go to a receiver on loopback. It prints
// one line of counts per scenario.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
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
	"time"

	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/syncbuf"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

const (
	apiKey    = "faultbench-key-0123456789"
	runpodKey = "rpa_faultbench"
)

func main() {
	bin := flag.String("bin", "", "server binary (go build -o BIN ./functions/local)")
	issue := flag.Int("issue", 11, "the issue whose defects to measure: 11 or 23")
	defect := flag.Int("defect", 0, "which defect of the issue to measure (issue 11: 1-5; issue 23: 1-5)")
	n := flag.Int("n", 10, "deployments per scenario")
	full := flag.Duration("full", 5*time.Minute, "issue 23, defect 3: how long the disk stays full")
	flag.Parse()
	if *issue == 23 {
		resume := func(bin string, n int) error { return issue23Resume(bin, n, *full) }
		run := map[int]func(string, int) error{1: issue23Ready, 2: issue23Patch, 3: resume, 4: issue23Billing, 5: issue23DiskFull}[*defect]
		if *bin == "" || run == nil {
			fmt.Fprintln(os.Stderr, "usage: faultbench -bin PATH -issue 23 -defect 1..5 [-n 6] [-full 5m]")
			os.Exit(2)
		}
		if err := run(*bin, *n); err != nil {
			fmt.Fprintln(os.Stderr, "faultbench:", err)
			os.Exit(1)
		}
		return
	}
	if *bin == "" || *defect < 1 || *defect > 5 {
		fmt.Fprintln(os.Stderr, "usage: faultbench -bin PATH -defect 1..5 [-n 10]")
		os.Exit(2)
	}
	var err error
	switch *defect {
	case 1:
		err = defect1(*bin, *n)
	case 2:
		err = defect2(*bin, *n)
	case 3:
		err = defect3(*bin, *n)
	case 4:
		err = defect4(*bin, *n)
	case 5:
		err = defect5(*bin, *n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultbench:", err)
		os.Exit(1)
	}
}

// world is the simulators, the receiver and one data directory.
type world struct {
	bin  string
	hub  *hubsim.Server
	rp   *runpodsim.Server
	hook *httptest.Server
	port int
	dir  string
	env  []string
	logs *syncbuf.Buffer
	proc *exec.Cmd
	// exited is closed when proc has exited.
	exited chan struct{}

	mu       sync.Mutex
	attempts map[string]int // webhook requests per deployment
	failN    int            // fail the first failN attempts of each deployment
}

func newWorld(bin string, rpOpts ...runpodsim.Option) (*world, error) {
	w := &world{bin: bin, attempts: map[string]int{}, logs: &syncbuf.Buffer{}}
	w.hub = hubsim.New()
	w.rp = runpodsim.New(append([]runpodsim.Option{runpodsim.WithAnyKey()}, rpOpts...)...)
	w.hook = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var ev struct {
			Data struct {
				ID string `json:"deployment_id"`
			} `json:"data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		w.mu.Lock()
		w.attempts[ev.Data.ID]++
		fail := w.attempts[ev.Data.ID] <= w.failN
		w.mu.Unlock()
		if fail {
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	if w.dir, err = os.MkdirTemp("", "faultbench-"); err != nil {
		return nil, err
	}
	w.env = append(os.Environ(), "PORT="+strconv.Itoa(w.port), "HOST=127.0.0.1", "DATA_DIR="+w.dir, "API_KEYS="+apiKey,
		"RATE_LIMIT_PER_MINUTE=1000000", "WEBHOOK_ALLOW_PRIVATE=1", "HF_API_URL="+w.hub.URL, "RUNPOD_API_URL="+w.rp.URL,
		"POLL_INTERVAL=1s", "LATE_CREATE_WINDOW=20s", "INFERENCE_IMAGE=example/inference:1", "SIMULATE=", "LOG_LEVEL=info")
	return w, nil
}

func (w *world) close() {
	if w.proc != nil {
		w.kill(syscall.SIGKILL)
	}
	w.hook.Close()
	w.rp.Close()
	w.hub.Close()
	os.RemoveAll(w.dir)
}

func (w *world) base() string { return fmt.Sprintf("http://127.0.0.1:%d", w.port) }

// start runs the server and waits until /health answers.
func (w *world) start() error {
	w.proc = exec.Command(w.bin)
	w.proc.Env = w.env
	w.proc.Stdout, w.proc.Stderr = w.logs, w.logs
	if err := w.proc.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	w.exited = exited
	go func() { _ = w.proc.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("the server exited: %s", lastLines(w.logs.String(), 5))
		default:
		}
		if resp, err := http.Get(w.base() + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = w.proc.Process.Kill()
	<-exited
	return fmt.Errorf("the server did not answer /health within 30s")
}

func (w *world) kill(sig syscall.Signal) {
	_ = w.proc.Process.Signal(sig)
	select {
	case <-w.exited:
		return
	case <-time.After(30 * time.Second):
	}
	// Stuck on the way out: keep its goroutines for the report.
	_ = w.proc.Process.Signal(syscall.SIGQUIT)
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
		_ = w.proc.Process.Kill()
		<-w.exited
	}
	dump := filepath.Join(os.TempDir(), fmt.Sprintf("faultbench-stuck-%d.log", w.proc.Process.Pid))
	_ = os.WriteFile(dump, []byte(w.logs.String()), 0o600)
	fmt.Fprintf(os.Stderr, "faultbench: the server did not exit within 30 s of %s; its log and goroutines: %s\n", sig, dump)
}

// apiClient bounds every call: a server that never answers is a finding,
// not a reason to hang.
var apiClient = &http.Client{Timeout: 15 * time.Second}

func (w *world) call(method, path, body string) (int, map[string]any) {
	req, _ := http.NewRequest(method, w.base()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, nil // no answer (a dead or stuck server): the caller counts it
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func (w *world) create(n int) ([]string, error) {
	var ids []string
	for range n {
		code, m := w.call("POST", "/v1/deployments", fmt.Sprintf(
			`{"hf_model_id":"openai-community/gpt2","user_runpod_key":%q,"user_webhook_url":%q}`, runpodKey, w.hook.URL+"/hook"))
		if code != http.StatusAccepted {
			return nil, fmt.Errorf("POST = %d %v", code, m)
		}
		ids = append(ids, m["deployment_id"].(string))
	}
	return ids, nil
}

func (w *world) get(id string) map[string]any {
	_, m := w.call("GET", "/v1/deployments/"+id, "")
	return m
}

// waitAll polls until cond holds for every id, or the timeout.
func (w *world) waitAll(ids []string, timeout time.Duration, cond func(m map[string]any) bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ok := true
		for _, id := range ids {
			if m := w.get(id); m == nil || !cond(m) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func (w *world) endpoints(id string) []runpodsim.Endpoint {
	var out []runpodsim.Endpoint
	for _, ep := range w.rp.Endpoints(runpodKey) {
		if ep.Env[workerenv.DeploymentID] == id {
			out = append(out, ep)
		}
	}
	return out
}

func webhookOf(m map[string]any) map[string]any {
	wh, _ := m["webhook"].(map[string]any)
	return wh
}

func status(m map[string]any) string { s, _ := m["status"].(string); return s }

// Defect 1: the receiver fails twice, then the server is killed while the
// third attempt is scheduled; is it ever made?
func defect1(bin string, n int) error {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		w, err := newWorld(bin, runpodsim.WithBootDelay(time.Second), runpodsim.WithCallbackInterval(100*time.Millisecond))
		if err != nil {
			return err
		}
		w.failN = 2
		if err := w.start(); err != nil {
			return err
		}
		ids, err := w.create(n)
		if err != nil {
			return err
		}
		if !w.waitAll(ids, 60*time.Second, func(m map[string]any) bool { return webhookOf(m)["attempts"] == 2.0 }) {
			return fmt.Errorf("the webhooks did not fail twice")
		}
		w.kill(sig)
		restart := time.Now()
		if err := w.start(); err != nil {
			return err
		}
		// The third attempt is due 30 s after the second.
		w.waitAll(ids, 60*time.Second, func(m map[string]any) bool {
			return webhookOf(m)["delivered"] == true || status(m) == "webhook_failed"
		})
		stranded := 0
		for _, id := range ids {
			if m := w.get(id); webhookOf(m)["delivered"] != true && status(m) != "webhook_failed" {
				stranded++
			}
		}
		fmt.Printf("defect 1 (%s after 2 failed attempts): %d of %d webhooks stranded %.0f s after the restart\n",
			sig, stranded, n, time.Since(restart).Seconds())
		w.close()
	}
	return nil
}

// Defect 2: every first create is made by RunPod 3 s after the connection
// dropped; without and with a DELETE in the meantime.
func defect2(bin string, n int) error {
	for _, withDelete := range []bool{false, true} {
		w, err := newWorld(bin, runpodsim.WithBootDelay(time.Second), runpodsim.WithCallbackInterval(100*time.Millisecond))
		if err != nil {
			return err
		}
		for range n {
			w.rp.CreateLate(0, 3*time.Second)
		}
		if err := w.start(); err != nil {
			return err
		}
		ids, err := w.create(n)
		if err != nil {
			return err
		}
		if withDelete {
			time.Sleep(time.Second)
			for _, id := range ids {
				w.call("DELETE", "/v1/deployments/"+id, "")
			}
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if waiting, _ := w.rp.LateCreates(); waiting == 0 {
				break
			}
		}
		// Time for a look after the late-create window (20 s here).
		want := 1
		if withDelete {
			want = 0
		}
		w.waitAll(ids, 60*time.Second, func(m map[string]any) bool {
			id := m["deployment_id"].(string)
			return len(w.endpoints(id)) == want && (withDelete || status(m) == "ready")
		})
		extra, two := 0, 0
		for _, id := range ids {
			k := len(w.endpoints(id))
			extra += max(0, k-want)
			if k >= 2 {
				two++
			}
		}
		what := "no DELETE"
		if withDelete {
			what = "DELETE during the hang"
		}
		fmt.Printf("defect 2 (late create, %s): %d endpoints left beyond the deployments' own; %d of %d deployments with 2 live endpoints\n",
			what, extra, two, n)
		w.close()
	}
	return nil
}

// Defect 3: RunPod answers 500 for 100 s while the endpoints of ready
// deployments are scaled and half of them are DELETEd.
func defect3(bin string, n int) error {
	w, err := newWorld(bin, runpodsim.WithBootDelay(2*time.Second), runpodsim.WithCallbackInterval(time.Second))
	if err != nil {
		return err
	}
	defer w.close()
	if err := w.start(); err != nil {
		return err
	}
	ids, err := w.create(n)
	if err != nil {
		return err
	}
	if !w.waitAll(ids, 60*time.Second, func(m map[string]any) bool { return m["runpod_endpoint_id"] != nil }) {
		return fmt.Errorf("no endpoints")
	}
	const outage = 100 * time.Second
	w.rp.FailFor(outage, http.StatusInternalServerError)
	start := time.Now()
	w.waitAll(ids, 30*time.Second, isReady)
	deleted := ids[:n/2]
	for _, id := range deleted {
		w.call("DELETE", "/v1/deployments/"+id, "")
	}
	time.Sleep(time.Until(start.Add(outage + 40*time.Second))) // RunPod is back for 40 s
	left, unscaled := 0, 0
	for _, id := range deleted {
		left += len(w.endpoints(id))
	}
	for _, id := range ids[n/2:] {
		for _, ep := range w.endpoints(id) {
			if ep.WorkersMin != 0 {
				unscaled++
			}
		}
	}
	logged := 0
	for _, id := range deleted {
		for _, l := range w.get(id)["logs"].([]any) {
			if strings.Contains(l.(map[string]any)["message"].(string), "retrying") {
				logged++
				break
			}
		}
	}
	fmt.Printf("defect 3 (RunPod 500 for %s): %d of %d deleted deployments' endpoints still live, %d of %d ready endpoints left at min 1, %d of %d deletions with retries in their log, 40 s after the outage\n",
		outage, left, len(deleted), unscaled, n-len(deleted), logged, len(deleted))
	return nil
}

// Defect 4: the server is killed while every create is in flight (RunPod
// makes the endpoints 4 s after the request), then restarted.
func defect4(bin string, n int) error {
	w, err := newWorld(bin, runpodsim.WithBootDelay(time.Second), runpodsim.WithCallbackInterval(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer w.close()
	w.rp.HangNext(runpodsim.OpCreateEndpoint, n, 4*time.Second)
	if err := w.start(); err != nil {
		return err
	}
	ids, err := w.create(n)
	if err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond)
	w.kill(syscall.SIGKILL)
	time.Sleep(3 * time.Second) // RunPod makes the endpoints meanwhile
	restart := time.Now()
	if err := w.start(); err != nil {
		return err
	}
	took := map[string]time.Duration{}
	w.waitAll(ids, 200*time.Second, func(m map[string]any) bool {
		id := m["deployment_id"].(string)
		if status(m) == "ready" {
			if _, ok := took[id]; !ok {
				took[id] = time.Since(restart)
			}
			return true
		}
		return false
	})
	stalled, found, worst := 0, 0, time.Duration(0)
	for _, id := range ids {
		d, ok := took[id]
		if !ok {
			d = time.Since(restart)
		}
		worst = max(worst, d)
		if d > 60*time.Second {
			stalled++
		}
		for _, l := range w.get(id)["logs"].([]any) {
			if strings.Contains(l.(map[string]any)["message"].(string), "endpoint found") {
				found++
				break
			}
		}
	}
	fmt.Printf("defect 4 (kill -9 during create_endpoint): %d of %d deployments stalled over 60 s, slowest ready %.0f s after the restart; %d logged the endpoint as found\n",
		stalled, n, worst.Seconds(), found)
	return nil
}

// isReady reports whether a GET answer is a ready deployment.
func isReady(m map[string]any) bool { return status(m) == "ready" }

// Defect 5: the server on damaged data.
func defect5(bin string, n int) error {
	w, err := newWorld(bin, runpodsim.WithBootDelay(time.Second), runpodsim.WithCallbackInterval(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer w.close()
	if err := w.start(); err != nil {
		return err
	}
	ids, err := w.create(n)
	if err != nil {
		return err
	}
	w.waitAll(ids, 60*time.Second, isReady)
	// Two in flight: their keys are needed to finish.
	w.rp.SetWorkersNeverStart(true)
	inflight, err := w.create(2)
	if err != nil {
		return err
	}
	w.waitAll(inflight, 30*time.Second, func(m map[string]any) bool { return m["runpod_endpoint_id"] != nil })
	w.kill(syscall.SIGTERM)
	w.rp.SetWorkersNeverStart(false)
	clean := w.dir + ".clean"
	if err := exec.Command("cp", "-a", w.dir, clean).Run(); err != nil {
		return err
	}
	defer os.RemoveAll(clean)
	db := filepath.Join(w.dir, "orchestrator.db")
	rpc := runpod.NewClient(w.rp.URL, nil)
	for _, c := range []struct {
		name   string
		damage func() error
	}{
		{"half truncated", func() error { fi, _ := os.Stat(db); return os.Truncate(db, fi.Size()/2) }},
		{"zeroed", func() error { fi, _ := os.Stat(db); return os.WriteFile(db, make([]byte, fi.Size()), 0o600) }},
		{"0 bytes", func() error { return os.Truncate(db, 0) }},
		{"one garbled page (1 KB of records)", func() error {
			raw, err := os.ReadFile(db)
			if err != nil {
				return err
			}
			// Inside the page that holds the first stored deployment
			// record: its header and element table survive, the records
			// in its first kilobyte do not.
			at := bytes.Index(raw, []byte(`"runpod_key"`))
			if at < 0 {
				return fmt.Errorf("no deployment record in %s", db)
			}
			rnd := rand.New(rand.NewPCG(5, 5))
			for i := range min(1024, len(raw)-at) {
				raw[at+i] = byte(rnd.UintN(256))
			}
			return os.WriteFile(db, raw, 0o600)
		}},
		{"keyset.json deleted", func() error { return os.Remove(filepath.Join(w.dir, "keyset.json")) }},
		{"second process", nil},
	} {
		if err := exec.Command("rm", "-rf", w.dir).Run(); err != nil {
			return err
		}
		if err := exec.Command("cp", "-a", clean, w.dir).Run(); err != nil {
			return err
		}
		w.logs.Reset()
		// A variant before may have deleted the in-flight endpoints: put
		// them back as RunPod would still have them (found by the marker).
		for _, id := range inflight {
			if len(w.endpoints(id)) == 0 {
				if _, err := rpc.CreateEndpoint(context.Background(), secret.New(runpodKey), runpod.EndpointSpec{
					Name: "visgate-" + id, Image: "example/transformers:1", Pools: []string{"AMPERE_16"},
					Env: map[string]string{workerenv.DeploymentID: id}, WorkersMin: 1, WorkersMax: 1,
				}); err != nil {
					return err
				}
			}
		}
		if c.damage != nil {
			if err := c.damage(); err != nil {
				return err
			}
		}
		var outcome string
		if c.name == "second process" {
			if err := w.start(); err != nil {
				return err
			}
			second := exec.Command(bin)
			second.Env = append(w.env, "PORT=0")
			out, _ := second.CombinedOutput()
			outcome = "second: " + lastLines(string(out), 1)
			w.kill(syscall.SIGTERM)
		} else if err := w.start(); err != nil {
			outcome = "refused: " + err.Error()
			if strings.Contains(w.logs.String(), "panic") {
				outcome = "PANIC: " + lastLines(w.logs.String(), 1)
			}
		} else {
			code, m := w.call("GET", "/v1/deployments?limit=100", "")
			items, _ := m["deployments"].([]any)
			eps := 0
			for _, id := range inflight {
				eps += len(w.endpoints(id))
			}
			deletes := 0
			for _, id := range inflight {
				if c, _ := w.call("DELETE", "/v1/deployments/"+id, ""); c == http.StatusNoContent {
					deletes++
				}
			}
			time.Sleep(5 * time.Second)
			leaked := 0
			for _, id := range inflight {
				leaked += len(w.endpoints(id))
			}
			before := 0
			for _, id := range inflight {
				if len(w.endpoints(id)) > 0 {
					before++
				}
			}
			outcome = fmt.Sprintf("started; GET /v1/deployments = %d with %d of %d deployments; DELETE of the 2 in flight: %d answered 204 within 15 s, %d endpoints left 5 s later",
				code, len(items), n+2, deletes, leaked)
			_ = before
			outcome += fmt.Sprintf(" (%d endpoints before)", eps)
			w.kill(syscall.SIGTERM)
		}
		fmt.Printf("defect 5 (%s): %s\n", c.name, outcome)
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := strings.Join(lines, " | ")
	if len(out) > 300 {
		out = out[:300] + "..."
	}
	return out
}
