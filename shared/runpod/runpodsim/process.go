package runpodsim

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

// WorkerProcess makes the simulator run a real worker: each worker of an
// endpoint whose image is Image is the unchanged Python worker
// (`Python -m Module`) started as a local process with the endpoint's env,
// HF_ENDPOINT pointing at HubURL, and the env the RunPod platform gives a
// serverless worker (RUNPOD_WEBHOOK_GET_JOB, RUNPOD_WEBHOOK_POST_OUTPUT,
// RUNPOD_WEBHOOK_POST_STREAM, RUNPOD_WEBHOOK_PING, RUNPOD_POD_ID,
// RUNPOD_AI_API_KEY, RUNPOD_ENDPOINT_ID), so that the runpod SDK takes its
// jobs from this simulator (jobs.go).
//
// A process worker is INITIALIZING from its start until the SDK first asks
// for a job (our worker starts the SDK only after its warm-up), then IDLE,
// RUNNING while it holds a job, and UNHEALTHY if the process exits or, as
// on RunPod, is still starting after the endpoint's RUNPOD_INIT_TIMEOUT
// (seconds; 7 minutes when unset), when it is stopped. Workers
// start on demand when a job arrives and none is free (up to workers.max),
// and stop once idle for the endpoint's idleTimeout while more than
// workers.min run, as on RunPod. Processes are stopped (SIGTERM to their
// process group, SIGKILL after a grace period) when their endpoint is
// deleted and when the simulator closes.
type WorkerProcess struct {
	Image      string            // endpoints with this image run the worker as a process
	Python     string            // the interpreter, e.g. $VISGATE_INFERENCE_VENV/bin/python
	Module     string            // the module to run; default "visgate_worker"
	PythonPath string            // PYTHONPATH, e.g. <repo>/inference/src
	HubURL     string            // HF_ENDPOINT: the Hub simulator (loopback)
	Dir        string            // where each worker's HOME and HF_HOME go; default a temporary directory removed on Close
	Env        map[string]string // more env, below the endpoint's own
	Log        io.Writer         // the workers' output, each line prefixed with its worker; nil discards it
	// Serves, when set, picks the endpoints (by their env) whose workers
	// are processes; the others with Image keep simulated workers. A Hub
	// simulator has real files for a few models only (the tiny ones): a
	// real worker of any other model fails its download.
	Serves func(env map[string]string) bool
	// Container, when set, runs each worker in a container of the built
	// image, as RunPod runs it, instead of Python from a venv: Python,
	// PythonPath and Dir are then unused (the image has its own).
	Container *Container
}

// Container runs a worker from a container image with buildah, which needs
// no daemon: `buildah from` makes each worker a container of its own, and
// `buildah run --isolation chroot` runs the image's Python in it as the
// image's user, on the host's network (loopback reaches the simulators and
// the orchestrator), with the same env a process worker gets. Runs as root.
type Container struct {
	Image   string // the image, in buildah's local storage (never pulled)
	Buildah string // the buildah binary; default "buildah"
	// Volume, when set, is a host directory mounted at /runpod-volume, as a
	// RunPod network volume is; "" mounts none.
	Volume string
	// Keep keeps each worker's container after the worker stops, for a
	// test to look inside (Worker.Container names it); by default it is
	// removed.
	Keep bool
}

func (c *Container) buildah() string {
	if c.Buildah == "" {
		return "buildah"
	}
	return c.Buildah
}

// WithWorkerProcess runs endpoints whose image is p.Image as real worker
// processes (see WorkerProcess).
func WithWorkerProcess(p WorkerProcess) Option {
	return func(c *config) {
		if p.Module == "" {
			p.Module = "visgate_worker"
		}
		c.proc = &p
	}
}

// stopGrace is how long a worker process has to exit after SIGTERM.
const stopGrace = 5 * time.Second

// isProcess reports whether e's workers are real processes.
func (s *Server) isProcess(e *endpoint) bool {
	p := s.cfg.proc
	return p != nil && e.image != "" && e.image == p.Image && (p.Serves == nil || p.Serves(e.env))
}

