// Command loadgen measures an endpoint's latency from a second process on
// loopback: a bounded number of GETs (and a time cap), a fixed number of
// concurrent clients, then the percentiles. It refuses any address that is
// not loopback.
//
//	go run ./scripts/loadgen -url http://127.0.0.1:8080/health -n 20000 -c 8
//	go run ./scripts/loadgen -url http://127.0.0.1:8080/v1/deployments/ID -H "Authorization: Bearer KEY"
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/scripts/loadgen/load"
)

func main() {
	if err := realMain(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func realMain(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	target := fs.String("url", "http://127.0.0.1:8080/health", "URL to GET (loopback only)")
	n := fs.Int("n", 20000, "requests in all (at most 1,000,000)")
	c := fs.Int("c", 8, "concurrent clients (at most 256)")
	limit := fs.Duration("max-time", 60*time.Second, "stop after this long whatever is left")
	header := http.Header{}
	fs.Func("H", "a request header, \"Name: value\" (repeatable)", func(v string) error {
		name, value, ok := strings.Cut(v, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("want \"Name: value\", not %q", v)
		}
		header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 1_000_000 || *c < 1 || *c > 256 {
		return errors.New("-n must be 1..1000000 and -c 1..256")
	}
	r, err := load.Closed(context.Background(), load.Request{URL: *target, Header: header}, *c, *n, *limit)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %d requests (%d errors) in %s, %.0f req/s, %d clients\n", *target, r.Requests, r.Errors,
		r.Elapsed.Round(time.Millisecond), r.Rate(), *c)
	fmt.Fprintf(out, "latency p50 %s  p90 %s  p99 %s  max %s\n", r.Percentile(0.50), r.Percentile(0.90), r.Percentile(0.99), r.Percentile(1))
	if r.Errors > 0 {
		return fmt.Errorf("%d requests failed", r.Errors)
	}
	return nil
}
