package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/logging"
)

// discardWriter is an http.ResponseWriter that keeps nothing: the
// benchmarks measure the handler, not a recorder's buffer.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// benchRequest serves req through the whole handler (middleware, auth, rate
// limit, store, encoding) b.N times, logging at info level to io.Discard.
func benchRequest(b *testing.B, f *fixture, method, path, body string) {
	b.Helper()
	f.srv.Log = logging.New(io.Discard, "info", "")
	h := f.srv.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+keyA)
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
	}
}

// The handler's own cost of the requests make bench loads (the HTTP
// stack's is not in it): go test -run '^$' -bench . ./functions/api
func BenchmarkGetDeployment(b *testing.B) {
	f := newFixture(b)
	f.srv.Limiter = nil // the fixture's limit is 100 a minute
	id := createForBench(b, f)
	benchRequest(b, f, "GET", "/v1/deployments/"+id, "")
}

func BenchmarkListDeployments(b *testing.B) {
	f := newFixture(b)
	f.srv.Limiter = nil
	for range 20 {
		createForBench(b, f)
	}
	benchRequest(b, f, "GET", "/v1/deployments", "")
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
