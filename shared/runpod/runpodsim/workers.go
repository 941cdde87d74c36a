package runpodsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

type cpuConfig struct {
	ID        string `json:"id"`
	VCPUCount int    `json:"vcpuCount"`
	Memory    int    `json:"memory"`
}

// endpoint is the state of one simulated endpoint; guarded by Server.mu.
type endpoint struct {
	seq            int
	id             string
	owner          string // the account's key
	name           string
	typ            string
	image          string
	args           string
	disk           int
	ports          []string
	env            map[string]string
	registry       *string
	gpu            bool
	pools          []string
	excluded       []string
	gpuCount       int
	cudaVersions   []string
	minCuda        *string
	cpu            []cpuConfig
	min, max, idle int
	scalingType    string
	queueDelay     float64
	requestCount   int
	dataCenterIDs  []string
	networkVolumes []string
	timeout        int
	flashboot      string
	createdAt      time.Time
	version        int
	// neverStart: its workers stay INITIALIZING (Chaos.NeverStart).
	neverStart bool

	ctx     context.Context // cancelled on delete
	cancel  context.CancelFunc
	workers []*worker
	// running counts the goroutines of its workers: a delete returns once
	// they have stopped, so nothing of a deleted endpoint calls back later.
	running sync.WaitGroup

	// The job queue (jobs.go).
	jobs        map[string]*job
	jobOrder    []*job
	queue       []*job
	stops       []string      // ids of cancelled jobs a worker still holds
	jobsChanged chan struct{} // closed and replaced when the queue changes
}

type worker struct {
	id         string
	status     runpod.WorkerStatus
	gpuTypeID  string
	dataCenter string
	version    int
	startedAt  time.Time
	cancel     context.CancelFunc

	// Process workers only (process.go).
	aiKey     string          // its RUNPOD_AI_API_KEY
	proc      *procState      // nil until started
	container string          // its container (WorkerProcess.Container), else ""
	jobs      map[string]bool // ids of the jobs it holds
	idleSince time.Time
	lastPing  time.Time
}

