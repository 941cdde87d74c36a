package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// tinyModels are the Hub simulator's real models (make inference-env).
var tinyModels = []string{"visgate-tiny/text-to-image", "visgate-tiny/sentence-embeddings"}

// workerStarts is how many times item 5 starts the worker per model.
const workerStarts = 3

// workerTimes is one start of the worker, from the server's log.
type workerTimes struct {
	started, readyLogged     time.Time // the process's exec, its ready report
	download, load, warmup   time.Duration
	postToReady, execToReady time.Duration
}

// inferenceEnv returns the worker's environment variables when
// `make inference-env` made it, or an error that says why not.
func inferenceEnv(ctx context.Context) ([]string, error) {
	if _, err := os.Stat("inference"); err != nil {
		return nil, errors.New("inference/ is not in this checkout")
	}
	out, err := exec.CommandContext(ctx, "bash", "scripts/inference-env.sh", "--if-present").Output()
	if err != nil {
		return nil, fmt.Errorf("scripts/inference-env.sh --if-present: %w", err)
	}
	var env []string
	for line := range strings.Lines(string(out)) {
		kv, ok := strings.CutPrefix(strings.TrimSpace(line), "export ")
		if !ok {
			continue
		}
		name, value, _ := strings.Cut(kv, "=")
		if u, err := strconv.Unquote(value); err == nil {
			value = u
		}
		env = append(env, name+"="+value)
	}
	if len(env) < 2 {
		return nil, errors.New("the worker's environment does not exist: run make inference-env (once; about 6 GB)")
	}
	return env, nil
}

// workerStart is item 5: the real worker, started by the RunPod simulator
// of SIMULATE=1 for each of the tiny models, from its process start to
// ready, split as the worker reports it (download, load, warm-up) and the
// rest (the interpreter and its imports).
func workerStart(ctx context.Context, server, dir string, hooks *hookReceiver, step func(string, ...any)) ([]Figure, error) {
	name := "inference worker: start to ready"
	wenv, err := inferenceEnv(ctx)
	if err != nil {
		return []Figure{{Name: name, Measured: "not measured: " + err.Error()}}, nil
	}
	port, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	logPath := dir + "/worker-server.log"
	p, err := start(server, nil, append(serverEnv(dir+"/worker-data", port, rateLimitFew, nil), wenv...), logPath)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	p.Base = "http://127.0.0.1:" + strconv.Itoa(port)
	if err := p.waitHealthy(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	c := newClient(p.Base, 2)
	var figs []Figure
	for _, model := range tinyModels {
		var runs []workerTimes
		for i := range workerStarts {
			t0 := time.Now()
			id, err := c.createModel(ctx, model, hooks.URL)
			if err != nil {
				return nil, err
			}
			d, err := c.waitHook(ctx, hooks, id, 3*time.Minute)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", model, err)
			}
			if d.RunPodEndpointID == nil {
				return nil, fmt.Errorf("%s: ready without an endpoint", model)
			}
			wt, err := workerLog(logPath, *d.RunPodEndpointID)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", model, err)
			}
			wt.postToReady = d.ReadyAt.Sub(t0)
			wt.execToReady = d.ReadyAt.Sub(wt.started)
			// Delete it: its idle worker would otherwise keep a Python
			// process with its model alive next to the next start.
			if err := c.do(ctx, "DELETE", "/v1/deployments/"+id, nil, nil, 204, nil); err != nil {
				return nil, err
			}
			runs = append(runs, wt)
			step("   %s start %d of %d: %s", model, i+1, workerStarts, ms(wt.execToReady))
		}
		med := func(f func(workerTimes) time.Duration) time.Duration {
			var ds []time.Duration
			for _, r := range runs {
				ds = append(ds, f(r))
			}
			return percentile(ds, 0.5)
		}
		exec := med(func(w workerTimes) time.Duration { return w.execToReady })
		rest := med(func(w workerTimes) time.Duration {
			return w.readyLogged.Sub(w.started) - w.download - w.load - w.warmup
		})
		figs = append(figs, Figure{
			Name: fmt.Sprintf("inference worker, %s: process start to ready (median of %d)", model, workerStarts),
			Measured: fmt.Sprintf("%s: interpreter and imports %s, download %s, load %s, warm-up %s (POST → ready %s)",
				ms(exec), ms(rest), ms(med(func(w workerTimes) time.Duration { return w.download })),
				ms(med(func(w workerTimes) time.Duration { return w.load })), ms(med(func(w workerTimes) time.Duration { return w.warmup })),
				ms(med(func(w workerTimes) time.Duration { return w.postToReady }))),
		})
	}
	return figs, nil
}

// createModel POSTs a deployment of model.
func (c *client) createModel(ctx context.Context, model, hook string) (string, error) {
	body, _ := json.Marshal(map[string]string{"hf_model_id": model, "user_runpod_key": "rpa_bench", "user_webhook_url": hook})
	var out deployment
	if err := c.do(ctx, "POST", "/v1/deployments", nil, body, 202, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// The server's log lines about the worker (functions/localsim): the
// simulator's "worker process N started" and the worker's own ready report.
var (
	startedLine = regexp.MustCompile(`^\[runpodsim ([^/\]]+)/[^\]]+\] worker process \d+ started`)
	readyLine   = regexp.MustCompile(`^\[worker ([^/\]]+)/[^\]]+\] .*ready: \{'download_seconds': ([0-9.]+), 'load_seconds': ([0-9.]+), 'warmup_seconds': ([0-9.]+)\}`)
)

// workerLog reads the times of the worker of endpoint from the server's
// JSON log.
func workerLog(path, endpoint string) (workerTimes, error) {
	var wt workerTimes
	f, err := os.Open(path)
	if err != nil {
		return wt, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	seconds := func(s string) time.Duration {
		v, _ := strconv.ParseFloat(s, 64)
		return time.Duration(v * float64(time.Second))
	}
	for sc.Scan() {
		var rec struct {
			Time time.Time `json:"time"`
			Line string    `json:"line"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Line == "" {
			continue
		}
		if m := startedLine.FindStringSubmatch(rec.Line); m != nil && m[1] == endpoint && wt.started.IsZero() {
			wt.started = rec.Time
		}
		if m := readyLine.FindStringSubmatch(rec.Line); m != nil && m[1] == endpoint {
			wt.readyLogged = rec.Time
			wt.download, wt.load, wt.warmup = seconds(m[2]), seconds(m[3]), seconds(m[4])
		}
	}
	if err := sc.Err(); err != nil {
		return wt, err
	}
	if wt.started.IsZero() || wt.readyLogged.IsZero() {
		return wt, fmt.Errorf("no worker start and ready report for endpoint %s in %s (a simulated worker?)", endpoint, path)
	}
	return wt, nil
}
