package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestRealMainReportsAndFailsOnErrors(t *testing.T) {
	var hits, authed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Authorization") == "Bearer k" {
			authed.Add(1)
		}
		if r.URL.Path == "/bad" {
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := realMain([]string{"-url", srv.URL + "/ok", "-n", "50", "-c", "2", "-H", "Authorization: Bearer k"}, &out); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 50 || authed.Load() != 50 || !strings.Contains(out.String(), "50 requests (0 errors)") || !strings.Contains(out.String(), "p99") {
		t.Errorf("hits %d, output %q", hits.Load(), out.String())
	}
	if err := realMain([]string{"-url", srv.URL + "/bad", "-n", "5", "-c", "1"}, &bytes.Buffer{}); err == nil {
		t.Error("no error for a server that answers 500")
	}
	if err := realMain([]string{"-url", "http://10.0.0.1/", "-n", "5"}, &bytes.Buffer{}); err == nil {
		t.Error("no error for a non-loopback URL")
	}
	if err := realMain([]string{"-url", srv.URL, "-H", "no colon"}, &bytes.Buffer{}); err == nil {
		t.Error("no error for a header without a colon")
	}
}
