package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/visgate/deployment-orchestrator/scripts/loadgen/load/loadtest"
)

func TestRealMainReportsAndFailsOnErrors(t *testing.T) {
	srv := loadtest.NewServer(t, "Bearer k")
	var out bytes.Buffer
	if err := realMain([]string{"-url", srv.URL + "/ok", "-n", "50", "-c", "2", "-H", "Authorization: Bearer k"}, &out); err != nil {
		t.Fatal(err)
	}
	if srv.Hits.Load() != 50 || srv.Authed.Load() != 50 || !strings.Contains(out.String(), "50 requests (0 errors)") || !strings.Contains(out.String(), "p99") {
		t.Errorf("hits %d, output %q", srv.Hits.Load(), out.String())
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
