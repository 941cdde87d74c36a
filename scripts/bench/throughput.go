package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/visgate/deployment-orchestrator/scripts/loadgen/load"
)

// Settings of item 1.
const (
	clients   = 16
	rounds    = 8
	roundTime = 1500 * time.Millisecond
	// listSize deployments are created, so that the list's first page
	// (20 by default) is full.
	listSize = 20
	// fixedRate is the open-loop rate /health and GET are measured at on
	// both servers, slowRate the list's and PATCH's: low enough for both
	// servers to serve it on a busy 2-core machine shared with the load
	// generator, so that it shows each server's own latency, not a queue.
	fixedRate = 2000.0
	slowRate  = 1000.0
)

// target is one request of item 1: what it sends, and its targets.
type target struct {
	name   string
	method string
	path   string // "{id}" is the measured deployment's id
	body   []byte
	file   string // the bare server's answer, in the bodies directory
	// minRatio is the throughput target against bare (0: none).
	minRatio float64
	// fixed is the open-loop rate of both servers.
	fixed float64
	// p99Within: the open-loop p99 at fixed is at most this many times
	// bare's (0: no target).
	p99Within float64
	// openRounds of openTime each, per server and rate.
	openRounds int
	openTime   time.Duration
}

// patchBody sets the values the deployment has already: validated, owned,
// compared, nothing written (a write per request would measure bbolt's
// fsync and start a scale task each time).
const patchBody = `{"max_workers":2}`

func targets() []target {
	return []target{
		{name: "/health", method: http.MethodGet, path: "/health", file: "health.json", minRatio: 0.8, fixed: fixedRate, p99Within: 2, openRounds: 5, openTime: 2 * time.Second},
		{name: "GET /v1/deployments/{id}", method: http.MethodGet, path: "/v1/deployments/{id}", file: "get.json", minRatio: 0.8, fixed: fixedRate, p99Within: 2, openRounds: 5, openTime: 2 * time.Second},
		{name: "GET /v1/deployments (a page of 20)", method: http.MethodGet, path: "/v1/deployments", file: "list.json", fixed: slowRate, openRounds: 1, openTime: 2 * time.Second},
		{name: "PATCH /v1/deployments/{id} (its current values: no write)", method: http.MethodPatch, path: "/v1/deployments/{id}", body: []byte(patchBody),
			file: "patch.json", fixed: slowRate, openRounds: 1, openTime: 2 * time.Second},
	}
}

// serveBare is the baseline: net/http and a mux, nothing else, answering
// each target's path with the bytes the service answers (read from dir),
// with their Content-Length as the service sends them.
func serveBare(addr, dir string) error {
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }
	mux := http.NewServeMux()
	for _, t := range targets() {
		body, err := read(t.file)
		if err != nil {
			return err
		}
		pattern, length := t.method+" "+t.path, strconv.Itoa(len(body))
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil {
				_, _ = io.Copy(io.Discard, r.Body)
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", length) // as the service sends it
			_, _ = w.Write(body)
		})
	}
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// settle waits until GET of id answers the same bytes twice, 300 ms apart
// (the steps a PATCH started have written what they write), and returns them.
func settle(ctx context.Context, c *client, id string) ([]byte, error) {
	prev, err := c.getRaw(ctx, id)
	if err != nil {
		return nil, err
	}
	for range 100 {
		time.Sleep(300 * time.Millisecond)
		cur, err := c.getRaw(ctx, id)
		if err != nil {
			return nil, err
		}
		if string(cur) == string(prev) {
			return cur, nil
		}
		prev = cur
	}
	return nil, fmt.Errorf("deployment %s still changing after 30 s", id)
}

