package runpodsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

// The job API of a queue endpoint (api.runpod.ai/v2/{endpoint_id}/...), with
// the endpoint owner's API key:
//
//	POST /v2/{id}/run               queue a job: {"id", "status": "IN_QUEUE"}
//	POST /v2/{id}/runsync[?wait=ms] queue a job and wait for it (default 90 s)
//	GET  /v2/{id}/status/{job_id}   {"id", "status", "output"|"error", "delayTime", "executionTime"} (POST too)
//	GET  /v2/{id}/status-sync/{job_id}[?wait=ms] the same, once the job ends or wait passes (default 90 s)
//	GET  /v2/{id}/stream/{job_id}   {"status", "stream": [{"output"}...]}: the partial outputs not read yet
//	POST /v2/{id}/cancel/{job_id}   cancel a queued or running job
//	POST /v2/{id}/retry/{job_id}    requeue a FAILED or TIMED_OUT job: {"id", "status": "IN_QUEUE"}
//	POST /v2/{id}/purge-queue       drop the jobs still queued: {"removed": n, "status": "completed"}
//	GET  /v2/{id}/health            {"jobs": {...}, "workers": {...}}
//
// and the worker side, as the runpod SDK (runpod.serverless.start) speaks
// it with the env a worker process gets (see process.go):
//
//	GET  /v2/{id}/job-take/{worker}?gpu=..&job_in_progress=0|1      long poll: 200 {"id","input"} or 204
//	GET  /v2/{id}/job-take-batch/{worker}?..&batch_size=n            long poll: 200 [{"id","input"}...] or 204
//	GET  /v2/{id}/job-stop/{worker}?..                               long poll: 204, or {"jobsToStop": [...]}
//	POST /v2/{id}/job-done/{worker}/{job_id}?..&isStream=false      the result: {"output"} or {"error"}
//	POST /v2/{id}/job-stream/{worker}/{job_id}?..&isStream=true     a streamed partial output
//	GET  /v2/{id}/ping/{worker}?job_id=..&runpod_version=..         heartbeat
//
// The job API takes the owner's key as `Bearer KEY` or raw, as RunPod does.
// Worker requests carry the worker's own RUNPOD_AI_API_KEY in Authorization.

// Job statuses, as the job API reports them.
const (
	JobInQueue    = "IN_QUEUE"
	JobInProgress = "IN_PROGRESS"
	JobCompleted  = "COMPLETED"
	JobFailed     = "FAILED"
	JobCancelled  = "CANCELLED"
	JobTimedOut   = "TIMED_OUT"
)

// Timings of the job protocol.
const (
	// DefaultRunsyncWait is how long /runsync waits for the result by
	// default, as RunPod does; ?wait= (ms) changes it up to maxRunsyncWait.
	DefaultRunsyncWait = 90 * time.Second
	maxRunsyncWait     = 300 * time.Second
	// longPoll is how long job-take and job-stop hold a request open when
	// there is nothing to hand out (the SDK's own timeout is 90 s).
	longPoll        = 20 * time.Second
	maxJobBodyBytes = 10 << 20
	// jobRetention is how long finished jobs stay readable, as on RunPod
	// (30 minutes for /run results).
	jobRetention = 30 * time.Minute
)

// job is one request to an endpoint; guarded by Server.mu.
type job struct {
	id         string
	input      json.RawMessage
	webhook    string
	status     string
	output     json.RawMessage
	stream     []json.RawMessage
	streamRead int // how many of stream /stream has handed out
	errMsg     json.RawMessage
	workerID   string
	createdAt  time.Time
	startedAt  time.Time
	finishedAt time.Time
	done       chan struct{} // closed when the job ends
}

// Job is a snapshot of a job, for tests.
type Job struct {
	ID       string
	Status   string
	WorkerID string
	Output   json.RawMessage
	Error    json.RawMessage
}