// procState is a running worker process.
type procState struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// scaleProcessLocked keeps between workers.min and workers.max process
// workers: it starts up to min, stops the newest beyond max. Idle workers
// above min stop on their own after idleTimeout (watchIdle).
func (s *Server) scaleProcessLocked(e *endpoint) {
	for len(e.workers) > e.max {
		victim := len(e.workers) - 1
		for i, w := range e.workers {
			if w.status != runpod.WorkerRunning {
				victim = i
			}
		}
		e.workers[victim].cancel()
		e.workers = append(e.workers[:victim], e.workers[victim+1:]...)
	}
	for len(e.workers) < min(e.min, e.max) {
		s.addWorkerLocked(e)
	}
	s.demandLocked(e)
}

// demandLocked starts a worker when jobs wait and no worker can take them.
func (s *Server) demandLocked(e *endpoint) {
	if !s.isProcess(e) || len(e.queue) == 0 || len(e.workers) >= e.max {
		return
	}
	for _, w := range e.workers {
		switch w.status {
		case runpod.WorkerIdle, runpod.WorkerInitializing, runpod.WorkerThrottled:
			return // it will take the job
		}
	}
	s.addWorkerLocked(e)
}

func (s *Server) addWorkerLocked(e *endpoint) {
	ctx, cancel := context.WithCancel(e.ctx)
	w := &worker{id: newID(), status: runpod.WorkerThrottled, version: e.version, cancel: cancel, jobs: map[string]bool{}}
	e.workers = append(e.workers, w)
	if card, ok := s.placeLocked(e); ok {
		s.startLocked(e, w, card)
	}
	s.wg.Add(1)
	e.running.Add(1)
	go s.runWorker(ctx, e, w)
}

// runProcess runs one worker process until ctx ends or the process exits.
func (s *Server) runProcess(ctx context.Context, e *endpoint, w *worker, env map[string]string) {
	p := s.cfg.proc
	fail := func(msg string) {
		s.logf(e.id, w.id, "%s", msg)
		s.mu.Lock()
		w.status = runpod.WorkerUnhealthy
		s.mu.Unlock()
	}
	// The worker calls the orchestrator and the Hub itself: only on loopback.
	for _, name := range []string{workerenv.CallbackURL} {
		if v := env[name]; v != "" {
			if err := loopbackOnly(v); err != nil {
				fail(fmt.Sprintf("not starting the worker: %s: %v", name, err))
				return
			}
		}
	}
	if err := loopbackOnly(p.HubURL); err != nil {
		fail(fmt.Sprintf("not starting the worker: the Hub URL: %v", err))
		return
	}
	dir, err := s.workerDir(e.id, w.id)
	if err != nil {
		fail(fmt.Sprintf("not starting the worker: %v", err))
		return
	}
	aiKey := make([]byte, 16)
	_, _ = rand.Read(aiKey)

	s.mu.Lock()
	if ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	w.aiKey = "rpsim_" + hex.EncodeToString(aiKey)
	procEnv := s.processEnvLocked(e, w, env, dir)
	s.mu.Unlock()

	cmd, done, err := s.command(e, w, procEnv, dir)
	if err != nil {
		fail(fmt.Sprintf("could not start the worker: %v", err))
		return
	}
	defer done()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The SDK's heartbeat child keeps the output pipe open after the
	// worker itself exits: Wait returns anyway.
	cmd.WaitDelay = time.Second
	out := s.workerLog(e.id, w.id)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		fail(fmt.Sprintf("could not start the worker: %v", err))
		return
	}
	st := &procState{cmd: cmd, done: make(chan struct{})}
	s.mu.Lock()
	w.proc = st
	s.mu.Unlock()
	if p.Container != nil {
		s.logf(e.id, w.id, "worker process %d started: container %s of image %s", cmd.Process.Pid, w.container, p.Container.Image)
	} else {
		s.logf(e.id, w.id, "worker process %d started: %s -m %s", cmd.Process.Pid, p.Python, p.Module)
	}

	waitErr := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		out.Close()
		close(st.done)
		waitErr <- err
	}()
	idle := time.NewTicker(time.Second)
	defer idle.Stop()
	for {
		select {
		case err := <-waitErr:
			// Orphans (the heartbeat child) go with it.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			s.exited(ctx, e, w, err)
			return
		case <-ctx.Done():
			stopGroup(cmd, st.done)
			<-waitErr
			return
		case <-idle.C:
			if limit, late := s.initTooLong(e, w); late {
				// RunPod's own rule: a worker not serving within
				// RUNPOD_INIT_TIMEOUT is unhealthy, and is stopped.
				s.logf(e.id, w.id, "the worker did not start serving within RUNPOD_INIT_TIMEOUT (%s): unhealthy, stopping it", limit)
				stopGroup(cmd, st.done)
				<-waitErr
				s.mu.Lock()
				w.status = runpod.WorkerUnhealthy
				s.mu.Unlock()
				return
			}
			if s.idleTooLong(e, w) {
				s.logf(e.id, w.id, "idle for the endpoint's idle timeout: stopping the worker")
				s.removeWorker(e, w)
				stopGroup(cmd, st.done)
				<-waitErr
				return
			}
		}
	}
}

