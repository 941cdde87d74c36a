package runpodsim_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
)

// sdkWorker is a streaming worker on the runpod SDK: every job yields its
// outputs (aggregated into the job's output), {"chunks": n} yields n
// partial outputs, {"sleep": s} holds the job, {"fail": true} raises.
const sdkWorker = `
import time
import runpod

def handler(job):
    inp = job["input"]
    if inp.get("fail"):
        raise ValueError("fail was set")
    if inp.get("sleep"):
        time.sleep(inp["sleep"])
    for i in range(inp.get("chunks", 0)):
        time.sleep(0.2)
        yield {"chunk": i}
    if "text" in inp:
        yield {"upper": inp["text"].upper()}

runpod.serverless.start({"handler": handler, "return_aggregate_stream": True})
`

// sdkClient drives an endpoint with the official runpod SDK, pointed at the
// simulator with runpod.endpoint_url_base, then calls what the SDK has no
// method for (/retry, /status-sync, a raw key) with requests. It prints
// what each call returned as one JSON object.
const sdkClient = `
import json
import sys
import time

import requests
import runpod

base, key, endpoint_id = sys.argv[1:4]
runpod.api_key = key
runpod.endpoint_url_base = base
ep = runpod.Endpoint(endpoint_id)
got = {}


def wait_status(job, want):
    for _ in range(300):
        status = job.status()
        if status == want:
            return status
        time.sleep(0.1)
    return status


got["run_sync"] = ep.run_sync({"text": "abc"}, timeout=120)
job = ep.run({"text": "def"})
got["run_status"] = job.status() in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
got["output"] = job.output(timeout=60)
got["status"] = job.status()
got["stream"] = list(ep.run({"chunks": 3}).stream())
health = ep.health()
got["health"] = {"jobs": sorted(health["jobs"]), "workers": sorted(health["workers"]), "completed": health["jobs"]["completed"]}

held = ep.run({"sleep": 4})
got["held"] = wait_status(held, "IN_PROGRESS")
queued = [ep.run({"text": "x"}), ep.run({"text": "y"})]
got["purge_queue"] = ep.purge_queue()
got["purged"] = [j.status() for j in queued]
got["cancel"] = held.cancel()["status"]
got["cancelled"] = requests.get(f"{base}/{endpoint_id}/status/{held.job_id}", headers={"authorization": key}).json()["status"]

raw = requests.post(f"{base}/{endpoint_id}/runsync", headers={"authorization": key}, json={"input": {"text": "raw"}})
got["raw_key"] = [raw.status_code, raw.json().get("output")]

failed = ep.run({"fail": True})
got["failed"] = wait_status(failed, "FAILED")
auth = {"authorization": f"Bearer {key}"}
got["retry"] = requests.post(f"{base}/{endpoint_id}/retry/{failed.job_id}", headers=auth).json()["status"]
synced = requests.get(f"{base}/{endpoint_id}/status-sync/{failed.job_id}?wait=60000", headers=auth).json()
got["status_sync"] = [synced["status"], "fail was set" in json.dumps(synced.get("error"))]
done = ep.run({"text": "z"})
done.output(timeout=60)
retry_done = requests.post(f"{base}/{endpoint_id}/retry/{done.job_id}", headers=auth)
got["retry_completed"] = retry_done.status_code
print(json.dumps(got))
`

// TestOfficialSDK: the official runpod Python SDK (from the worker's venv)
// works against the simulator for run_sync, run, status, output, stream,
// health, purge_queue and cancel; /retry, /status-sync and a raw key (no
// "Bearer ") work as RunPod documents them.
func TestOfficialSDK(t *testing.T) {
	s, _ := processSim(t, func(p *runpodsim.WorkerProcess) {
		src := t.TempDir()
		if err := os.MkdirAll(filepath.Join(src, "sdkworker"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "sdkworker", "__main__.py"), []byte(sdkWorker), 0o644); err != nil {
			t.Fatal(err)
		}
		p.Module, p.PythonPath = "sdkworker", src
	})
	created := call(t, s, "POST", "/v2/serverless", "Bearer "+key, with(t,
		`{"image":"visgate/worker","workers":{"min":1,"max":1,"idleTimeout":60}}`))
	if created.status != 201 {
		t.Fatalf("create: %d %s", created.status, created.rawBody)
	}
	id := created.body["id"].(string)
	waitFor(t, "the worker to poll for jobs (IDLE)", 60*time.Second, func() bool {
		st := workerStatuses(s, id)
		return len(st) == 1 && st[0] == runpod.WorkerIdle
	})
	script := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(script, []byte(sdkClient), 0o644); err != nil {
		t.Fatal(err)
	}
	py := filepath.Join(os.Getenv("VISGATE_INFERENCE_VENV"), "bin", "python")
	cmd := exec.Command(py, script, s.URL, key, id)
	cmd.Env = append(os.Environ(), "RUNPOD_DEBUG_LEVEL=ERROR")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("the SDK client failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("the SDK client printed %q: %v", out, err)
	}
	want := map[string]any{
		"run_sync":   []any{map[string]any{"upper": "ABC"}},
		"run_status": true,
		"output":     []any{map[string]any{"upper": "DEF"}},
		"status":     "COMPLETED",
		"stream":     []any{map[string]any{"chunk": 0.0}, map[string]any{"chunk": 1.0}, map[string]any{"chunk": 2.0}},
		"health": map[string]any{
			"jobs":      []any{"completed", "failed", "inProgress", "inQueue", "retried"},
			"workers":   []any{"idle", "initializing", "running", "throttled", "unhealthy"},
			"completed": 3.0,
		},
		"held":            "IN_PROGRESS",
		"purge_queue":     map[string]any{"removed": 2.0, "status": "completed"},
		"purged":          []any{"CANCELLED", "CANCELLED"},
		"cancel":          "CANCELLED",
		"cancelled":       "CANCELLED",
		"raw_key":         []any{200.0, []any{map[string]any{"upper": "RAW"}}},
		"failed":          "FAILED",
		"retry":           "IN_QUEUE",
		"status_sync":     []any{"FAILED", true},
		"retry_completed": 400.0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("what the SDK saw (-want +got):\n%s", diff)
	}
}

