package load

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/scripts/loadgen/load/loadtest"
)

func TestClosedCountsEveryRequestAndSendsHeaders(t *testing.T) {
	srv := loadtest.NewServer(t, "Bearer k")
	req := Request{URL: srv.URL + "/ok", Header: http.Header{"Authorization": {"Bearer k"}}}
	r, err := Closed(context.Background(), req, 4, 200, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 200 || r.Errors != 0 || srv.Hits.Load() != 200 || srv.Authed.Load() != 200 || len(r.Latencies) != 200 {
		t.Errorf("Closed = %d requests, %d errors; server saw %d (%d with the header)", r.Requests, r.Errors, srv.Hits.Load(), srv.Authed.Load())
	}
	if r.Percentile(0.5) > r.Percentile(0.99) || r.Percentile(0.99) > r.Percentile(1) || r.Rate() <= 0 {
		t.Errorf("percentiles out of order or no rate: %v %v %v %v", r.Percentile(0.5), r.Percentile(0.99), r.Percentile(1), r.Rate())
	}
	r, err = Closed(context.Background(), Request{URL: srv.URL + "/bad"}, 1, 10, 0)
	if err == nil || r.Errors != 10 {
		t.Errorf("all failing: err %v, %d errors", err, r.Errors)
	}
}

func TestClosedStopsAtTheTimeLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	start := time.Now()
	r, err := Closed(context.Background(), Request{URL: srv.URL}, 2, 0, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second || r.Requests == 0 || r.Errors != 0 {
		t.Errorf("took %s for a 200ms run: %d requests, %d errors", took, r.Requests, r.Errors)
	}
}

// A server slower than the arrival rate builds a queue; open-loop latency
// counts the wait in it.
func TestOpenCountsQueueingDelay(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A slow server: its 20 ms a request are the point, unless the
		// client leaves.
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Millisecond):
		}
	}))
	defer srv.Close()
	// 100 a second for 0.2 s: 20 requests, one at a time, 20 ms each: the
	// last is due at 190 ms and answers at about 400 ms.
	r, err := Open(context.Background(), Request{URL: srv.URL}, 100, 200*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 20 {
		t.Fatalf("%d requests, want 20", r.Requests)
	}
	if r.Percentile(1) < 150*time.Millisecond {
		t.Errorf("max latency %s: the queueing delay is not counted", r.Percentile(1))
	}
	if r.Percentile(0) < 20*time.Millisecond {
		t.Errorf("min latency %s is below the server's 20 ms", r.Percentile(0))
	}
}

func TestOpenKeepsTheRate(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	start := time.Now()
	r, err := Open(context.Background(), Request{URL: srv.URL}, 500, 400*time.Millisecond, 8)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 200 || hits.Load() != 200 {
		t.Errorf("%d requests (server saw %d), want 200", r.Requests, hits.Load())
	}
	// The last request is due at 398 ms: the run cannot be much shorter.
	if took := time.Since(start); took < 390*time.Millisecond {
		t.Errorf("400 ms of arrivals done in %s", took)
	}
}

func TestMergePoolsLatencies(t *testing.T) {
	a := Result{Requests: 2, Elapsed: time.Second, Latencies: []time.Duration{1, 3}}
	b := Result{Requests: 1, Errors: 1, Elapsed: time.Second, Latencies: []time.Duration{2}}
	m := Merge(a, b)
	if m.Requests != 3 || m.Errors != 1 || m.Elapsed != 2*time.Second || m.Percentile(0) != 1 || m.Percentile(0.5) != 2 || m.Percentile(1) != 3 {
		t.Errorf("Merge = %+v", m)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for raw, ok := range map[string]bool{
		"http://127.0.0.1:8080/health": true, "http://[::1]:8080/": true, "http://localhost:1/": true,
		"http://10.0.0.1/": false, "http://example.com/": false, "http://192.168.1.1/": false, "::": false,
	} {
		if err := LoopbackOnly(raw); (err == nil) != ok {
			t.Errorf("LoopbackOnly(%q) = %v", raw, err)
		}
	}
	if _, err := Closed(context.Background(), Request{URL: "http://10.0.0.1/"}, 1, 1, 0); err == nil {
		t.Error("Closed sent to a non-loopback address")
	}
	if _, err := Open(context.Background(), Request{URL: "http://10.0.0.1/"}, 1, time.Second, 1); err == nil {
		t.Error("Open sent to a non-loopback address")
	}
}

func TestMethodAndBody(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(r.Method + " " + string(b))
	}))
	defer srv.Close()
	req := Request{Method: http.MethodPatch, URL: srv.URL, Body: []byte(`{"max_workers":2}`)}
	if r, err := Closed(context.Background(), req, 2, 10, 0); err != nil || r.Requests != 10 {
		t.Fatalf("Closed = %+v, %v", r, err)
	}
	if s := got.Load(); s != `PATCH {"max_workers":2}` {
		t.Errorf("the server saw %q", s)
	}
}