// Jobs returns the jobs of an endpoint of key's account, oldest first.
func (s *Server) Jobs(key, endpointID string) []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[key]
	if !ok {
		return nil
	}
	e, ok := a.endpoints[endpointID]
	if !ok {
		return nil
	}
	var out []Job
	for _, j := range e.jobOrder {
		out = append(out, Job{ID: j.id, Status: j.status, WorkerID: j.workerID, Output: j.output, Error: j.errMsg})
	}
	return out
}

func (j *job) wire() map[string]any {
	out := map[string]any{"id": j.id, "status": j.status}
	if !j.startedAt.IsZero() {
		out["delayTime"] = j.startedAt.Sub(j.createdAt).Milliseconds()
		if !j.finishedAt.IsZero() {
			out["executionTime"] = j.finishedAt.Sub(j.startedAt).Milliseconds()
		}
	}
	if j.status == JobCompleted && j.output != nil {
		out["output"] = j.output
	}
	if j.status == JobCompleted && j.output == nil && len(j.stream) > 0 {
		out["output"] = j.stream
	}
	if j.status == JobFailed && j.errMsg != nil {
		out["error"] = j.errMsg
	}
	if j.workerID != "" {
		out["workerId"] = j.workerID
	}
	return out
}

// jobRoute is a request to the job API or the worker protocol.
type jobRoute struct {
	endpointID string
	action     string // run, runsync, status, health, job-take, job-take-batch, job-stop, job-done, job-stream, ping
	workerID   string
	jobID      string
}

// parseJobRoute recognises /v2/{endpoint_id}/{action}/... paths.
func parseJobRoute(path string) (jobRoute, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) < 3 || parts[0] != "v2" || parts[1] == "serverless" || parts[1] == "catalog" || parts[1] == "" {
		return jobRoute{}, false
	}
	r := jobRoute{endpointID: parts[1], action: parts[2]}
	rest := parts[3:]
	switch r.action {
	case "run", "runsync", "health", "purge-queue":
		return r, len(rest) == 0
	case "status", "status-sync", "stream", "cancel", "retry":
		if len(rest) == 1 && rest[0] != "" {
			r.jobID = rest[0]
			return r, true
		}
	case "job-take", "job-take-batch", "job-stop", "ping":
		if len(rest) == 1 && rest[0] != "" {
			r.workerID = rest[0]
			return r, true
		}
	case "job-done", "job-stream":
		if len(rest) == 2 && rest[0] != "" && rest[1] != "" {
			r.workerID, r.jobID = rest[0], rest[1]
			return r, true
		}
	}
	return jobRoute{}, false
}

// serveJobs answers the job API and the worker protocol.
func (s *Server) serveJobs(w http.ResponseWriter, r *http.Request, jr jobRoute) {
	switch jr.action {
	case "run", "runsync", "status", "status-sync", "stream", "health", "cancel", "retry", "purge-queue":
		s.serveJobAPI(w, r, jr)
	default:
		s.serveWorkerProtocol(w, r, jr)
	}
}

