package runpodsim_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/syncbuf"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

// fakeWorker is a serverless worker written against the unchanged runpod
// SDK: it echoes its input and the env it was given, and reports bad input
// the way the SDK documents ({"error": ...}).
const fakeWorker = `
import os
import runpod

def handler(job):
    inp = job["input"]
    if inp.get("fail"):
        return {"error": "fail was set"}
    keys = ["MODEL_NAME", "HF_ENDPOINT", "RUNPOD_ENDPOINT_ID", "RUNPOD_POD_ID", "HF_HOME"]
    return {"echo": inp, "env": {k: os.environ.get(k) for k in keys}}

runpod.serverless.start({"handler": handler})
`

// processSim starts a simulator whose "visgate/worker" endpoints run
// fakeWorker with the Python of the worker's environment.
func processSim(t *testing.T, opts ...func(*runpodsim.WorkerProcess)) (*runpodsim.Server, *syncbuf.Buffer) {
	t.Helper()
	venv := os.Getenv("VISGATE_INFERENCE_VENV")
	if venv == "" {
		msg := "VISGATE_INFERENCE_VENV is unset: run `make inference-env` (its Python has the runpod SDK) to run worker processes"
		if os.Getenv("REQUIRE_INFERENCE") == "1" {
			t.Fatal(msg + " (REQUIRE_INFERENCE=1)")
		}
		t.Skip(msg)
	}
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "fakeworker"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "fakeworker", "__main__.py"), []byte(fakeWorker), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	p := runpodsim.WorkerProcess{Image: "visgate/worker", Python: filepath.Join(venv, "bin", "python"), Module: "fakeworker",
		PythonPath: src, HubURL: "http://127.0.0.1:9/hub", Dir: t.TempDir(), Log: logs}
	for _, o := range opts {
		o(&p)
	}
	if err := runpodsim.CheckWorkerProcess(p); err != nil {
		t.Fatal(err)
	}
	s := newSim(t, runpodsim.WithWorkerProcess(p))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker output:\n%s", logs.String())
		}
	})
	return s, logs
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	wait.Until(t, timeout, what, cond)
}

