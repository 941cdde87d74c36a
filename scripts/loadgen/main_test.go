package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRunCountsEveryRequest(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/bad" {
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	r, err := Run(context.Background(), srv.URL+"/ok", 200, 1)
	if err != nil || r.Requests != 200 || r.Errors != 0 || hits != 200 || r.P99 > r.Max || r.P50 > r.P99 {
		t.Errorf("Run = %+v, %v (hits %d)", r, err, hits)
	}
	r, _ = Run(context.Background(), srv.URL+"/bad", 10, 1)
	if r.Errors != 10 {
		t.Errorf("errors = %d, want 10", r.Errors)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for raw, ok := range map[string]bool{
		"http://127.0.0.1:8080/health": true, "http://[::1]:8080/": true, "http://localhost:1/": true,
		"http://10.0.0.1/": false, "http://example.com/": false, "http://192.168.1.1/": false,
	} {
		if err := loopbackOnly(raw); (err == nil) != ok {
			t.Errorf("loopbackOnly(%q) = %v", raw, err)
		}
	}
}
