// Package load sends bounded HTTP load to a loopback address and measures
// latency: closed loop (a fixed number of clients, each sending its next
// request when the last one answers: the maximum rate) and open loop (a
// fixed arrival rate, latency counted from when each request was due, so
// that a slow server cannot hide its queue). scripts/loadgen and
// scripts/bench use it. It refuses any address that is not loopback.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Request is what every request of a run sends: Method (GET when empty)
// of URL with Header and Body.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// Result is one run's numbers.
type Result struct {
	Requests, Errors int
	Elapsed          time.Duration
	// Latencies of every completed request, sorted.
	Latencies []time.Duration
	// FirstError is the first failure seen, for the report.
	FirstError error
}

// Rate is the completed requests per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Percentile returns the latency below which a fraction p (0..1] of the
// requests completed; zero when none did.
func (r Result) Percentile(p float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	return r.Latencies[min(n-1, int(float64(n)*p))]
}

// Merge pools the latencies of several runs (their rates stay per run).
func Merge(rs ...Result) Result {
	var m Result
	for _, r := range rs {
		m.Requests += r.Requests
		m.Errors += r.Errors
		m.Elapsed += r.Elapsed
		m.Latencies = append(m.Latencies, r.Latencies...)
		if m.FirstError == nil {
			m.FirstError = r.FirstError
		}
	}
	slices.Sort(m.Latencies)
	return m
}

// LoopbackOnly refuses a URL whose host is not a loopback address.
func LoopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bad URL %q", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("URL must point at a loopback address, not %q", host)
	}
	return nil
}

// client is an HTTP client that keeps up to conns connections open.
func client(conns int) (*http.Client, func()) {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, tr.CloseIdleConnections
}

// do sends one request and reads the whole answer; anything but 200 is an
// error.
func do(ctx context.Context, c *http.Client, req Request) error {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	r, err := http.NewRequestWithContext(ctx, method, req.URL, body)
	if err != nil {
		return err
	}
	for k, v := range req.Header {
		r.Header[k] = v
	}
	resp, err := c.Do(r)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// recorder collects latencies and errors from many goroutines.
type recorder struct {
	mu       sync.Mutex
	lat      []time.Duration
	errs     int
	firstErr error
}

func (rec *recorder) add(d time.Duration, err error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err != nil {
		rec.errs++
		if rec.firstErr == nil {
			rec.firstErr = err
		}
		return
	}
	rec.lat = append(rec.lat, d)
}

func (rec *recorder) result(elapsed time.Duration) (Result, error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	slices.Sort(rec.lat)
	r := Result{Requests: len(rec.lat), Errors: rec.errs, Elapsed: elapsed, Latencies: rec.lat, FirstError: rec.firstErr}
	if r.Requests == 0 {
		if rec.firstErr != nil {
			return r, fmt.Errorf("no request succeeded: %w", rec.firstErr)
		}
		return r, errors.New("no request completed")
	}
	return r, nil
}

// Closed sends req from clients concurrent clients, each sending its next
// request as soon as the last one answered, until n requests were sent or
// d has passed (n <= 0: no count limit; d <= 0: no time limit; one of them
// must be set).
func Closed(ctx context.Context, req Request, clients, n int, d time.Duration) (Result, error) {
	if err := LoopbackOnly(req.URL); err != nil {
		return Result{}, err
	}
	if clients < 1 || clients > 1024 || (n <= 0 && d <= 0) {
		return Result{}, errors.New("need 1..1024 clients and a count or a duration")
	}
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	c, closeIdle := client(clients)
	defer closeIdle()
	var rec recorder
	var mu sync.Mutex
	sent := 0
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if n > 0 && sent >= n {
			return false
		}
		sent++
		return true
	}
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil && take() {
				t0 := time.Now()
				err := do(ctx, c, req)
				if ctx.Err() != nil {
					return // cut off by the time limit: not a server error
				}
				rec.add(time.Since(t0), err)
			}
		})
	}
	wg.Wait()
	return rec.result(time.Since(start))
}

// Open sends req at rate requests a second for d, from at most inFlight
// requests at once. Each latency runs from when the request was due, not
// from when a free client sent it: a server that falls behind shows it.
func Open(ctx context.Context, req Request, rate float64, d time.Duration, inFlight int) (Result, error) {
	if err := LoopbackOnly(req.URL); err != nil {
		return Result{}, err
	}
	if rate <= 0 || d <= 0 || inFlight < 1 || inFlight > 1024 {
		return Result{}, errors.New("need a positive rate and duration, and 1..1024 requests in flight")
	}
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	c, closeIdle := client(inFlight)
	defer closeIdle()
	var rec recorder
	due := make(chan time.Time, total)
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for at := range due {
				if ctx.Err() != nil {
					continue // drain
				}
				err := do(ctx, c, req)
				if ctx.Err() == nil {
					rec.add(time.Since(at), err)
				}
			}
		})
	}
	start := time.Now()
	// Dispatch every request that is due, then sleep until the next one.
	for i := 0; i < total && ctx.Err() == nil; {
		now := time.Now()
		for ; i < total; i++ {
			at := start.Add(time.Duration(i) * interval)
			if at.After(now) {
				break
			}
			due <- at
		}
		if i < total {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		}
	}
	close(due)
	wg.Wait()
	return rec.result(time.Since(start))
}