func (e *endpoint) snapshot() Endpoint {
	out := Endpoint{
		ID: e.id, Name: e.name, Type: e.typ, Image: e.image,
		Env:   cloneMap(e.env),
		Pools: slices.Clone(e.pools), ExcludedTypes: slices.Clone(e.excluded),
		GPUCount: e.gpuCount, AllowedCudaVersions: slices.Clone(e.cudaVersions), MinCudaVersion: deref(e.minCuda, ""), WorkersMin: e.min, WorkersMax: e.max, IdleTimeout: e.idle,
		TimeoutMs: e.timeout, DiskGB: e.disk, Flashboot: e.flashboot, CreatedAt: e.createdAt,
	}
	for _, w := range e.workers {
		wk := Worker{ID: w.id, Status: w.status, GPUTypeID: w.gpuTypeID, StartedAt: w.startedAt, Container: w.container}
		if w.proc != nil {
			wk.PID = w.proc.cmd.Process.Pid
		}
		out.Workers = append(out.Workers, wk)
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// placeLocked finds capacity for a worker of e: the first of its pools in
// stock, and the first card of it that is not excluded.
func (s *Server) placeLocked(e *endpoint) (card string, ok bool) {
	if !e.gpu {
		return "", true
	}
	if s.stockOut[AllPools] {
		return "", false
	}
	for _, id := range e.pools {
		if s.stockOut[id] {
			continue
		}
		p, found := s.cfg.catalog.Pool(id)
		if !found {
			continue
		}
		for _, c := range p.Cards {
			if !slices.Contains(e.excluded, c.ID) {
				return c.ID, true
			}
		}
	}
	return "", false
}

// scaleLocked starts or stops workers so that e runs exactly e.min of them
// (never more than e.max).
func (s *Server) scaleLocked(e *endpoint) {
	if s.isProcess(e) {
		s.scaleProcessLocked(e)
		return
	}
	want := min(e.min, e.max)
	for len(e.workers) > want {
		last := e.workers[len(e.workers)-1]
		last.cancel()
		e.workers = e.workers[:len(e.workers)-1]
	}
	for len(e.workers) < want {
		ctx, cancel := context.WithCancel(e.ctx)
		w := &worker{id: newID(), status: runpod.WorkerThrottled, version: e.version, cancel: cancel}
		e.workers = append(e.workers, w)
		if card, ok := s.placeLocked(e); ok {
			s.startLocked(e, w, card)
		}
		s.wg.Add(1)
		e.running.Add(1)
		go s.runWorker(ctx, e, w)
	}
}

func (s *Server) startLocked(e *endpoint, w *worker, card string) {
	w.status = runpod.WorkerInitializing
	w.gpuTypeID = card
	w.dataCenter = s.placeCenter
	if len(e.dataCenterIDs) > 0 {
		w.dataCenter = e.dataCenterIDs[0]
	}
	w.startedAt = time.Now().UTC()
	s.billLocked(e, w, card)
}

// runWorker drives one worker: wait for capacity, boot, report, turn IDLE
// (or UNHEALTHY in crash loop mode).
func (s *Server) runWorker(ctx context.Context, e *endpoint, w *worker) {
	defer s.wg.Done()
	defer e.running.Done()
	for {
		s.mu.Lock()
		if w.status == runpod.WorkerThrottled {
			if card, ok := s.placeLocked(e); ok {
				s.startLocked(e, w, card)
			}
		}
		placed := w.status != runpod.WorkerThrottled
		proc := s.isProcess(e)
		changed := s.changed
		crash, silent := s.crashLoop, s.silent
		env := cloneMap(e.env)
		s.mu.Unlock()
		if placed && proc {
			s.runProcess(ctx, e, w, env)
			return
		}
		if placed {
			s.boot(ctx, e, w, crash, silent, env)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func (s *Server) boot(ctx context.Context, e *endpoint, w *worker, crash, silent bool, env map[string]string) {
	if e.neverStart {
		<-ctx.Done() // INITIALIZING until stopped or deleted
		return
	}
	ready := time.Now().Add(s.cfg.bootDelay)
	if !crash && !silent && env[workerenv.CallbackURL] != "" && env[workerenv.CallbackSecret] != "" && env[workerenv.DeploymentID] != "" {
		for _, status := range []string{"downloading_model", "loading_model", "ready"} {
			if !sleep(ctx, s.cfg.callbackInterval) {
				return
			}
			s.callback(ctx, e.id, w.id, env, status)
		}
	}
	if !sleep(ctx, time.Until(ready)) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	if crash {
		w.status = runpod.WorkerUnhealthy
	} else {
		w.status = runpod.WorkerIdle
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// callbackAttempts bounds the container's tries per status.
const callbackAttempts = 3

// callback POSTs one status report, retrying a failed delivery a few times
// like a container would, and records every attempt.
func (s *Server) callback(ctx context.Context, endpointID, workerID string, env map[string]string, status string) {
	rec := Callback{EndpointID: endpointID, WorkerID: workerID, DeploymentID: env[workerenv.DeploymentID], Status: status}
	target := env[workerenv.CallbackURL]
	if err := loopbackOnly(target); err != nil {
		rec.Err = err.Error()
		rec.At = time.Now().UTC()
		s.record(rec)
		return
	}
	body, _ := json.Marshal(map[string]string{"status": status}) // a map of strings always encodes
	for attempt := range callbackAttempts {
		if attempt > 0 && !sleep(ctx, s.cfg.callbackInterval) {
			return
		}
		r := rec
		r.At = time.Now().UTC()
		code, err := s.post(ctx, target, env[workerenv.CallbackSecret], body)
		if ctx.Err() != nil {
			return
		}
		r.HTTPStatus = code
		if err != nil {
			r.Err = err.Error()
		}
		s.record(r)
		if err == nil && code < 500 {
			return
		}
	}
}

func (s *Server) post(ctx context.Context, target, secret string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("building the callback: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderInternalAuth, secret)
	resp, err := s.cfg.callbackClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("posting the callback: %w", err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}

func (s *Server) record(c Callback) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callbacks = append(s.callbacks, c)
}

// loopbackOnly keeps the simulated containers from calling out of the
// machine.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("callback URL is invalid: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("callback URL scheme %q is not http(s)", u.Scheme)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("callback host %q is not a loopback address; the simulator only calls loopback", host)
}
