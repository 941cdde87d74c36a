package runpodsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/syncbuf"
)

// goWorkerEnv makes the test binary, started by the simulator as a worker
// process, play a worker (goWorker) instead of running the tests.
const goWorkerEnv = "RUNPODSIM_TEST_GO_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(goWorkerEnv) == "1" {
		os.Exit(goWorker())
	}
	os.Exit(m.Run())
}

// goWorker speaks the worker side of the job protocol as the runpod SDK
// does, from the env the simulator gives: it polls job-take with the
// worker's key, answers {"upper": input.text} (or {"error"} when
// input.fail; never, when input.hang), posts the result to job-done with the SDK's content type
// and isStream query, pings once, and exits 0 on SIGTERM (4 when job-take
// cannot reach the simulator).
func goWorker() int {
	id := os.Getenv("RUNPOD_POD_ID")
	take := strings.ReplaceAll(os.Getenv("RUNPOD_WEBHOOK_GET_JOB"), "$ID", id) + "&job_in_progress=0"
	done := strings.ReplaceAll(os.Getenv("RUNPOD_WEBHOOK_POST_OUTPUT"), "$RUNPOD_POD_ID", id)
	ping := strings.ReplaceAll(os.Getenv("RUNPOD_WEBHOOK_PING"), "$RUNPOD_POD_ID", id)
	key := os.Getenv("RUNPOD_AI_API_KEY")
	if id == "" || key == "" || !strings.Contains(take, "?") {
		fmt.Fprintln(os.Stderr, "goWorker: the platform env is incomplete")
		return 3
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	// GO_WORKER_START_DELAY plays a slow start (a download): no job is
	// asked for until it has passed.
	if d, err := time.ParseDuration(os.Getenv("GO_WORKER_START_DELAY")); err == nil {
		select {
		case <-time.After(d):
		case <-stop:
			return 0
		}
	}
	hc := &http.Client{Timeout: 40 * time.Second}
	call := func(method, url string, body []byte) (*http.Response, error) {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", key)
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return hc.Do(req)
	}
	if resp, err := call("GET", ping+"&runpod_version=test", nil); err == nil {
		resp.Body.Close()
	}
	fmt.Println("goWorker: polling")
	jobs := make(chan map[string]any)
	// The simulator that started this worker outlives it: a job-take
	// that cannot reach it means it is shutting down, and the worker ends.
	lost := make(chan error, 1)
	go func() {
		for {
			resp, err := call("GET", take, nil)
			if err != nil {
				lost <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				continue
			}
			var job map[string]any
			if json.Unmarshal(b, &job) == nil {
				jobs <- job
			}
		}
	}()
	for {
		select {
		case <-stop:
			fmt.Println("goWorker: SIGTERM, exiting")
			return 0
		case err := <-lost:
			fmt.Fprintln(os.Stderr, "goWorker: the simulator is gone:", err)
			return 4
		case job := <-jobs:
			in, _ := job["input"].(map[string]any)
			if in["hang"] == true {
				continue // holds the job and never answers
			}
			var result any = map[string]any{"output": map[string]any{"upper": strings.ToUpper(fmt.Sprint(in["text"]))}}
			if in["fail"] == true {
				result = map[string]any{"error": "fail was set"}
			}
			b, _ := json.Marshal(result)
			url := strings.ReplaceAll(done, "$ID", job["id"].(string)) + "&isStream=false"
			if resp, err := call("POST", url, b); err == nil {
				resp.Body.Close()
			}
		}
	}
}

// goSim runs the test binary itself as the worker of "go/worker" endpoints.
func goSim(t *testing.T) (*runpodsim.Server, *syncbuf.Buffer) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	s := newSim(t, runpodsim.WithWorkerProcess(runpodsim.WorkerProcess{Image: "go/worker", Python: self, Module: "unused",
		HubURL: "http://127.0.0.1:9", Env: map[string]string{goWorkerEnv: "1"}, Log: logs}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker output:\n%s", logs.String())
		}
	})
	return s, logs
}

