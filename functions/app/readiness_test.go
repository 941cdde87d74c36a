package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/api"
	"github.com/visgate/deployment-orchestrator/shared/store/firestore"
	"github.com/visgate/deployment-orchestrator/shared/store/storetest"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

// emulator runs scripts/firestore-emulator.sh for a private emulator on its
// own port (the shared one keeps serving the other tests).
type emulator struct {
	t    *testing.T
	port int
	dir  string
}

func (e *emulator) run(cmd string) {
	e.t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "firestore-emulator.sh")
	c := exec.Command("bash", script, cmd)
	c.Env = append(os.Environ(), "FIRESTORE_PORT="+strconv.Itoa(e.port), "EMULATOR_DIR="+e.dir)
	if out, err := c.CombinedOutput(); err != nil {
		e.t.Fatalf("firestore-emulator.sh %s: %v\n%s", cmd, err, out)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func readiness(t *testing.T, h http.Handler) (int, map[string]string, time.Duration) {
	start := time.Now()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readiness", nil))
	var m map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("readiness body %q", rec.Body)
	}
	return rec.Code, m, time.Since(start)
}

// TestReadinessFollowsFirestore stops and restarts a Firestore emulator
// under a running API: /readiness must turn 503 (bounded by
// api.ReadinessTimeout, 1.5 s) and come back to 200.
func TestReadinessFollowsFirestore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own emulator")
	}
	// Needs what the shared emulator needs (gcloud, Java); same skip rule.
	storetest.RequireEnv(t, "FIRESTORE_EMULATOR_HOST", storetest.HowToFirestore)
	e := &emulator{t: t, port: freePort(t), dir: t.TempDir()}
	e.run("start")
	t.Cleanup(func() { e.run("stop") })
	t.Setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:"+strconv.Itoa(e.port))

	st, err := firestore.New(context.Background(), "demo-readiness", firestore.WithPingTimeout(api.ReadinessTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := (&api.Server{Store: st}).Function(api.FnService)

	// The first ping also opens the connection: on a loaded machine that
	// alone can outlast the budget, so wait for the first 200.
	waitReady := func(what string) {
		t.Helper()
		var code int
		var m map[string]string
		wait.Until(t, 60*time.Second, what, func() bool {
			code, m, _ = readiness(t, h)
			return code == 200 && m["status"] == "ready"
		}, func() string { return fmt.Sprintf("still %d %v", code, m) })
	}
	waitReady("emulator up")
	e.run("stop")
	code, m, took := readiness(t, h)
	if code != http.StatusServiceUnavailable || m["status"] != "unready" || m["error"] == "" {
		t.Fatalf("emulator down: %d %v", code, m)
	}
	t.Logf("503 after the emulator stopped, answered in %s", took)
	e.run("start")
	waitReady("emulator back")
}
