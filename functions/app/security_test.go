package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

// wiredHandler wires the embedded runtime with the Hub and RunPod at a closed
// loopback port: nothing leaves the machine.
func wiredHandler(t *testing.T, extraEnv ...string) http.Handler {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	env := map[string]string{"DATA_DIR": t.TempDir(), "API_KEYS": "wired-key-0123456789", "HF_API_URL": closed, "RUNPOD_API_URL": closed}
	for i := 0; i+1 < len(extraEnv); i += 2 {
		env[extraEnv[i]] = extraEnv[i+1]
	}
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

// TestWiredBehindGateway: with BEHIND_GATEWAY=1 the wired service reads the
// caller's key from X-Forwarded-Authorization, where API Gateway moves it,
// and never from Authorization, which then holds the gateway's ID token.
func TestWiredBehindGateway(t *testing.T) {
	const idToken = "Bearer eyJhbGciOiJSUzI1NiJ9.gateway.token"
	for _, tc := range []struct {
		name string
		env  []string
		hdr  []string
		want int
	}{
		{"gateway layout, valid key", []string{"BEHIND_GATEWAY", "1"}, []string{"Authorization", idToken, "X-Forwarded-Authorization", "Bearer wired-key-0123456789"}, http.StatusOK},
		{"gateway layout, no key", []string{"BEHIND_GATEWAY", "1"}, []string{"Authorization", idToken}, http.StatusUnauthorized},
		{"key in Authorization behind the gateway", []string{"BEHIND_GATEWAY", "1"}, []string{"Authorization", "Bearer wired-key-0123456789"}, http.StatusUnauthorized},
		{"direct, key in Authorization", nil, []string{"Authorization", "Bearer wired-key-0123456789"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := wiredHandler(t, tc.env...)
			if rec := serve(h, "GET", "/v1/deployments", "198.51.100.7:5000", "", tc.hdr...); rec.Code != tc.want {
				t.Errorf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
		})
	}
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

// TestWiredSimulatorsKeepWebhooksLocal: with SIMULATE=1 the wired service
// refuses a webhook URL on a public host at create (422, nothing stored)
// and its sender never reaches one; a loopback receiver works.
// WEBHOOK_ALLOW_PUBLIC=1 opts back in (checked with an otherwise invalid
// request, so that nothing is stored and nothing is sent).
func TestWiredSimulatorsKeepWebhooksLocal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	public := []string{"https://example.com/webhook", "https://fuzzed-host-7f3a.com/x", "http://93.184.215.14/hook"}
	for _, allowPublic := range []string{"", "1"} {
		env := map[string]string{"DATA_DIR": t.TempDir(), "API_KEYS": "wired-key-0123456789", "HF_API_URL": closed, "RUNPOD_API_URL": closed,
			"SIMULATE": "1", "WEBHOOK_ALLOW_PUBLIC": allowPublic}
		a := embeddedApp(t, env)
		h := a.Handler()
		create := func(hook, tier string) (int, map[string]string) {
			rec := serve(h, "POST", "/v1/deployments", "127.0.0.1:5000",
				`{"hf_model_id":"openai-community/gpt2","user_runpod_key":"rpa_x","gpu_tier":"`+tier+`","user_webhook_url":"`+hook+`"}`,
				"Authorization", "Bearer wired-key-0123456789")
			var e struct {
				Details map[string]string `json:"details"`
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &e)
			return rec.Code, e.Details
		}
		for _, hook := range public {
			// Z9000 is no GPU: the request is a 422 whatever the URL.
			code, details := create(hook, "Z9000")
			reason, refused := details["user_webhook_url"]
			if code != http.StatusUnprocessableEntity || refused != (allowPublic == "") {
				t.Errorf("SIMULATE=1 WEBHOOK_ALLOW_PUBLIC=%q, webhook %s: %d %v; want user_webhook_url refused: %v", allowPublic, hook, code, details, allowPublic == "")
			}
			if allowPublic != "" {
				continue
			}
			if !strings.Contains(reason, "WEBHOOK_ALLOW_PUBLIC=1") {
				t.Errorf("the refusal of %s does not say how to opt in: %q", hook, reason)
			}
			if code, _ := create(hook, "A40"); code != http.StatusUnprocessableEntity {
				t.Errorf("SIMULATE=1, webhook %s, otherwise valid: %d, want 422", hook, code)
			}
			// A stored deployment of an opted-in run, resumed without the
			// opt-in: its webhook is refused before any request. The context
			// is cancelled, so that a sender that would try anyway sends
			// nothing either.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			r := a.Steps.Sender.Send(ctx, hook, secret.New("whsec_d2lyZWQtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2Q="), "msg_1", time.Now(), []byte(`{}`))
			if !errors.Is(r.Err, webhook.ErrNotLocal) || r.Retryable {
				t.Errorf("SIMULATE=1: the sender's answer for %s = %+v, want a final ErrNotLocal", hook, r)
			}
		}
		if allowPublic != "" {
			continue
		}
		if code, details := create("http://127.0.0.1:9/hook", "A40"); code != http.StatusAccepted {
			t.Errorf("SIMULATE=1, a loopback webhook: %d %v; want 202", code, details)
		}
		rec := serve(h, "GET", "/v1/deployments?include_deleted=true", "127.0.0.1:5000", "", "Authorization", "Bearer wired-key-0123456789")
		if n := strings.Count(rec.Body.String(), `"deployment_id"`); n != 1 {
			t.Errorf("SIMULATE=1: %d deployments stored, want only the loopback one", n)
		}
	}
}