func workerStatuses(s *runpodsim.Server, id string) []runpod.WorkerStatus {
	var out []runpod.WorkerStatus
	for _, e := range s.Endpoints(key) {
		if e.ID == id {
			for _, w := range e.Workers {
				out = append(out, w.Status)
			}
		}
	}
	return out
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func TestProcessWorkerRunsJobs(t *testing.T) {
	s, _ := processSim(t)
	created := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t,
		`{"image":"visgate/worker","env":{"MODEL_NAME":"acme/tiny"},"workers":{"min":1,"max":1,"idleTimeout":5}}`))
	if created.status != 201 {
		t.Fatalf("create: %d %s", created.status, created.rawBody)
	}
	id := created.body["id"].(string)
	if st := workerStatuses(s, id); len(st) != 1 || st[0] != runpod.WorkerInitializing {
		t.Errorf("right after create: workers %v, want one INITIALIZING", st)
	}
	waitFor(t, "the worker to poll for jobs (IDLE)", 60*time.Second, func() bool {
		st := workerStatuses(s, id)
		return len(st) == 1 && st[0] == runpod.WorkerIdle
	})

	// /runsync reaches the worker and returns its output.
	a := call(t, s, "POST", "/v2/"+id+"/runsync", "Bearer "+key, `{"input":{"prompt":"a red square"}}`)
	if a.status != 200 || a.body["status"] != runpodsim.JobCompleted {
		t.Fatalf("runsync: %d %s", a.status, a.rawBody)
	}
	out := a.body["output"].(map[string]any)
	env := out["env"].(map[string]any)
	ep := s.Endpoints(key)[0]
	if out["echo"].(map[string]any)["prompt"] != "a red square" || env["MODEL_NAME"] != "acme/tiny" ||
		env["HF_ENDPOINT"] != "http://127.0.0.1:9/hub" || env["RUNPOD_ENDPOINT_ID"] != id || env["RUNPOD_POD_ID"] != ep.Workers[0].ID {
		t.Errorf("runsync output = %v", out)
	}

	// /run then /status; an {"error"} answer is a FAILED job.
	a = call(t, s, "POST", "/v2/"+id+"/run", "Bearer "+key, `{"input":{"fail":true}}`)
	if a.status != 200 || a.body["status"] != runpodsim.JobInQueue {
		t.Fatalf("run: %d %s", a.status, a.rawBody)
	}
	jobID := a.body["id"].(string)
	var st answer
	waitFor(t, "the job to fail", 30*time.Second, func() bool {
		st = call(t, s, "GET", "/v2/"+id+"/status/"+jobID, "Bearer "+key, "")
		return st.body["status"] == runpodsim.JobFailed
	})
	if st.body["error"] != "fail was set" {
		t.Errorf("status of the failed job = %s", st.rawBody)
	}

	// The job API wants the owner's key.
	if a := call(t, s, "POST", "/v2/"+id+"/runsync", "", `{"input":{}}`); a.status != 401 {
		t.Errorf("runsync without a key: %d", a.status)
	}
	s.AddAccount("rpa_OTHER", 10)
	if a := call(t, s, "POST", "/v2/"+id+"/runsync", "Bearer rpa_OTHER", `{"input":{}}`); a.status != 404 {
		t.Errorf("runsync with another account's key: %d", a.status)
	}
	if a := call(t, s, "POST", "/v2/"+id+"/runsync", "Bearer "+key, `{"prompt":"no input"}`); a.status != 400 {
		t.Errorf("runsync without input: %d %s", a.status, a.rawBody)
	}
	// A worker's protocol wants the worker's own key.
	if a := call(t, s, "GET", "/v2/"+id+"/job-take/"+ep.Workers[0].ID+"?gpu=x", key, ""); a.status != 401 {
		t.Errorf("job-take with the account key: %d", a.status)
	}

	// Deleting the endpoint stops the process.
	pid := s.Endpoints(key)[0].Workers[0].PID
	if pid == 0 || !alive(pid) {
		t.Fatalf("worker pid %d not alive", pid)
	}
	if a := call(t, s, "DELETE", "/v2/serverless/"+id, "Bearer "+key, ""); a.status != 204 {
		t.Fatalf("delete: %d", a.status)
	}
	waitFor(t, "the worker process to exit", 15*time.Second, func() bool { return !alive(pid) })
}

// TestServesKeepsOtherModelsSimulated: with Serves, an endpoint of another
// model gets simulated workers (no process), which reach IDLE by themselves,
// while the served model's worker is a process.
func TestServesKeepsOtherModelsSimulated(t *testing.T) {
	s, logs := processSim(t, func(p *runpodsim.WorkerProcess) {
		p.Serves = func(env map[string]string) bool { return env["MODEL_NAME"] == "acme/tiny" }
	})
	create := func(model string) string {
		t.Helper()
		created := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t,
			`{"image":"visgate/worker","env":{"MODEL_NAME":"`+model+`"},"workers":{"min":1,"max":1,"idleTimeout":5}}`))
		if created.status != 201 {
			t.Fatalf("create: %d %s", created.status, created.rawBody)
		}
		return created.body["id"].(string)
	}
	other := create("stabilityai/sdxl-turbo")
	waitFor(t, "the simulated worker to be IDLE", 30*time.Second, func() bool {
		st := workerStatuses(s, other)
		return len(st) == 1 && st[0] == runpod.WorkerIdle
	})
	if strings.Contains(logs.String(), "worker process") {
		t.Fatalf("a process was started for a model Serves refuses:\n%s", logs)
	}
	create("acme/tiny")
	waitFor(t, "the served model's worker process to start", 30*time.Second, func() bool {
		return strings.Contains(logs.String(), "worker process")
	})
}