// command is the worker's command: Python from the venv, or the image's
// Python in a new container (done removes it once the worker has stopped).
func (s *Server) command(e *endpoint, w *worker, env []string, dir string) (cmd *exec.Cmd, done func(), err error) {
	p := s.cfg.proc
	if p.Container == nil {
		cmd = exec.Command(p.Python, "-m", p.Module)
		cmd.Dir = dir
		cmd.Env = env
		return cmd, func() {}, nil
	}
	c := p.Container
	name := strings.ToLower("runpodsim-" + e.id + "-" + w.id)
	out, err := exec.Command(c.buildah(), "from", "--pull=never", "--quiet", "--name", name, c.Image).CombinedOutput()
	if err != nil {
		return nil, nil, fmt.Errorf("buildah from %s: %v: %s", c.Image, err, bytes.TrimSpace(out))
	}
	s.mu.Lock()
	w.container = name
	s.mu.Unlock()
	args := []string{"run", "--isolation", "chroot", "--terminal=false"}
	if c.Volume != "" {
		args = append(args, "--volume", c.Volume+":/runpod-volume")
	}
	// buildah run takes the env on its command line only (NAME=VALUE):
	// this machine's process list shows it, as the simulator's own env
	// holds it; it is never logged.
	for _, kv := range env {
		args = append(args, "--env", kv)
	}
	args = append(args, name, "--", "python", "-m", p.Module)
	cmd = exec.Command(c.buildah(), args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "BUILDAH_ISOLATION=chroot"}
	done = func() {
		if c.Keep {
			return
		}
		if out, err := exec.Command(c.buildah(), "rm", name).CombinedOutput(); err != nil {
			s.logf(e.id, w.id, "could not remove container %s: %v: %s", name, err, bytes.TrimSpace(out))
		}
	}
	return cmd, done, nil
}

// exited records a worker process that ended on its own: UNHEALTHY, and its
// jobs fail (RunPod would retry them on another worker).
func (s *Server) exited(ctx context.Context, e *endpoint, w *worker, err error) {
	if ctx.Err() != nil {
		return
	}
	s.logf(e.id, w.id, "worker process exited: %v", exitText(err))
	s.mu.Lock()
	defer s.mu.Unlock()
	w.status = runpod.WorkerUnhealthy
	msg := []byte(`"the worker exited while running the job"`)
	for id := range w.jobs {
		if j, ok := e.jobs[id]; ok {
			s.finishLocked(e, j, JobFailed, nil, msg)
		}
	}
	w.status = runpod.WorkerUnhealthy // finishLocked made it IDLE
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// DefaultInitTimeout is how long RunPod lets a worker start (download,
// load, warm-up: until its SDK first asks for a job) when the endpoint's
// env sets no RUNPOD_INIT_TIMEOUT (seconds).
const DefaultInitTimeout = 7 * time.Minute

// initTimeout is the endpoint's RUNPOD_INIT_TIMEOUT, or the default.
func initTimeout(env map[string]string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(env[workerenv.InitTimeout])); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return DefaultInitTimeout
}

