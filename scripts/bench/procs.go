package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/localsim"
	"github.com/visgate/deployment-orchestrator/shared/config"
)

// apiKey is the key every server of the bench accepts.
const apiKey = "bench-key-0123456789"

// freePorts returns n consecutive ports on 127.0.0.1 that nothing listens
// on (make dev needs PORT and the 8 after it), trying random bases below
// the kernel's range for outgoing connections (32768 and up, where
// listeners on port 0 land too), as scripts/test.sh does for the
// emulators: a port there can be taken by another program's connection
// between this check and the bench's listen.
func freePorts(n int) (int, error) {
	const low, high = 20000, 32768
	for range 200 {
		base := low + rand.IntN(high-low-n)
		ok := true
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free ports", n)
}

// cleanEnv is the bench's environment without any of the service's own
// variables (config.Vars: a user's BACKEND or API_KEYS must not change what
// is measured, nor the emulator addresses, nor the inference worker's
// local environment, with which real workers would run) and without
// GOOGLE_CLOUD_PROJECT.
func cleanEnv() []string {
	own := map[string]bool{"GOOGLE_CLOUD_PROJECT": true}
	for _, v := range config.Vars {
		own[v.Name] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !own[name] {
			env = append(env, kv)
		}
	}
	return env
}

// Rate limits (requests a minute per key) high enough that the bench's
// own traffic never meets them. The in-memory limiter keeps one timestamp
// (8 bytes, not scanned by the garbage collector) per request allowed in
// the last minute and key, in a buffer that grows with use: item 1's load
// (about 5 × 10^5 authenticated requests a minute) holds a few MB.
const (
	rateLimitLoad = 2_000_000 // item 1: the read and PATCH load
	rateLimitFew  = 100_000   // everything else
)

// serverEnv is the configuration of every server the bench starts: the
// simulators answering at once (the server's own, SIMULATE=1, or sims
// when given), a rate limit that the load cannot reach, and webhooks to
// the bench's loopback receiver.
func serverEnv(dataDir string, port, rateLimit int, sims *simulators) []string {
	env := append(cleanEnv(),
		"HOST=127.0.0.1",
		"PORT="+strconv.Itoa(port),
		"DATA_DIR="+dataDir,
		"API_KEYS="+apiKey,
		"WEBHOOK_ALLOW_PRIVATE=1",
		"RATE_LIMIT_PER_MINUTE="+strconv.Itoa(rateLimit),
	)
	if sims == nil {
		return append(env, "SIMULATE=1", "SIMULATE_BOOT_DELAY=0s")
	}
	for k, v := range localsim.Env(sims.cfg) {
		env = append(env, k+"="+v)
	}
	return env
}

// startSims starts the simulators in the bench's own process, answering at
// once, so that the bench can count what the server did with them.
func startSims() (*simulators, error) {
	cfg, err := config.Load(func(name string) string {
		switch name {
		case "SIMULATE":
			return "1"
		case "SIMULATE_BOOT_DELAY":
			return "0s"
		}
		return ""
	})
	if err != nil {
		return nil, err
	}
	s := localsim.Start(slog.New(slog.DiscardHandler), cfg)
	s.Apply(cfg)
	return &simulators{Simulators: s, cfg: cfg}, nil
}

// simulators are the bench's own, with the configuration a server
// started on them is given (localsim.Env).
type simulators struct {
	*localsim.Simulators
	cfg *config.Config
}

// proc is a process the bench started; stop ends it.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	Base string // http://127.0.0.1:port
	Log  string // its stdout and stderr
}

// start runs bin with env, output to logPath, in a process group of its own
// (so that stop reaches its children too).
func start(bin string, args, env []string, logPath string) (*proc, error) {
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), Log: logPath}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM to the process group, then SIGKILL after 10 s.
func (p *proc) stop() {
	if p == nil {
		return
	}
	pg := -p.cmd.Process.Pid
	_ = syscall.Kill(pg, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(pg, syscall.SIGKILL)
		<-p.done
	}
}

// peakRSS is the process's peak resident set (VmHWM), in bytes.
func (p *proc) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	return statusKB(string(b), "VmHWM")
}

// statusKB reads a "Name:   123 kB" line of /proc/*/status or /proc/meminfo.
func statusKB(text, name string) (int64, error) {
	for line := range strings.Lines(text) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != name {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: unexpected %q", name, strings.TrimSpace(v))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		return n * 1024, err
	}
	return 0, fmt.Errorf("no %s line", name)
}

// waitHealthy polls base/health until it answers 200, the process exits, or
// timeout passes.
func (p *proc) waitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		if ok, _ := healthy(ctx, c, p.Base); ok {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before answering /health (%v); see %s", p.err, p.Log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no 200 on %s/health after %s; see %s", p.Base, timeout, p.Log)
		}
	}
}

func healthy(ctx context.Context, c *http.Client, base string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
	if err != nil {
		return false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// startLocal starts the local server binary (make run's) on a free port
// with a data directory of its own under dir.
func startLocal(ctx context.Context, bin, dir, name string, rateLimit int, sims *simulators) (*proc, error) {
	port, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, name+"-data")
	p, err := start(bin, nil, serverEnv(data, port, rateLimit, sims), filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	p.Base = "http://127.0.0.1:" + strconv.Itoa(port)
	if err := p.waitHealthy(ctx, 30*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// emulator is one emulator started through its script (scripts/*-emulator.sh),
// with its own port and directory.
type emulator struct {
	script, portVar, dir string
	port                 int
}

func (e *emulator) env() []string {
	return append(cleanEnv(), e.portVar+"="+strconv.Itoa(e.port), "EMULATOR_DIR="+e.dir)
}

// startEmulator runs `script start` and returns the address it exports.
func startEmulator(ctx context.Context, script, portVar, dir string, extraEnv ...string) (*emulator, string, error) {
	port, err := freePorts(1)
	if err != nil {
		return nil, "", err
	}
	e := &emulator{script: script, portVar: portVar, dir: filepath.Join(dir, filepath.Base(script)+"-"+strconv.Itoa(port)), port: port}
	cmd := exec.CommandContext(ctx, "bash", script, "start")
	cmd.Env = append(e.env(), extraEnv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		e.stop()
		return nil, "", fmt.Errorf("%s start: %w: %s", script, err, strings.TrimSpace(stderr.String()))
	}
	_, addr, ok := strings.Cut(strings.TrimSpace(string(out)), "=")
	if !ok {
		e.stop()
		return nil, "", fmt.Errorf("%s start printed %q", script, out)
	}
	return e, addr, nil
}

func (e *emulator) stop() {
	if e == nil {
		return
	}
	cmd := exec.Command("bash", e.script, "stop")
	cmd.Env = e.env()
	_ = cmd.Run()
}

// goBuild builds pkg into dir and returns the binary's path.
func goBuild(ctx context.Context, dir, pkg string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w", pkg, err)
	}
	return out, nil
}

var errSkipped = errors.New("skipped")
