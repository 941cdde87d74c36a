//go:build !pprof

package main

import "log/slog"

// startProfiler does nothing: only a binary built with -tags pprof serves
// profiles (see pprof.go).
func startProfiler(func(string) string, *slog.Logger) (func(), error) { return func() {}, nil }