// initTooLong reports whether w is still starting past the endpoint's
// RUNPOD_INIT_TIMEOUT, and that limit.
func (s *Server) initTooLong(e *endpoint, w *worker) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := initTimeout(e.env)
	return limit, w.status == runpod.WorkerInitializing && !w.startedAt.IsZero() && time.Since(w.startedAt) >= limit
}

// idleTooLong reports whether w has been idle past the endpoint's idle
// timeout while more workers than workers.min run.
func (s *Server) idleTooLong(e *endpoint, w *worker) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return w.status == runpod.WorkerIdle && len(e.workers) > e.min && len(e.queue) == 0 &&
		!w.idleSince.IsZero() && time.Since(w.idleSince) >= time.Duration(e.idle)*time.Second
}

func (s *Server) removeWorker(e *endpoint, w *worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range e.workers {
		if x == w {
			e.workers = append(e.workers[:i], e.workers[i+1:]...)
			break
		}
	}
	w.cancel()
}

// stopGroup stops the process group: SIGTERM, then SIGKILL after stopGrace.
// The SDK runs its heartbeat in a child process: the group takes it too.
func stopGroup(cmd *exec.Cmd, done <-chan struct{}) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	// Children left behind by a parent that exited on SIGTERM, or a
	// parent that ignored it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// processEnvLocked is the env of a worker process: a minimal base (no env
