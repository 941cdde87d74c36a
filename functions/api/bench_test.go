package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/logging"
	"github.com/visgate/deployment-orchestrator/shared/ratelimit"
)

// discardWriter is an http.ResponseWriter that keeps nothing: the
// benchmarks measure the handler, not a recorder's buffer.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// benchRequest serves one request through the whole handler (middleware,
// auth, rate limit, store, encoding) b.N times, logging at info level to
// io.Discard, as make bench's server does: with a limiter on the real
// clock whose limit is never reached (RATE_LIMIT_PER_MINUTE=500000 there).
// The request is made once (what net/http parsed), its body given anew
// each time, so that only the handler's own work is measured.
func benchRequest(b *testing.B, f *fixture, method, path, body string) {
	b.Helper()
	f.srv.Log = logging.New(io.Discard, "info", "")
	f.srv.Limiter = ratelimit.NewMemory(1<<30, time.Minute, nil)
	h := f.srv.Handler()
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Authorization", "Bearer "+keyA)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if body != "" {
		req.Body = io.NopCloser(strings.NewReader(body))
	}
	rec := httptest.NewRecorder()
	if h.ServeHTTP(rec, req); rec.Code != http.StatusOK {
		b.Fatalf("%s %s = %d %s", method, path, rec.Code, rec.Body)
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU(b)
	for b.Loop() {
		if body != "" {
			req.Body = io.NopCloser(strings.NewReader(body))
		}
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU time the process has used (user and system, every
// thread: the garbage collector's too). On a shared machine ns/op is the
// wall clock's, stretched by whatever else runs; cpu-ns/op much less so.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The handler's own cost of the requests make bench loads (the HTTP
// stack's is not in it): go test -run '^$' -bench . ./functions/api
func BenchmarkGetDeployment(b *testing.B) {
	f := newFixture(b)
	id := createForBench(b, f)
	benchRequest(b, f, "GET", "/v1/deployments/"+id, "")
}

func BenchmarkListDeployments(b *testing.B) {
	f := newFixture(b)
	for range 20 {
		createForBench(b, f)
	}
	benchRequest(b, f, "GET", "/v1/deployments", "")
}

// BenchmarkPatchNoChange is make bench's PATCH: the values the deployment
// already has, validated and compared, nothing written.
func BenchmarkPatchNoChange(b *testing.B) {
	f := newFixture(b)
	id := createForBench(b, f)
	benchRequest(b, f, "PATCH", "/v1/deployments/"+id, `{"max_workers":2}`)
}

func createForBench(b *testing.B, f *fixture) string {
	b.Helper()
	f.srv.Log = logging.New(io.Discard, "info", "")
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/deployments", strings.NewReader(validCreate))
	req.Header.Set("Authorization", "Bearer "+keyA)
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		b.Fatalf("POST = %d %s", rec.Code, rec.Body)
	}
	return body(b, rec)["deployment_id"].(string)
}
