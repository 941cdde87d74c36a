//go:build pprof

package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strconv"
)

// startProfiler serves net/http/pprof on 127.0.0.1:PPROF_PORT when the
// binary is built with -tags pprof and PPROF_PORT is set (how the read
// path was profiled under make bench's load; see docs/development.md, "Performance").
// The block and mutex profiles sample every event (rate 1, fraction 1):
// a profiling build only, never a served one.
func startProfiler(getenv func(string) string, log *slog.Logger) (stop func(), err error) {
	port := getenv("PPROF_PORT")
	if port == "" {
		return func() {}, nil
	}
	if _, err := strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("PPROF_PORT %q: not a port number", port)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return nil, fmt.Errorf("pprof listen: %w", err)
	}
	runtime.SetBlockProfileRate(1)
	runtime.SetMutexProfileFraction(1)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	log.Warn("pprof served (a profiling build)", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { _ = srv.Close() }, nil
}
