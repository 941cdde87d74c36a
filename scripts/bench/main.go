// Command bench is `make bench`: it measures the service against its
// performance targets on this machine, over loopback only, in a bounded
// time (about four minutes; everything has a deadline under ten), prints a
// table of each figure with its target and whether it holds, and writes the
// table with the machine's date, cores and memory to BENCHMARKS.md, which the
// Performance section of docs/development.md quotes.
//
//  1. A bare net/http server answering the same bytes, and the local server
//     (`make run`'s binary), loaded by the same closed-loop load generator
//     (scripts/loadgen/load, 16 clients) in interleaved rounds, for /health,
//     GET /v1/deployments/{id}, the list and a PATCH: throughput, p50, p99,
//     p99.9, the ratio to bare; then open loop, each server at half of its
//     own maximum rate and both at one fixed rate: p50, p99, p99.9.
//  2. POST → ready with simulators that answer at once (SIMULATE_BOOT_DELAY=0s):
//     median and p99 over 200 deployments, on the embedded runtime and on
//     the emulator stack of `make dev` (skipped with a reason when gcloud is
//     missing).
//  3. 1,000 deployments created at once on a fresh server: time until all are
//     ready, none lost or duplicated (ids, RunPod endpoints, webhooks), and
//     the server's peak RSS.
//  4. Cold start: exec of the server binary to the first 200 on /health.
//  5. The inference worker's start, from process start to ready, split into
//     the interpreter and imports, download, load and warm-up, for each tiny
//     model (when `make inference-env` made the worker's environment).
//
// Usage: go run ./scripts/bench [-out BENCHMARKS.md] [-skip-dev] [-only 1,4]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	bareAddr := flag.String("bare", "", "internal: serve the bare handler on this address")
	bareBodies := flag.String("bare-bodies", "", "internal: directory with the bodies the bare server answers")
	out := flag.String("out", "BENCHMARKS.md", "where to write the report")
	skipDev := flag.Bool("skip-dev", false, "skip the emulator stack (item 2's second half)")
	only := flag.String("only", "", "run only these items, comma-separated (1..4); prints the table, writes no file")
	flag.Parse()
	if *bareAddr != "" {
		if err := serveBare(*bareAddr, *bareBodies); err != nil {
			fmt.Fprintln(os.Stderr, "bench -bare:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	items, err := parseItems(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if *only != "" {
		*out = ""
	}
	err = run(ctx, *out, *skipDev, items)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// budget bounds the whole run.
const budget = 9 * time.Minute

// parseItems reads -only: "" is every item.
func parseItems(s string) (map[int]bool, error) {
	items := map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true}
	if s == "" {
		return items, nil
	}
	items = map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 5 {
			return nil, fmt.Errorf("-only %q: want item numbers 1..5, comma-separated", s)
		}
		items[n] = true
	}
	return items, nil
}