func (s *Server) serveJobAPI(w http.ResponseWriter, r *http.Request, jr jobRoute) {
	want := map[string]string{"run": "POST", "runsync": "POST", "status": "GET, POST", "status-sync": "GET, POST",
		"stream": "GET, POST", "health": "GET", "cancel": "POST", "retry": "POST", "purge-queue": "POST"}[jr.action]
	if !slices.Contains(strings.Split(want, ", "), r.Method) {
		writeProblem(w, &apiError{status: http.StatusMethodNotAllowed, detail: "The requested method is not allowed for this path.", allow: want})
		return
	}
	key, aerr := s.authenticate(r)
	if aerr != nil {
		writeProblem(w, aerr)
		return
	}
	s.mu.Lock()
	e, aerr := s.find(key, jr.endpointID)
	s.mu.Unlock()
	if aerr != nil {
		writeProblem(w, aerr)
		return
	}
	switch jr.action {
	case "run", "runsync":
		s.submit(w, r, e, jr.action == "runsync")
	case "status":
		s.answerJob(w, e, jr.jobID, nil)
	case "status-sync":
		s.statusSync(w, r, e, jr.jobID)
	case "stream":
		s.streamJob(w, e, jr.jobID)
	case "retry":
		s.retryJob(w, e, jr.jobID)
	case "purge-queue":
		s.mu.Lock()
		queued := slices.Clone(e.queue)
		for _, j := range queued {
			s.finishLocked(e, j, JobCancelled, nil, nil)
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"removed": len(queued), "status": "completed"})
	case "cancel":
		s.answerJob(w, e, jr.jobID, func(j *job) {
			if j.status == JobInQueue || j.status == JobInProgress {
				if j.workerID != "" {
					e.stops = append(e.stops, j.id)
				}
				s.finishLocked(e, j, JobCancelled, nil, nil)
			}
		})
	case "health":
		s.mu.Lock()
		jobs := map[string]int{"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0}
		for _, j := range e.jobOrder {
			switch j.status {
			case JobCompleted:
				jobs["completed"]++
			case JobFailed:
				jobs["failed"]++
			case JobInProgress:
				jobs["inProgress"]++
			case JobInQueue:
				jobs["inQueue"]++
			}
		}
		workers := map[string]int{"idle": 0, "running": 0, "initializing": 0, "throttled": 0, "unhealthy": 0}
		for _, wk := range e.workers {
			workers[strings.ToLower(string(wk.status))]++
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs, "workers": workers})
	}
}