// TestJobOperationsWithoutWorker: the job operations RunPod documents, on
// jobs that stay queued (no worker process takes them): the key raw or as
// a Bearer token, /stream, /status-sync's wait, /purge-queue, /retry's
// refusal of a job that did not fail, and the methods each path takes.
func TestJobOperationsWithoutWorker(t *testing.T) {
	s := newSim(t)
	created := call(t, s, "POST", "/v2/serverless", "Bearer "+key, validCreate)
	if created.status != 201 {
		t.Fatalf("create: %d %s", created.status, created.rawBody)
	}
	id := created.body["id"].(string)
	s.AddAccount("rpa_OTHER", 10)
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"bearer", "Bearer " + key, 200},
		{"lower-case bearer", "bearer " + key, 200},
		{"raw key", key, 200},
		{"another scheme", "Basic " + key, 401},
		{"none", "", 401},
		{"unknown key", "rpa_NOPE", 401},
		{"another account's key", "rpa_OTHER", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := call(t, s, "GET", "/v2/"+id+"/health", tc.auth, ""); a.status != tc.want {
				t.Errorf("health with %q = %d %s, want %d", tc.auth, a.status, a.rawBody, tc.want)
			}
		})
	}
	var jobs []string
	for range 2 {
		a := call(t, s, "POST", "/v2/"+id+"/run", key, `{"input":{"text":"x"}}`)
		if a.status != 200 || a.body["status"] != runpodsim.JobInQueue {
			t.Fatalf("run = %d %s", a.status, a.rawBody)
		}
		jobs = append(jobs, a.body["id"].(string))
	}
	if a := call(t, s, "GET", "/v2/"+id+"/stream/"+jobs[0], key, ""); a.status != 200 ||
		!cmp.Equal(a.body, map[string]any{"id": jobs[0], "status": "IN_QUEUE", "stream": []any{}}) {
		t.Errorf("stream = %d %s", a.status, a.rawBody)
	}
	start := time.Now()
	if a := call(t, s, "GET", "/v2/"+id+"/status-sync/"+jobs[0]+"?wait=1000", key, ""); a.status != 200 ||
		a.body["status"] != runpodsim.JobInQueue || time.Since(start) < time.Second {
		t.Errorf("status-sync = %d %s after %s, want IN_QUEUE after the 1 s wait", a.status, a.rawBody, time.Since(start))
	}
	if a := call(t, s, "GET", "/v2/"+id+"/status-sync/"+jobs[0]+"?wait=5", key, ""); a.status != 400 {
		t.Errorf("status-sync with wait=5 = %d, want 400", a.status)
	}
	if a := call(t, s, "POST", "/v2/"+id+"/retry/"+jobs[0], key, ""); a.status != 400 {
		t.Errorf("retry of a queued job = %d %s, want 400", a.status, a.rawBody)
	}
	if a := call(t, s, "GET", "/v2/"+id+"/purge-queue", key, ""); a.status != 405 {
		t.Errorf("GET purge-queue = %d, want 405", a.status)
	}
	a := call(t, s, "POST", "/v2/"+id+"/purge-queue", key, "")
	if a.status != 200 || !cmp.Equal(a.body, map[string]any{"removed": 2.0, "status": "completed"}) {
		t.Errorf("purge-queue = %d %s", a.status, a.rawBody)
	}
	for _, j := range jobs {
		if a := call(t, s, "POST", "/v2/"+id+"/status/"+j, key, ""); a.status != 200 || a.body["status"] != runpodsim.JobCancelled {
			t.Errorf("POST status of a purged job = %d %s", a.status, a.rawBody)
		}
	}
	if a := call(t, s, "POST", "/v2/"+id+"/retry/job-nope", key, ""); a.status != 404 {
		t.Errorf("retry of an unknown job = %d", a.status)
	}
}