func run(ctx context.Context, outPath string, skipDev bool, items map[int]bool) error {
	if _, err := os.Stat("go.mod"); err != nil {
		return errors.New("run it from the repository root (make bench)")
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	began := time.Now()
	loadBefore := loadAverage()
	dir, err := os.MkdirTemp("", "orchestrator-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	step := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "bench [%3.0fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}

	step("building the local server and the dev stack")
	server, err := goBuild(ctx, dir, "./functions/local")
	if err != nil {
		return err
	}
	devBin, err := goBuild(ctx, dir, "./functions/dev")
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	hooks, err := newHookReceiver()
	if err != nil {
		return err
	}
	defer hooks.close()

	var figs []Figure
	var notes []string

	if items[1] {
		step("1. bare net/http against the local server, interleaved rounds")
		f, n, err := throughput(ctx, self, server, dir, hooks.URL, step)
		if err != nil {
			return fmt.Errorf("throughput: %w", err)
		}
		figs, notes = append(figs, f...), append(notes, n...)
	}
	if items[2] {
		f, err := overheads(ctx, server, devBin, dir, hooks, skipDev, step)
		if err != nil {
			return err
		}
		figs = append(figs, f...)
		notes = append(notes, "POST → ready: one deployment at a time, from just before its POST to its ready_at, with simulators that answer at once "+
			"(SIMULATE_BOOT_DELAY=0s); the bench waits for each ready webhook instead of polling. The emulator stack is `make dev`'s: "+
			"both emulators and every function in its own process, on free ports.")
	}
	if items[3] {
		step("3. 1,000 deployments at once")
		f, err := thousand(ctx, server, dir, hooks, step)
		if err != nil {
			return fmt.Errorf("1,000 deployments: %w", err)
		}
		figs = append(figs, f...)
		notes = append(notes, "1,000 deployments: all POSTed at once over up to 256 connections, each with its own Idempotency-Key, to a fresh "+
			"embedded server whose simulators run in the bench's process (so the bench counts the RunPod endpoints, and the server's RSS is its own). "+
			"Lost: accepted but not listed exactly once; duplicated: listed more than once, a RunPod endpoint shared or extra, or a second ready webhook.")
	}
	if items[4] {
		step("4. cold start")
		f, err := coldStart(ctx, server, dir, 10)
		if err != nil {
			return fmt.Errorf("cold start: %w", err)
		}
		figs = append(figs, f...)
		notes = append(notes, "Cold start: exec of the built server binary to its first 200 on /health, polled every millisecond, "+
			"each of the 10 starts with an empty data directory (it creates its keys).")
	}
	if items[5] {
		step("5. the inference worker's start")
		f, err := workerStart(ctx, server, dir, hooks, step)
		if err != nil {
			return fmt.Errorf("inference worker: %w", err)
		}
		figs = append(figs, f...)
		notes = append(notes, "Inference worker: SIMULATE=1 with the worker's environment (make inference-env) runs the real worker as a process "+
			"for the tiny models; its start is read from the server's log: the simulator's \"worker process started\" line, and the worker's "+
			"ready report with its download, load and warm-up seconds; the rest is the interpreter and its imports.")
	}

	m := thisMachine()
	m.Load = [2]string{loadBefore, loadAverage()}
	took := time.Since(began)
	fmt.Println()
	fmt.Print(table(figs))
	if outPath == "" {
		return nil
	}
	file, err := os.Create(outPath)
	if err != nil {
		return err
	}
	writeReport(file, m, figs, notes, took)
	if err := file.Close(); err != nil {
		return err
	}
	fmt.Printf("\nwritten to %s (%d cores, %.1f GB, %s, load average %s then %s); the run took %s\n",
		outPath, m.Cores, m.MemoryGB, m.Date.Format(time.RFC3339), m.Load[0], m.Load[1], took.Round(time.Second))
	if ms := missed(figs); len(ms) > 0 {
		fmt.Printf("missed: %v\n", ms)
	}
	return nil
}

// overheads is item 2: the embedded runtime, then the emulator stack.
func overheads(ctx context.Context, server, devBin, dir string, hooks *hookReceiver, skipDev bool, step func(string, ...any)) ([]Figure, error) {
	step("2. POST to ready, embedded runtime")
	figs, err := readyOverhead(ctx, "embedded", func() (*proc, func(), error) {
		p, err := startLocal(ctx, server, dir, "overhead", rateLimitFew, nil)
		return p, p.stop, err
	}, hooks, 200, 1, 50*time.Millisecond, step)
	if err != nil {
		return nil, fmt.Errorf("embedded overhead: %w", err)
	}
	devFig := Figure{Name: "POST → ready overhead, emulator stack", Target: "median < 1 s"}
	if skipDev {
		devFig.Measured = "not measured (-skip-dev)"
		return append(figs, devFig), nil
	}
	step("2. POST to ready, emulator stack (make dev)")
	f, err := readyOverhead(ctx, "emulator stack", func() (*proc, func(), error) {
		return startDev(ctx, devBin, dir)
	}, hooks, 200, 1, time.Second, step)
	switch {
	case errors.Is(err, errSkipped):
		devFig.Measured = "not measured: " + err.Error()
		return append(figs, devFig), nil
	case err != nil:
		// The emulators are the most fragile part: report, do not abort.
		step("   the emulator stack failed: %v", err)
		devFig.Measured = "failed: " + err.Error()
		devFig.Holds = "no"
		return append(figs, devFig), nil
	}
	return append(figs, f...), nil
}

// readyOverhead is item 2 on one runtime: n deployments, conc at a time,
// each from just before its POST to its ready_at (the server's clock, the
// same machine's). The bench waits for each ready webhook rather than
// polling, so that it adds no load.
func readyOverhead(ctx context.Context, name string, startStack func() (*proc, func(), error), hooks *hookReceiver, n, conc int, target time.Duration, step func(string, ...any)) ([]Figure, error) {
	p, stop, err := startStack()
	if err != nil {
		return nil, err
	}
	defer stop()
	c := newClient(p.Base, conc+2)
	// One deployment first: connections, caches, the emulators' first writes.
	id, err := c.create(ctx, hooks.URL, "")
	if err == nil {
		_, err = c.waitHook(ctx, hooks, id, time.Minute)
	}
	if err != nil {
		return nil, fmt.Errorf("warm-up deployment: %w", err)
	}
	var mu sync.Mutex
	var took []time.Duration
	var firstErr error
	next := make(chan int)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for range next {
				t0 := time.Now()
				id, err := c.create(ctx, hooks.URL, "")
				var d deployment
				if err == nil {
					d, err = c.waitHook(ctx, hooks, id, time.Minute)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					took = append(took, d.ReadyAt.Sub(t0))
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil || firstErr != nil {
			break
		}
		next <- i
		if (i+1)%50 == 0 {
			step("   %d of %d", i+1, n)
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if len(took) != n {
		return nil, fmt.Errorf("%d of %d deployments measured", len(took), n)
	}
	med, p99 := percentile(took, 0.5), percentile(took, 0.99)
	return []Figure{{
		Name:     fmt.Sprintf("POST → ready overhead, %s (%d deployments, %d at a time)", name, n, conc),
		Measured: fmt.Sprintf("median %s, p99 %s", ms(med), ms(p99)),
		Target:   "median < " + ms(target),
		Holds:    holds(med < target),
	}}, nil
}

// startDev starts the emulator stack of `make dev` on free ports: both
// emulators through their scripts, then the dev supervisor.
func startDev(ctx context.Context, devBin, dir string) (*proc, func(), error) {
	if _, err := exec.LookPath("gcloud"); err != nil {
		return nil, nil, fmt.Errorf("gcloud not found (the Firestore emulator needs it): %w", errSkipped)
	}
	const project, location, queue = "demo-bench", "europe-west1", "provision"
	fs, fsAddr, err := startEmulator(ctx, "scripts/firestore-emulator.sh", "FIRESTORE_PORT", dir)
	if err != nil {
		return nil, nil, err
	}
	ct, ctAddr, err := startEmulator(ctx, "scripts/cloudtasks-emulator.sh", "CLOUD_TASKS_PORT", dir,
		"CLOUD_TASKS_QUEUES=projects/"+project+"/locations/"+location+"/queues/"+queue,
		"CLOUD_TASKS_EMULATOR_BIN="+filepath.Join(mustAbs(".emulators"), "bin", "cloud-tasks-emulator"))
	if err != nil {
		fs.stop()
		return nil, nil, err
	}
	base, err := freePorts(9)
	if err != nil {
		ct.stop()
		fs.stop()
		return nil, nil, err
	}
	env := append(serverEnv(filepath.Join(dir, "dev-data"), base, rateLimitFew, nil),
		"FIRESTORE_EMULATOR_HOST="+fsAddr, "CLOUD_TASKS_EMULATOR_HOST="+ctAddr,
		"GCP_PROJECT_ID="+project, "GCP_LOCATION="+location, "TASKS_QUEUE="+queue)
	p, err := start(devBin, nil, env, filepath.Join(dir, "dev.log"))
	stopAll := func() {
		p.stop()
		ct.stop()
		fs.stop()
	}
	if err != nil {
		ct.stop()
		fs.stop()
		return nil, nil, err
	}
	p.Base = "http://127.0.0.1:" + strconv.Itoa(base)
	if err := p.waitHealthy(ctx, 60*time.Second); err != nil {
		stopAll()
		return nil, nil, err
	}
	return p, stopAll, nil
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// thousand is item 3.
func thousand(ctx context.Context, server, dir string, hooks *hookReceiver, step func(string, ...any)) ([]Figure, error) {
	const n = 1000
	sims, err := startSims()
	if err != nil {
		return nil, err
	}
	defer sims.Close()
	p, err := startLocal(ctx, server, dir, "thousand", rateLimitFew, sims)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	c := newClient(p.Base, 256)
	ids := make([]string, n)
	errs := make([]error, n)
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i], errs[i] = c.create(ctx, hooks.URL, fmt.Sprintf("bench-%d", i)) })
	}
	wg.Wait()
	created := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	step("   1,000 accepted in %s; waiting for ready", ms(created))
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	deadline := time.Now().Add(3 * time.Minute)
	var ready []deployment
	for {
		if ready, err = c.list(ctx, "ready"); err != nil {
			return nil, err
		}
		if len(ready) >= n || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	rss, rssErr := p.peakRSS()
	all, err := c.list(ctx, "")
	if err != nil {
		return nil, err
	}
	// Lost or duplicated: deployments, RunPod endpoints, ready webhooks.
	var last time.Time
	endpoints := map[string]int{}
	for _, d := range ready {
		if d.ReadyAt != nil && d.ReadyAt.After(last) {
			last = *d.ReadyAt
		}
		if d.RunPodEndpointID != nil {
			endpoints[*d.RunPodEndpointID]++
		}
	}
	lost := 0
	seen := map[string]int{}
	for _, d := range all {
		seen[d.ID]++
	}
	for id := range want {
		if seen[id] != 1 {
			lost++
		}
	}
	dups := len(all) - len(want) // more stored than created
	for _, k := range endpoints {
		dups += k - 1
	}
	simEndpoints := len(sims.RunPod.Endpoints("rpa_bench"))
	dups += max(0, simEndpoints-n) // endpoints no deployment points at
	// Webhooks are delivered after ready: give them a moment.
	hookDeadline := time.Now().Add(30 * time.Second)
	var hookReady, hookDup int
	for {
		hookReady, hookDup = 0, 0
		for _, id := range ids {
			switch k := hooks.readyCounts()[id]; {
			case k == 1:
				hookReady++
			case k > 1:
				hookReady++
				hookDup++
			}
		}
		if hookReady == n || time.Now().After(hookDeadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	allReady := len(ready) == n && lost == 0 && dups == 0 && hookDup == 0 && hookReady == n && simEndpoints == n
	measured := fmt.Sprintf("%d of %d ready in %s (accepted in %s); %d lost, %d duplicated; %d RunPod endpoints; %d ready webhooks, %d duplicated",
		len(ready), n, ms(last.Sub(t0)), ms(created), lost, dups, simEndpoints, hookReady, hookDup)
	rssFig := Figure{Name: "1,000 deployments: peak RSS of the server (the simulators run in the bench)", Target: "< 200 MB"}
	if rssErr != nil {
		rssFig.Measured = "not read: " + rssErr.Error()
		rssFig.Holds = "no"
	} else {
		rssFig.Measured = fmt.Sprintf("%.0f MB", float64(rss)/(1<<20))
		rssFig.Holds = holds(rss < 200<<20)
	}
	return []Figure{
		{Name: "1,000 deployments created at once: all ready", Measured: measured, Target: "all ready, none lost or duplicated", Holds: holds(allReady)},
		rssFig,
	}, nil
}

// coldStart is item 4: exec to the first 200 on /health, fresh data
// directory each time.
func coldStart(ctx context.Context, server, dir string, n int) ([]Figure, error) {
	var took []time.Duration
	hc := &http.Client{Timeout: 100 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range n {
		port, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		t0 := time.Now()
		p, err := start(server, nil, serverEnv(filepath.Join(dir, fmt.Sprintf("cold-%d", i)), port, rateLimitFew, nil), filepath.Join(dir, fmt.Sprintf("cold-%d.log", i)))
		if err != nil {
			return nil, err
		}
		var d time.Duration
		for {
			if ok, _ := healthy(ctx, hc, base); ok {
				d = time.Since(t0)
				break
			}
			if time.Since(t0) > 10*time.Second || ctx.Err() != nil {
				p.stop()
				return nil, fmt.Errorf("no 200 on /health within 10 s; see %s", p.Log)
			}
			time.Sleep(time.Millisecond)
		}
		p.stop()
		took = append(took, d)
	}
	med, worst := percentile(took, 0.5), percentile(took, 1)
	return []Figure{{
		Name:     fmt.Sprintf("cold start: exec to the first 200 on /health (%d starts, fresh data directory)", n),
		Measured: fmt.Sprintf("median %s, max %s", ms(med), ms(worst)),
		Target:   "< 100 ms",
		Holds:    holds(med < 100*time.Millisecond),
	}}, nil
}
