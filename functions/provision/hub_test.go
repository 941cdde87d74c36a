package provision_test

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/syncbuf"
)

// TestUnreachableHubFailsWithinTheBoundNamingTheCause: with the Hub down,
// validate logs every retry at WARN with its cause, stops retrying once
// HubWait has passed (not after MaxRetries slow backoffs), and the user's
// error says why.
func TestUnreachableHubFailsWithinTheBoundNamingTheCause(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	var logs syncbuf.Buffer
	e := newEnv(t, options{steps: func(s *provision.Steps) {
		s.Hub = huggingface.NewClient(down, nil)
		s.HubWait = 600 * time.Millisecond
		s.RetryBase = 100 * time.Millisecond // 200 ms, 400 ms, ...: MaxRetries would take minutes
		s.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}})
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.settle(id)
	if d.Status != deployment.StatusFailed {
		t.Fatalf("status %s, want failed\n%s", d.Status, logText(d))
	}
	if !strings.Contains(d.Error, "connection refused") || !strings.Contains(d.Error, "gave up after") || strings.Contains(d.Error, "attempts") {
		t.Errorf("error %q: want the cause and the time waited", d.Error)
	}
	var warns int
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "Hugging Face Hub") {
			warns++
			if !strings.Contains(line, "connection refused") || !strings.Contains(line, id) {
				t.Errorf("retry log line without its cause or deployment: %s", line)
			}
		}
	}
	if warns < 2 {
		t.Errorf("%d WARN lines for the Hub's retries, want one per retry:\n%s", warns, logs.String())
	}
}
