package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/logging"
	"github.com/visgate/deployment-orchestrator/shared/syncbuf"
)

// logLines parses the JSON log lines in out.
func logLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestReadsLoggedAtDebugAndCounted: at info level a successful GET writes no
// line of its own, writes and errors keep theirs, and once a minute has
// passed the next read writes one line counting the reads; at debug level
// every read has its line.
func TestReadsLoggedAtDebugAndCounted(t *testing.T) {
	f := newFixture(t)
	var out syncbuf.Buffer
	f.srv.Log = logging.New(&out, "info", "")
	id := body(t, f.do(t, "POST", "/v1/deployments", keyA, validCreate))["deployment_id"].(string)
	for range 5 {
		f.do(t, "GET", "/v1/deployments/"+id, keyA, "")
	}
	f.do(t, "GET", "/v1/deployments/dep_2026_00000000", keyA, "") // 404
	f.do(t, "GET", "/v1/deployments", keyA, "")
	var got []string
	for _, l := range logLines(t, out.String()) {
		if l["message"] == "request" {
			got = append(got, l["method"].(string)+" "+l["path"].(string))
		}
	}
	want := []string{"POST /v1/deployments", "GET /v1/deployments/dep_2026_00000000"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("request lines at info: %q, want %q", got, want)
	}
	if strings.Contains(out.String(), "reads served") {
		t.Errorf("a summary before a minute passed:\n%s", out.String())
	}

	out.Reset()
	*f.clock = f.clock.Add(ReadSummaryInterval)
	f.do(t, "GET", "/v1/deployments/"+id, keyA, "")
	f.do(t, "GET", "/v1/deployments/"+id, keyA, "") // counted in the next summary
	lines := logLines(t, out.String())
	if len(lines) != 1 || lines[0]["message"] != "reads served" || lines[0]["severity"] != "INFO" ||
		lines[0]["count"] != float64(7) || lines[0]["seconds"] != ReadSummaryInterval.Seconds() {
		t.Errorf("after a minute, lines %v; want one INFO \"reads served\" counting 7 reads over 60 s", lines)
	}

	out.Reset()
	f.srv.Log = logging.New(&out, "debug", "")
	*f.clock = f.clock.Add(time.Second)
	f.do(t, "GET", "/v1/deployments/"+id, keyA, "")
	lines = logLines(t, out.String())
	if len(lines) != 1 || lines[0]["message"] != "request" || lines[0]["severity"] != "DEBUG" || lines[0]["status"] != float64(200) ||
		lines[0]["request_id"] == nil {
		t.Errorf("at debug level, lines %v; want one DEBUG \"request\" line with its status and request id", lines)
	}
}
