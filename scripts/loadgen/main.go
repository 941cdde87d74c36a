// Command loadgen measures an endpoint's latency from a second process on
// loopback: a bounded number of GETs (and a time cap), a fixed number of
// concurrent clients, then the percentiles. It refuses any address that is
// not loopback.
//
//	go run ./scripts/loadgen -url http://127.0.0.1:8080/health -n 20000 -c 8
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if err := realMain(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// Result is one run's numbers.
type Result struct {
	Requests, Errors int
	Elapsed          time.Duration
	P50, P90, P99    time.Duration
	Max              time.Duration
}

func realMain(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	target := fs.String("url", "http://127.0.0.1:8080/health", "URL to GET (loopback only)")
	n := fs.Int("n", 20000, "requests in all (at most 1,000,000)")
	c := fs.Int("c", 8, "concurrent clients (at most 256)")
	limit := fs.Duration("max-time", 60*time.Second, "stop after this long whatever is left")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 1_000_000 || *c < 1 || *c > 256 {
		return errors.New("-n must be 1..1000000 and -c 1..256")
	}
	if err := loopbackOnly(*target); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *limit)
	defer cancel()
	r, err := Run(ctx, *target, *n, *c)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %d requests (%d errors) in %s, %.0f req/s, %d clients\n", *target, r.Requests, r.Errors,
		r.Elapsed.Round(time.Millisecond), float64(r.Requests)/r.Elapsed.Seconds(), *c)
	fmt.Fprintf(out, "latency p50 %s  p90 %s  p99 %s  max %s\n", r.P50, r.P90, r.P99, r.Max)
	if r.Errors > 0 {
		return fmt.Errorf("%d requests failed", r.Errors)
	}
	return nil
}

func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bad -url %q", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-url must point at a loopback address, not %q", host)
	}
	return nil
}

// Run sends n GETs from c clients and returns the latency distribution.
func Run(ctx context.Context, target string, n, c int) (Result, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	lat := make([]time.Duration, n)
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				lat[i] = time.Since(t0)
				if err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	done := min(int(next.Load()), n)
	got := slices.Clone(lat[:done])
	slices.Sort(got)
	if len(got) == 0 {
		return Result{}, errors.New("no request completed")
	}
	pct := func(p float64) time.Duration { return got[min(len(got)-1, int(float64(len(got))*p))] }
	return Result{Requests: done, Errors: int(errs.Load()), Elapsed: time.Since(start),
		P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), Max: got[len(got)-1]}, nil
}