// of the simulator's own process leaks in), the configured extras, the
// endpoint's env, then what the platform sets.
func (s *Server) processEnvLocked(e *endpoint, w *worker, env map[string]string, dir string) []string {
	p := s.cfg.proc
	base := s.URL + "/" + e.id
	gpuQ := "?gpu=" + url.QueryEscape(w.gpuTypeID)
	m := map[string]string{
		"LANG":                    "C.UTF-8",
		"PYTHONUNBUFFERED":        "1",
		"PYTHONDONTWRITEBYTECODE": "1",
		// One CPU thread each: the machine is shared.
		"OMP_NUM_THREADS": "1",
		"MKL_NUM_THREADS": "1",
		// No GPU, no telemetry.
		"CUDA_VISIBLE_DEVICES":              "",
		"HF_HUB_DISABLE_TELEMETRY":          "1",
		"DO_NOT_TRACK":                      "1",
		"TOKENIZERS_PARALLELISM":            "false",
		"TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
	}
	if p.Container == nil {
		// A venv worker's own corner of this machine; a container has the
		// image's (PATH, its home for the caches, /tmp, PYTHONPATH).
		m["PATH"] = os.Getenv("PATH")
		m["HOME"] = dir
		m["TMPDIR"] = filepath.Join(dir, "tmp")
		m["PYTHONPATH"] = p.PythonPath
		m["HF_HOME"] = filepath.Join(dir, "huggingface")
	}
	for k, v := range p.Env {
		m[k] = v
	}
	for k, v := range env {
		m[k] = v
	}
	platform := map[string]string{
		"HF_ENDPOINT":                p.HubURL,
		"RUNPOD_ENDPOINT_ID":         e.id,
		"RUNPOD_POD_ID":              w.id,
		"RUNPOD_POD_HOSTNAME":        w.id + "-runpodsim",
		"RUNPOD_AI_API_KEY":          w.aiKey,
		"RUNPOD_GPU_COUNT":           fmt.Sprint(e.gpuCount),
		"RUNPOD_WEBHOOK_GET_JOB":     base + "/job-take/$ID" + gpuQ,
		"RUNPOD_WEBHOOK_POST_OUTPUT": base + "/job-done/$RUNPOD_POD_ID/$ID" + gpuQ,
		"RUNPOD_WEBHOOK_POST_STREAM": base + "/job-stream/$RUNPOD_POD_ID/$ID" + gpuQ,
		"RUNPOD_WEBHOOK_PING":        base + "/ping/$RUNPOD_POD_ID" + gpuQ,
		"RUNPOD_PING_INTERVAL":       "10000",
		// The SDK's start-up fitness checks probe 8.8.8.8:53 and
		// nvidia-smi: traffic off this machine, and no GPU here.
		"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
		"RUNPOD_SKIP_GPU_CHECK":          "true",
	}
	for k, v := range platform {
		m[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return out
}

// workerDir makes the worker's own directory (its HOME, caches, temp).
func (s *Server) workerDir(endpointID, workerID string) (string, error) {
	s.mu.Lock()
	root := s.procDir
	if root == "" {
		root = s.cfg.proc.Dir
		if root == "" {
			d, err := os.MkdirTemp("", "runpodsim-workers-")
			if err != nil {
				s.mu.Unlock()
				return "", fmt.Errorf("worker directory: %w", err)
			}
			root, s.procDirTemp = d, true
		}
		s.procDir = root
	}
	s.mu.Unlock()
	dir := filepath.Join(root, endpointID, workerID)
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return "", fmt.Errorf("worker directory: %w", err)
	}
	return dir, nil
}

// removeProcDir removes the temporary worker directories (Close).
func (s *Server) removeProcDir() {
	s.mu.Lock()
	dir, temp := s.procDir, s.procDirTemp
	s.mu.Unlock()
	if temp && dir != "" {
		_ = os.RemoveAll(dir)
	}
}

func (s *Server) logf(endpointID, workerID, format string, args ...any) {
	if s.cfg.proc == nil || s.cfg.proc.Log == nil {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.cfg.proc.Log, "[runpodsim %s/%s] %s\n", endpointID, workerID, fmt.Sprintf(format, args...))
}

// workerLog returns a writer that copies the worker's output to the log,
// line by line with the worker's name.
func (s *Server) workerLog(endpointID, workerID string) io.WriteCloser {
	if s.cfg.proc.Log == nil {
		return nopCloser{io.Discard}
	}
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.logMu.Lock()
			fmt.Fprintf(s.cfg.proc.Log, "[worker %s/%s] %s\n", endpointID, workerID, sc.Text())
			s.logMu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	return &pipeLog{pw: pw, wg: &wg}
}

type pipeLog struct {
	pw *io.PipeWriter
	wg *sync.WaitGroup
}

func (p *pipeLog) Write(b []byte) (int, error) { return p.pw.Write(b) }
func (p *pipeLog) Close() error {
	err := p.pw.Close()
	p.wg.Wait()
	return err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

var errNoProcess = errors.New("runpodsim: no worker process configured")

// CheckWorkerProcess reports whether p can run: the interpreter exists and
// PythonPath holds the module's package, or, for a container, buildah has
// the image.
func CheckWorkerProcess(p WorkerProcess) error {
	if c := p.Container; c != nil {
		if p.Image == "" || c.Image == "" {
			return errNoProcess
		}
		out, err := exec.Command(c.buildah(), "inspect", "--type", "image", "--format", "{{.FromImageID}}", c.Image).CombinedOutput()
		if err != nil {
			return fmt.Errorf("runpodsim: worker image %s: %v: %s", c.Image, err, bytes.TrimSpace(out))
		}
		return nil
	}
	if p.Python == "" || p.Image == "" {
		return errNoProcess
	}
	if _, err := os.Stat(p.Python); err != nil {
		return fmt.Errorf("runpodsim: worker interpreter: %w", err)
	}
	mod := p.Module
	if mod == "" {
		mod = "visgate_worker"
	}
	if _, err := os.Stat(filepath.Join(p.PythonPath, strings.ReplaceAll(mod, ".", "/"))); err != nil {
		return fmt.Errorf("runpodsim: worker package: %w", err)
	}
	return nil
}