func TestJobProtocol(t *testing.T) {
	s, logs := goSim(t)
	created := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t,
		`{"image":"go/worker","env":{"VISGATE_CALLBACK_URL":"http://127.0.0.1:9/cb"},"workers":{"min":1,"max":1,"idleTimeout":5}}`))
	if created.status != 201 {
		t.Fatalf("create: %d %s", created.status, created.rawBody)
	}
	id := created.body["id"].(string)
	waitFor(t, "IDLE", 20*time.Second, func() bool {
		st := workerStatuses(s, id)
		return len(st) == 1 && st[0] == runpod.WorkerIdle
	})
	// The job API answers in RunPod's shape.
	a := call(t, s, "POST", "/v2/"+id+"/runsync", "Bearer "+key, `{"input":{"text":"red square"}}`)
	if a.status != 200 || a.body["status"] != runpodsim.JobCompleted || a.body["output"].(map[string]any)["upper"] != "RED SQUARE" {
		t.Fatalf("runsync: %d %s", a.status, a.rawBody)
	}
	for _, k := range []string{"id", "delayTime", "executionTime", "workerId"} {
		if _, ok := a.body[k]; !ok {
			t.Errorf("runsync answer lacks %s: %s", k, a.rawBody)
		}
	}
	a = call(t, s, "POST", "/v2/"+id+"/runsync", "Bearer "+key, `{"input":{"fail":true}}`)
	if a.body["status"] != runpodsim.JobFailed || a.body["error"] != "fail was set" {
		t.Errorf("failing job: %s", a.rawBody)
	}
	// /run, then /status; /health counts both.
	a = call(t, s, "POST", "/v2/"+id+"/run", "Bearer "+key, `{"input":{"text":"queued"}}`)
	jobID := a.body["id"].(string)
	waitFor(t, "the queued job", 10*time.Second, func() bool {
		return call(t, s, "GET", "/v2/"+id+"/status/"+jobID, "Bearer "+key, "").body["status"] == runpodsim.JobCompleted
	})
	h := call(t, s, "GET", "/v2/"+id+"/health", "Bearer "+key, "")
	if jobs := h.body["jobs"].(map[string]any); jobs["completed"] != 2.0 || jobs["failed"] != 1.0 {
		t.Errorf("health: %s", h.rawBody)
	}
	if jobs := s.Jobs(key, id); len(jobs) != 3 || jobs[0].WorkerID == "" {
		t.Errorf("Jobs = %+v", jobs)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/v2/" + id + "/status/nope", "", 404},
		{"GET", "/v2/" + id + "/runsync", "", 405},
		{"POST", "/v2/" + id + "/runsync", `{"input":null}`, 400},
		{"POST", "/v2/" + id + "/runsync?wait=5", `{"input":{}}`, 400},
		{"POST", "/v2/nope/runsync", `{"input":{}}`, 404},
	} {
		if a := call(t, s, tc.method, tc.path, "Bearer "+key, tc.body); a.status != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, a.status, a.rawBody, tc.status)
		}
	}
	// A callback URL off this machine: the simulator refuses to start the
	// worker, which would call it.
	off := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t,
		`{"image":"go/worker","env":{"VISGATE_CALLBACK_URL":"https://example.com/cb"},"workers":{"min":1,"max":1}}`))
	offID := off.body["id"].(string)
	waitFor(t, "UNHEALTHY", 10*time.Second, func() bool {
		st := workerStatuses(s, offID)
		return len(st) == 1 && st[0] == runpod.WorkerUnhealthy
	})
	if !strings.Contains(logs.String(), "not starting the worker: VISGATE_CALLBACK_URL") {
		t.Errorf("no log line for the refused worker:\n%s", logs.String())
	}
	// Delete: SIGTERM reaches the worker, which exits.
	pid := s.Endpoints(key)[0].Workers[0].PID
	call(t, s, "DELETE", "/v2/serverless/"+id, "Bearer "+key, "")
	waitFor(t, "the worker to exit", 10*time.Second, func() bool { return !alive(pid) })
	waitFor(t, "its last words", 5*time.Second, func() bool { return strings.Contains(logs.String(), "goWorker: SIGTERM, exiting") })
}

