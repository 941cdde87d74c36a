package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/config"
)

// wiredHandler wires the embedded runtime with the Hub and RunPod at a closed
// loopback port: nothing leaves the machine.
func wiredHandler(t *testing.T) http.Handler {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	env := map[string]string{"DATA_DIR": t.TempDir(), "API_KEYS": "wired-key-0123456789", "HF_API_URL": closed, "RUNPOD_API_URL": closed}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	return a.Handler()
}

func serve(h http.Handler, method, path, remote string, body string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = remote
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestWiredServiceThrottlesWrongKeys: the wired service answers a run of
// wrong keys from one address with 429 and Retry-After, not 401 forever.
func TestWiredServiceThrottlesWrongKeys(t *testing.T) {
	h := wiredHandler(t)
	var throttled *httptest.ResponseRecorder
	for i := range 300 {
		rec := serve(h, "GET", "/v1/deployments", "198.51.100.7:5000", "", "Authorization", fmt.Sprintf("Bearer wrong-key-%04d-0123456789", i))
		if rec.Code == http.StatusTooManyRequests {
			throttled = rec
			break
		}
	}
	if throttled == nil || throttled.Header().Get("Retry-After") == "" {
		t.Fatal("300 wrong keys from one address: no 429 with Retry-After")
	}
}

// TestWiredCallbackAnswersStrangersAlike: without the secret, an existing
// deployment id and an unknown one get the same answer.
func TestWiredCallbackAnswersStrangersAlike(t *testing.T) {
	h := wiredHandler(t)
	rec := serve(h, "POST", "/v1/deployments", "127.0.0.1:5000",
		`{"hf_model_id":"openai-community/gpt2","user_runpod_key":"rpa_x","user_webhook_url":"https://example.com/h"}`,
		"Authorization", "Bearer wired-key-0123456789")
	var created struct {
		ID string `json:"deployment_id"`
	}
	if rec.Code != http.StatusAccepted || json.Unmarshal(rec.Body.Bytes(), &created) != nil {
		t.Fatalf("create = %d %s", rec.Code, rec.Body)
	}
	answer := func(id string) string {
		rec := serve(h, "POST", "/internal/deployment-ready/"+id, "127.0.0.1:5000", `{"status":"ready"}`, "X-Visgate-Internal-Secret", "a-guess-0123456789")
		return fmt.Sprintf("%d %s", rec.Code, rec.Body)
	}
	if known, unknown := answer(created.ID), answer("dep_2026_00000000"); known != unknown {
		t.Errorf("known id: %s; unknown id: %s; want the same answer", known, unknown)
	}
}