// submit queues a job (/run) and, for /runsync, waits for it.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, e *endpoint, wait bool) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxJobBodyBytes+1))
	if err != nil {
		writeProblem(w, badRequest("request body could not be read"))
		return
	}
	if len(raw) > maxJobBodyBytes {
		writeProblem(w, &apiError{status: http.StatusRequestEntityTooLarge, detail: "request body is larger than 10 MB"})
		return
	}
	var req struct {
		Input   json.RawMessage `json:"input"`
		Webhook string          `json:"webhook"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		writeProblem(w, badRequest("request body is not valid JSON: "+err.Error()))
		return
	}
	if len(req.Input) == 0 || string(req.Input) == "null" {
		writeProblem(w, badRequest("input is required"))
		return
	}
	timeout, aerr := runsyncWait(r)
	if aerr != nil {
		writeProblem(w, aerr)
		return
	}

	s.mu.Lock()
	if e.ctx.Err() != nil {
		s.mu.Unlock()
		writeProblem(w, notFound(fmt.Sprintf("endpoint %s not found", e.id)))
		return
	}
	j := &job{id: newJobID(), input: req.Input, webhook: req.Webhook, status: JobInQueue,
		createdAt: time.Now().UTC(), done: make(chan struct{})}
	e.jobs[j.id] = j
	e.jobOrder = append(e.jobOrder, j)
	e.queue = append(e.queue, j)
	s.pruneJobsLocked(e)
	s.demandLocked(e)
	s.notifyJobsLocked(e)
	s.answerHealthLocked(e, j)
	out := j.wire()
	s.mu.Unlock()
	if !wait {
		writeJSON(w, http.StatusOK, out)
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-j.done:
	case <-t.C:
	case <-r.Context().Done():
		return
	case <-e.ctx.Done():
	}
	s.mu.Lock()
	out = j.wire()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// runsyncWait reads ?wait= (ms) of /runsync and /status-sync.
func runsyncWait(r *http.Request) (time.Duration, *apiError) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return DefaultRunsyncWait, nil
	}
	ms, err := strconv.Atoi(v)
	if err != nil || ms < 1000 || time.Duration(ms)*time.Millisecond > maxRunsyncWait {
		return 0, badRequest("wait must be a number of milliseconds between 1000 and 300000")
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// statusSync answers /status once the job has ended, or when ?wait passes.
func (s *Server) statusSync(w http.ResponseWriter, r *http.Request, e *endpoint, id string) {
	timeout, aerr := runsyncWait(r)
	if aerr != nil {
		writeProblem(w, aerr)
		return
	}
	s.mu.Lock()
	j, ok := e.jobs[id]
	var done chan struct{}
	if ok {
		done = j.done
	}
	s.mu.Unlock()
	if !ok {
		writeProblem(w, notFound(fmt.Sprintf("job %s not found", id)))
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-r.Context().Done():
		return
	case <-e.ctx.Done():
	}
	s.answerJob(w, e, id, nil)
}

// streamJob hands out the partial outputs (job-stream) not read yet, with
// the job's status: {"status", "stream": [{"output": ...}, ...]}.
func (s *Server) streamJob(w http.ResponseWriter, e *endpoint, id string) {
	s.mu.Lock()
	j, ok := e.jobs[id]
	var out map[string]any
	if ok {
		chunks := []map[string]any{}
		for _, c := range j.stream[j.streamRead:] {
			chunks = append(chunks, map[string]any{"output": c})
		}
		j.streamRead = len(j.stream)
		out = map[string]any{"id": j.id, "status": j.status, "stream": chunks}
		if j.status == JobFailed && j.errMsg != nil {
			out["error"] = j.errMsg
		}
	}
	s.mu.Unlock()
	if !ok {
		writeProblem(w, notFound(fmt.Sprintf("job %s not found", id)))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// retryJob requeues a FAILED or TIMED_OUT job under its id with its input;
// its previous output and error are dropped.
func (s *Server) retryJob(w http.ResponseWriter, e *endpoint, id string) {
	s.mu.Lock()
	j, ok := e.jobs[id]
	if !ok {
		s.mu.Unlock()
		writeProblem(w, notFound(fmt.Sprintf("job %s not found", id)))
		return
	}
	if j.status != JobFailed && j.status != JobTimedOut {
		st := j.status
		s.mu.Unlock()
		writeProblem(w, badRequest(fmt.Sprintf("job %s is %s: only a FAILED or TIMED_OUT job can be retried", id, st)))
		return
	}
	j.status, j.output, j.errMsg, j.stream, j.streamRead = JobInQueue, nil, nil, nil, 0
	j.workerID, j.startedAt, j.finishedAt, j.done = "", time.Time{}, time.Time{}, make(chan struct{})
	e.queue = append(e.queue, j)
	s.demandLocked(e)
	s.notifyJobsLocked(e)
	out := map[string]any{"id": j.id, "status": j.status}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// pruneJobsLocked forgets finished jobs older than jobRetention.
func (s *Server) pruneJobsLocked(e *endpoint) {
	cut := time.Now().Add(-jobRetention)
	kept := e.jobOrder[:0]
	for _, j := range e.jobOrder {
		if !j.finishedAt.IsZero() && j.finishedAt.Before(cut) {
			delete(e.jobs, j.id)
			continue
		}
		kept = append(kept, j)
	}
	e.jobOrder = kept
}

// notifyJobsLocked wakes the long polls of e's workers.
func (s *Server) notifyJobsLocked(e *endpoint) {
	close(e.jobsChanged)
	e.jobsChanged = make(chan struct{})
}

func (s *Server) finishLocked(e *endpoint, j *job, status string, output, errMsg json.RawMessage) {
	if j.status == JobCompleted || j.status == JobFailed || j.status == JobCancelled {
		return
	}
	for i, q := range e.queue {
		if q == j {
			e.queue = append(e.queue[:i], e.queue[i+1:]...)
			break
		}
	}
	j.status, j.output, j.errMsg = status, output, errMsg
	j.finishedAt = time.Now().UTC()
	if j.startedAt.IsZero() {
		j.startedAt = j.finishedAt
	}
	close(j.done)
	if wk := e.worker(j.workerID); wk != nil {
		delete(wk.jobs, j.id)
		if len(wk.jobs) == 0 && wk.status == runpod.WorkerRunning {
			wk.status = runpod.WorkerIdle
			wk.idleSince = time.Now()
		}
	}
	s.notifyJobsLocked(e)
}

func (e *endpoint) worker(id string) *worker {
	for _, w := range e.workers {
		if w.id == id {
			return w
		}
	}
	return nil
}

// serveWorkerProtocol answers a worker process's SDK.
func (s *Server) serveWorkerProtocol(w http.ResponseWriter, r *http.Request, jr jobRoute) {
	s.mu.Lock()
	e, wk := s.processWorkerLocked(jr.endpointID, jr.workerID)
	ok := wk != nil && wk.aiKey != "" && r.Header.Get("Authorization") == wk.aiKey
	s.mu.Unlock()
	if !ok {
		// An unknown worker, a stopped one, or a wrong key: as RunPod, 401.
		writeProblem(w, &apiError{status: http.StatusUnauthorized, detail: "invalid worker credentials"})
		return
	}
	switch jr.action {
	case "job-take", "job-take-batch":
		if r.Method != http.MethodGet {
			writeProblem(w, &apiError{status: http.StatusMethodNotAllowed, detail: "GET only", allow: "GET"})
			return
		}
		n := 1
		if jr.action == "job-take-batch" {
			if v, err := strconv.Atoi(r.URL.Query().Get("batch_size")); err == nil && v > 0 {
				n = min(v, 100)
			}
		}
		s.takeJobs(w, r, e, wk, n, jr.action == "job-take-batch")
	case "job-stop":
		s.stopSignals(w, r, e, wk)
	case "job-done", "job-stream":
		if r.Method != http.MethodPost {
			writeProblem(w, &apiError{status: http.StatusMethodNotAllowed, detail: "POST only", allow: "POST"})
			return
		}
		s.jobResult(w, r, e, wk, jr)
	case "ping":
		s.mu.Lock()
		wk.lastPing = time.Now()
		if r.URL.Query().Get("status") == "unhealthy" {
			wk.status = runpod.WorkerUnhealthy
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}
}

// processWorkerLocked finds a process worker by endpoint and worker id, in
// any account.
func (s *Server) processWorkerLocked(endpointID, workerID string) (*endpoint, *worker) {
	for _, a := range s.accounts {
		if e, ok := a.endpoints[endpointID]; ok {
			if wk := e.worker(workerID); wk != nil && wk.proc != nil {
				return e, wk
			}
			return e, nil
		}
	}
	return nil, nil
}

// answerJob writes job id of e as it stands after act (when not nil) has run
// on it with s.mu held, or a 404 when e has no such job.
func (s *Server) answerJob(w http.ResponseWriter, e *endpoint, id string, act func(*job)) {
	s.mu.Lock()
	j, ok := e.jobs[id]
	var out map[string]any
	if ok {
		if act != nil {
			act(j)
		}
		out = j.wire()
	}
	s.mu.Unlock()
	if !ok {
		writeProblem(w, notFound(fmt.Sprintf("job %s not found", id)))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// takeJobs hands queued jobs to a polling worker, holding the request open
// up to longPoll while there are none. The first poll marks the worker
// ready (IDLE): the SDK polls only once the handler's module has loaded.
func (s *Server) takeJobs(w http.ResponseWriter, r *http.Request, e *endpoint, wk *worker, n int, batch bool) {
	s.holdPoll(w, r, e, func() any {
		if wk.status == runpod.WorkerInitializing {
			wk.status = runpod.WorkerIdle
			wk.idleSince = time.Now()
		}
		var out []map[string]any
		for len(e.queue) > 0 && len(out) < n && wk.status != runpod.WorkerUnhealthy {
			j := e.queue[0]
			e.queue = e.queue[1:]
			j.status, j.workerID, j.startedAt = JobInProgress, wk.id, time.Now().UTC()
			wk.jobs[j.id] = true
			wk.status = runpod.WorkerRunning
			out = append(out, map[string]any{"id": j.id, "input": j.input})
		}
		switch {
		case len(out) == 0:
			return nil
		case batch:
			return out
		default:
			return out[0]
		}
	})
}

// stopSignals long-polls the ids of the worker's jobs that were cancelled.
func (s *Server) stopSignals(w http.ResponseWriter, r *http.Request, e *endpoint, wk *worker) {
	s.holdPoll(w, r, e, func() any {
		var ids []string
		kept := e.stops[:0]
		for _, id := range e.stops {
			if j, ok := e.jobs[id]; ok && j.workerID == wk.id {
				ids = append(ids, id)
				continue
			}
			kept = append(kept, id)
		}
		e.stops = kept
		if len(ids) == 0 {
			return nil
		}
		return map[string]any{"jobsToStop": ids}
	})
}

// holdPoll answers a worker's long poll. It calls take with s.mu held each
// time the endpoint's jobs change; the first non-nil body take returns is
// written as 200 JSON. With none after longPoll, or once the endpoint is
// gone, the answer is 204; if the caller goes away, nothing is written.
func (s *Server) holdPoll(w http.ResponseWriter, r *http.Request, e *endpoint, take func() any) {
	deadline := time.NewTimer(longPoll)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		body := take()
		changed := e.jobsChanged
		s.mu.Unlock()
		if body != nil {
			writeJSON(w, http.StatusOK, body)
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			w.WriteHeader(http.StatusNoContent)
			return
		case <-r.Context().Done():
			return
		case <-e.ctx.Done():
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
}

// jobResult records a worker's result (job-done) or partial output
// (job-stream). The SDK posts JSON with a form content type.
func (s *Server) jobResult(w http.ResponseWriter, r *http.Request, e *endpoint, wk *worker, jr jobRoute) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxJobBodyBytes+1))
	if err != nil || len(raw) > maxJobBodyBytes {
		writeProblem(w, badRequest("result body could not be read or is larger than 10 MB"))
		return
	}
	var res struct {
		Output  json.RawMessage `json:"output"`
		Error   json.RawMessage `json:"error"`
		StopPod bool            `json:"stopPod"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		writeProblem(w, badRequest("result body is not JSON: "+err.Error()))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := e.jobs[jr.jobID]
	if !ok || j.workerID != wk.id {
		writeProblem(w, notFound(fmt.Sprintf("job %s is not assigned to worker %s", jr.jobID, wk.id)))
		return
	}
	if jr.action == "job-stream" {
		if res.Output != nil {
			j.stream = append(j.stream, res.Output)
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	if len(res.Error) > 0 && string(res.Error) != "null" {
		s.finishLocked(e, j, JobFailed, nil, res.Error)
	} else {
		s.finishLocked(e, j, JobCompleted, res.Output, nil)
	}
	w.WriteHeader(http.StatusOK)
}

func newJobID() string {
	return newID() + "-" + newID()[:4] + "-" + newID()[:4] + "-" + newID()[:4] + "-" + newID() + newID()[:4]
}

// answerHealthLocked answers the orchestrator's health check (see
// workerenv.HealthCheck) on an endpoint of simulated workers, as the
// inference worker's handler does: a worker idle or running has loaded its
// model, so the job completes at once; otherwise it waits in the queue. A
// process worker's own handler answers it.
func (s *Server) answerHealthLocked(e *endpoint, j *job) {
	if s.isProcess(e) {
		return
	}
	var in map[string]json.RawMessage
	if json.Unmarshal(j.input, &in) != nil || string(in[workerenv.HealthCheck]) != "true" {
		return
	}
	for _, w := range e.workers {
		if w.status.Ready() {
			j.workerID = w.id
			out, _ := json.Marshal(map[string]string{workerenv.HealthCheck: workerenv.HealthReady, "model": e.env[workerenv.ModelName]})
			s.finishLocked(e, j, JobCompleted, out, nil)
			return
		}
	}
}