// A job a worker holds when its process dies fails; the worker is UNHEALTHY.
func TestJobOfDeadWorkerFails(t *testing.T) {
	s, _ := goSim(t)
	created := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t, `{"image":"go/worker","workers":{"min":1,"max":1}}`))
	id := created.body["id"].(string)
	waitFor(t, "IDLE", 20*time.Second, func() bool {
		st := workerStatuses(s, id)
		return len(st) == 1 && st[0] == runpod.WorkerIdle
	})
	held := call(t, s, "POST", "/v2/"+id+"/run", "Bearer "+key, `{"input":{"hang":true}}`).body["id"].(string)
	waitFor(t, "RUNNING", 10*time.Second, func() bool {
		st := workerStatuses(s, id)
		return len(st) == 1 && st[0] == runpod.WorkerRunning
	})
	if st := call(t, s, "GET", "/v2/"+id+"/status/"+held, "Bearer "+key, ""); st.body["status"] != runpodsim.JobInProgress {
		t.Fatalf("held job: %s", st.rawBody)
	}
	pid := s.Endpoints(key)[0].Workers[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "UNHEALTHY", 10*time.Second, func() bool {
		st := workerStatuses(s, id)
		return len(st) == 1 && st[0] == runpod.WorkerUnhealthy
	})
	if st := call(t, s, "GET", "/v2/"+id+"/status/"+held, "Bearer "+key, ""); st.body["status"] != runpodsim.JobFailed ||
		st.body["error"] != "the worker exited while running the job" {
		t.Errorf("the dead worker's job: %s", st.rawBody)
	}
	// No worker can take a new one (max 1, and it is dead): it waits.
	a := call(t, s, "POST", "/v2/"+id+"/run", "Bearer "+key, `{"input":{"text":"x"}}`)
	if a.body["status"] != runpodsim.JobInQueue {
		t.Errorf("run on a dead endpoint: %s", a.rawBody)
	}
}

// A worker still starting after the endpoint's RUNPOD_INIT_TIMEOUT is
// stopped and replaced, as on RunPod: a start that never fits loops. One
// that starts within it serves.
func TestInitTimeout(t *testing.T) {
	s, logs := goSim(t)
	create := func(env string) string {
		t.Helper()
		created := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t,
			`{"image":"go/worker","env":`+env+`,"workers":{"min":1,"max":1,"idleTimeout":5}}`))
		if created.status != 201 {
			t.Fatalf("create: %d %s", created.status, created.rawBody)
		}
		return created.body["id"].(string)
	}
	slow := create(`{"RUNPOD_INIT_TIMEOUT":"1","GO_WORKER_START_DELAY":"1m"}`)
	fits := create(`{"RUNPOD_INIT_TIMEOUT":"60","GO_WORKER_START_DELAY":"1500ms"}`)
	workersOf := func(id string) []runpodsim.Worker {
		for _, e := range s.Endpoints(key) {
			if e.ID == id {
				return e.Workers
			}
		}
		return nil
	}
	first := workersOf(slow)
	waitFor(t, "the slow worker replaced twice", 30*time.Second, func() bool {
		return strings.Count(logs.String(), "did not start serving within RUNPOD_INIT_TIMEOUT (1s)") >= 2
	})
	// The log line comes before the old worker is removed and its
	// replacement placed: wait for the replacement.
	if len(first) != 1 {
		t.Fatalf("workers of the slow endpoint: %+v, want one", first)
	}
	var now []runpodsim.Worker
	waitFor(t, "one worker, the replacement, on the slow endpoint", 10*time.Second, func() bool {
		now = workersOf(slow)
		return len(now) == 1 && now[0].ID != first[0].ID
	})
	waitFor(t, "the worker that fits IDLE", 20*time.Second, func() bool {
		st := workerStatuses(s, fits)
		return len(st) == 1 && st[0] == runpod.WorkerIdle
	})
}