func TestProcessWorkersScaleOnDemand(t *testing.T) {
	s, logs := processSim(t)
	created := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t,
		`{"image":"visgate/worker","workers":{"min":0,"max":1,"idleTimeout":1}}`))
	id := created.body["id"].(string)
	if st := workerStatuses(s, id); len(st) != 0 {
		t.Fatalf("min 0: workers %v, want none", st)
	}
	// A job starts a worker (a cold start), which runs it.
	a := call(t, s, "POST", "/v2/"+id+"/run", "Bearer "+key, `{"input":{"n":1}}`)
	jobID := a.body["id"].(string)
	waitFor(t, "the cold-started worker to finish the job", 60*time.Second, func() bool {
		return call(t, s, "GET", "/v2/"+id+"/status/"+jobID, "Bearer "+key, "").body["status"] == runpodsim.JobCompleted
	})
	pid := s.Endpoints(key)[0].Workers[0].PID
	// Idle past idleTimeout with min 0: the worker stops.
	waitFor(t, "the idle worker to stop", 20*time.Second, func() bool { return len(workerStatuses(s, id)) == 0 })
	waitFor(t, "the idle worker's process to exit", 15*time.Second, func() bool { return !alive(pid) })
	if !strings.Contains(logs.String(), "idle for the endpoint's idle timeout") {
		t.Errorf("no log line for the idle stop:\n%s", logs.String())
	}
}

func TestProcessWorkerExitIsUnhealthy(t *testing.T) {
	s, _ := processSim(t)
	created := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t,
		`{"image":"visgate/worker","workers":{"min":1,"max":1,"idleTimeout":5}}`))
	id := created.body["id"].(string)
	waitFor(t, "IDLE", 60*time.Second, func() bool {
		st := workerStatuses(s, id)
		return len(st) == 1 && st[0] == runpod.WorkerIdle
	})
	pid := s.Endpoints(key)[0].Workers[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "UNHEALTHY", 15*time.Second, func() bool {
		st := workerStatuses(s, id)
		return len(st) == 1 && st[0] == runpod.WorkerUnhealthy
	})
	if a := call(t, s, "GET", "/v2/serverless/"+id+"/workers", "Bearer "+key, ""); fmt.Sprint(a.body["summary"].(map[string]any)["unhealthy"]) != "1" {
		t.Errorf("workers answer: %s", a.rawBody)
	}
}

func TestCloseStopsWorkerProcesses(t *testing.T) {
	s, _ := processSim(t)
	created := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t,
		`{"image":"visgate/worker","workers":{"min":1,"max":1,"idleTimeout":5}}`))
	id := created.body["id"].(string)
	waitFor(t, "the process to start", 30*time.Second, func() bool {
		eps := s.Endpoints(key)
		return len(eps) == 1 && len(eps[0].Workers) == 1 && eps[0].Workers[0].PID != 0
	})
	pid := s.Endpoints(key)[0].Workers[0].PID
	_ = id
	s.Close()
	if alive(pid) {
		t.Errorf("worker process %d still alive after Close", pid)
	}
}

// An endpoint of the worker image whose env Serves refuses (a model the Hub
// simulator holds no files for) gets simulated workers, not a process.
func TestProcessWorkerOnlyForWhatItServes(t *testing.T) {
	p := runpodsim.WorkerProcess{Image: "visgate/worker", Python: "/nonexistent/python", Dir: t.TempDir(),
		Serves: func(env map[string]string) bool { return env["MODEL_NAME"] == "acme/tiny" }}
	s := newSim(t, runpodsim.WithWorkerProcess(p))
	created := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t,
		`{"image":"visgate/worker","env":{"MODEL_NAME":"acme/metadata-only"},"workers":{"min":1,"max":1,"idleTimeout":5}}`))
	if created.status != 201 {
		t.Fatalf("create: %d %s", created.status, created.rawBody)
	}
	id := created.body["id"].(string)
	waitFor(t, "the simulated worker to be ready", 10*time.Second, func() bool {
		st := workerStatuses(s, id)
		return len(st) == 1 && st[0].Ready()
	})
	for _, e := range s.Endpoints(key) {
		for _, w := range e.Workers {
			if w.PID != 0 {
				t.Errorf("worker %s of a model the worker does not serve runs as process %d", w.ID, w.PID)
			}
		}
	}
}