// throughput is item 1.
func throughput(ctx context.Context, self, server, dir, hook string, step func(string, ...any)) ([]Figure, []string, error) {
	local, err := startLocal(ctx, server, dir, "throughput", rateLimitLoad, nil)
	if err != nil {
		return nil, nil, err
	}
	defer local.stop()
	c := newClient(local.Base, 4)
	var id string
	for i := range listSize {
		if id, err = c.create(ctx, hook, ""); err != nil {
			return nil, nil, err
		}
		if _, err := c.waitReady(ctx, id, 5*time.Millisecond, 30*time.Second); err != nil {
			return nil, nil, fmt.Errorf("deployment %d of %d: %w", i+1, listSize, err)
		}
	}
	// The measured deployment (the newest) gets the PATCH's values once.
	if err := c.do(ctx, http.MethodPatch, "/v1/deployments/"+id, nil, []byte(patchBody), http.StatusOK, nil); err != nil {
		return nil, nil, err
	}
	if _, err := settle(ctx, c, id); err != nil {
		return nil, nil, err
	}
	bodies := filepath.Join(dir, "bodies")
	if err := os.MkdirAll(bodies, 0o700); err != nil {
		return nil, nil, err
	}
	auth := http.Header{"Authorization": {"Bearer " + apiKey}, "Content-Type": {"application/json"}}
	request := func(base string, t target) load.Request {
		return load.Request{Method: t.method, URL: base + expand(t.path, id), Header: auth, Body: t.body}
	}
	for _, t := range targets() {
		req := request(local.Base, t)
		body, err := c.raw(ctx, req.Method, req.URL, req.Body)
		if err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(filepath.Join(bodies, t.file), body, 0o600); err != nil {
			return nil, nil, err
		}
	}
	port, err := freePorts(1)
	if err != nil {
		return nil, nil, err
	}
	bare, err := start(self, []string{"-bare", "127.0.0.1:" + strconv.Itoa(port), "-bare-bodies", bodies}, cleanEnv(), filepath.Join(dir, "bare.log"))
	if err != nil {
		return nil, nil, err
	}
	defer bare.stop()
	bare.Base = "http://127.0.0.1:" + strconv.Itoa(port)
	if err := bare.waitHealthy(ctx, 10*time.Second); err != nil {
		return nil, nil, err
	}

	ts := targets()
	bases := [2]string{bare.Base, local.Base} // 0: bare, 1: ours
	names := [2]string{"bare", "local"}
	// closed[target][server] holds each round.
	closed := make([][2][]load.Result, len(ts))
	for _, t := range ts {
		for si := range bases {
			if _, err := load.Closed(ctx, request(bases[si], t), clients, 0, 500*time.Millisecond); err != nil {
				return nil, nil, fmt.Errorf("warm-up %s %s: %w", names[si], t.name, err)
			}
		}
	}
	// Every round loads each server once per target, alternating which
	// goes first.
	for r := range rounds {
		for ti, t := range ts {
			for _, si := range order(r) {
				res, err := load.Closed(ctx, request(bases[si], t), clients, 0, roundTime)
				if err != nil {
					return nil, nil, fmt.Errorf("%s %s: %w", names[si], t.name, err)
				}
				if res.Errors > 0 {
					return nil, nil, fmt.Errorf("%s %s: %d errors, first: %v", names[si], t.name, res.Errors, res.FirstError)
				}
				closed[ti][si] = append(closed[ti][si], res)
			}
		}
		step("   closed loop: round %d of %d done", r+1, rounds)
	}

	var figs []Figure
	for ti, t := range ts {
		var maxRate [2]float64
		for si := range bases {
			var xs []float64
			for _, r := range closed[ti][si] {
				xs = append(xs, r.Rate())
			}
			maxRate[si] = medianFloat(xs)
		}
		all := [2]load.Result{load.Merge(closed[ti][0]...), load.Merge(closed[ti][1]...)}
		// The ratio of each round's two runs, back to back, then the
		// median: what else runs on the machine drifts less within a round.
		var ratios []float64
		for r := range closed[ti][0] {
			ratios = append(ratios, closed[ti][1][r].Rate()/closed[ti][0][r].Rate())
		}
		ratio := medianFloat(ratios)
		f := Figure{
			Name: t.name + ": throughput vs bare net/http",
			Measured: fmt.Sprintf("%.2f× (median of the rounds' ratios; %.0f vs %.0f req/s; ours p50/p99/p99.9 %s, bare %s)", ratio,
				maxRate[1], maxRate[0], pcts(all[1]), pcts(all[0])),
			Target: "–",
		}
		if t.minRatio > 0 {
			f.Target, f.Holds = fmt.Sprintf("≥ %.1f×", t.minRatio), holds(ratio >= t.minRatio)
		}
		figs = append(figs, f)

		// Open loop: each server at half of its own maximum, then both at
		// t.fixed; rounds alternate which server goes first.
		var half, fixed [2][]load.Result
		for r := range t.openRounds {
			for _, si := range order(r) {
				res, err := load.Open(ctx, request(bases[si], t), maxRate[si]/2, t.openTime, clients)
				if err != nil {
					return nil, nil, fmt.Errorf("open loop %s %s: %w", names[si], t.name, err)
				}
				half[si] = append(half[si], res)
			}
			for _, si := range order(r + 1) {
				res, err := load.Open(ctx, request(bases[si], t), t.fixed, t.openTime, clients)
				if err != nil {
					return nil, nil, fmt.Errorf("open loop %s %s: %w", names[si], t.name, err)
				}
				fixed[si] = append(fixed[si], res)
			}
		}
		h := [2]load.Result{load.Merge(half[0]...), load.Merge(half[1]...)}
		x := [2]load.Result{load.Merge(fixed[0]...), load.Merge(fixed[1]...)}
		figs = append(figs, Figure{
			Name: t.name + ": open loop, each at half of its own maximum",
			Measured: fmt.Sprintf("ours at %.0f req/s: p50/p99/p99.9 %s (%d errors); bare at %.0f req/s: %s", maxRate[1]/2, pcts(h[1]), h[1].Errors,
				maxRate[0]/2, pcts(h[0])),
			Target: "–",
		})
		f = Figure{
			Name: fmt.Sprintf("%s: open loop, both at %.0f req/s", t.name, t.fixed),
			Measured: fmt.Sprintf("ours p50/p99/p99.9 %s (%d errors); bare %s; p99 %.2f× bare's", pcts(x[1]), x[1].Errors, pcts(x[0]),
				float64(x[1].Percentile(0.99))/float64(max(x[0].Percentile(0.99), 1))),
			Target: "–",
		}
		if t.p99Within > 0 {
			ok := x[1].Errors == 0 && x[1].Percentile(0.99) <= time.Duration(t.p99Within*float64(x[0].Percentile(0.99)))
			f.Target, f.Holds = fmt.Sprintf("p99 ≤ %.0f× bare's", t.p99Within), holds(ok)
		}
		figs = append(figs, f)
		step("   open loop: %s done", t.name)
	}
	notes := []string{fmt.Sprintf("Throughput: closed loop, %d clients, %d interleaved rounds of %s per server and request, back to back "+
		"(the ratio is the median of the rounds' ratios, the rates their medians, the latencies pooled); "+
		"the bare server is net/http with a mux answering the same bytes (read from the local server just before). "+
		"The list is the first page (20) of %d deployments; the PATCH sends the values the deployment already has (%s), so it is validated and compared but writes nothing. "+
		"Open loop: each server at half of its own median maximum rate, then both at one fixed rate (%.0f req/s, the list and PATCH %.0f), over %d connections, "+
		"latency counted from when each request was due; /health and GET in 5 rounds of 2 s per server and rate (alternating which goes first), the list and PATCH in one.",
		clients, rounds, roundTime, listSize, patchBody, fixedRate, slowRate, clients)}
	return figs, notes, nil
}

// order is the servers' order in round r: bare first in even rounds.
func order(r int) []int {
	if r%2 == 1 {
		return []int{1, 0}
	}
	return []int{0, 1}
}

// expand puts id in place of a path's trailing "{id}".
func expand(path, id string) string {
	if p, ok := strings.CutSuffix(path, "{id}"); ok {
		return p + id
	}
	return path
}

// pcts renders p50, p99 and p99.9.
func pcts(r load.Result) string {
	return fmt.Sprintf("%s / %s / %s", ms(r.Percentile(0.5)), ms(r.Percentile(0.99)), ms(r.Percentile(0.999)))
}
