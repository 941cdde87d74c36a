package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/ratelimit"
	"github.com/visgate/deployment-orchestrator/shared/seal"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// countingStore counts reads; countingSealer counts decryptions (a KMS call
// in the cloud).
type countingStore struct {
	Store
	gets atomic.Int32
}

func (c *countingStore) Get(ctx context.Context, id string) (*deployment.Deployment, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, id)
}

type countingSealer struct {
	seal.Sealer
	opens atomic.Int32
}

func (c *countingSealer) Open(ctx context.Context, sealed []byte, ad string) (secret.Secret, error) {
	c.opens.Add(1)
	return c.Sealer.Open(ctx, sealed, ad)
}

// TestCallbackAnswersStrangersAlike: an unknown id and a known one with a
// wrong secret get the same answer, and checking costs no store read and no
// decryption; a valid report costs no decryption either.
func TestCallbackAnswersStrangersAlike(t *testing.T) {
	f := newFixture(t)
	id := body(t, f.do(t, "POST", "/v1/deployments", keyA, validCreate))["deployment_id"].(string)
	st := &countingStore{Store: f.srv.Store}
	sl := &countingSealer{Sealer: f.srv.Sealer}
	f.srv.Store, f.srv.Sealer = st, sl
	f.h = f.srv.Handler()

	answer := func(path string, hdr ...string) string {
		rec := f.do(t, "POST", path, "", `{"status":"ready"}`, hdr...)
		return fmt.Sprintf("%d %s", rec.Code, rec.Body)
	}
	known := answer("/internal/deployment-ready/"+id, InternalSecretHeader, "wrong-secret-0123456789")
	for _, other := range []string{
		answer("/internal/deployment-ready/dep_2026_00000000", InternalSecretHeader, "wrong-secret-0123456789"),
		answer("/internal/deployment-ready/dep_fake_123", InternalSecretHeader, "wrong-secret-0123456789"),
		answer("/internal/deployment-ready/" + id + "x"),
	} {
		if other != known {
			t.Errorf("an unknown id is answered %q, a known one with a wrong secret %q", other, known)
		}
	}
	if !strings.HasPrefix(known, "401 ") {
		t.Errorf("wrong secret = %s", known)
	}
	if g, o := st.gets.Load(), sl.opens.Load(); g != 0 || o != 0 {
		t.Errorf("wrong secrets cost %d store reads and %d decryptions, want none", g, o)
	}
	if _, err := f.store.Update(context.Background(), id, func(d *deployment.Deployment) error {
		d.RunPodEndpointID = "ep123"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rec := f.do(t, "POST", "/internal/deployment-ready/"+id, "", `{"status":"loading_model"}`, InternalSecretHeader, auth.CallbackSecret(f.srv.SigningKey, id).Reveal())
	if rec.Code != 200 || sl.opens.Load() != 0 {
		t.Errorf("valid report = %d %s with %d decryptions, want 200 and none", rec.Code, rec.Body, sl.opens.Load())
	}
}

// throttledFixture is newFixture with failed authentications limited to
// limit a minute per client address.
func throttledFixture(t *testing.T, limit int, clientAddr func(*http.Request) string) (*fixture, *logBuffer) {
	f := newFixture(t)
	f.srv.AuthFailures = ratelimit.NewMemory(limit, time.Minute, func() time.Time { return *f.clock })
	f.srv.ClientAddr = clientAddr
	logs := &logBuffer{}
	f.srv.Log = newTestLogger(logs)
	f.h = f.srv.Handler()
	return f, logs
}

// TestFailedAuthenticationIsThrottled: 300 wrong keys in a row from one
// address get 401 until the limit, then 429 with Retry-After in the
// contract's shape; the right key from that address is served; the log says
// it once, not per attempt.
func TestFailedAuthenticationIsThrottled(t *testing.T) {
	const limit = 10
	f, logs := throttledFixture(t, limit, nil)
	from := func(addr, key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/deployments", nil)
		req.RemoteAddr = addr + ":40000"
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		return rec
	}
	var codes [2]int
	for i := range 300 {
		rec := from("198.51.100.7", fmt.Sprintf("wrong-key-%04d-0123456789", i))
		switch rec.Code {
		case 401:
			codes[0]++
		case 429:
			codes[1]++
			if i == limit {
				checkThrottled(t, rec)
			}
		default:
			t.Fatalf("attempt %d = %d", i, rec.Code)
		}
	}
	if codes != [2]int{limit, 300 - limit} {
		t.Errorf("401s and 429s = %v, want %d then %d", codes, limit, 300-limit)
	}
	if rec := from("198.51.100.7", keyA); rec.Code != 200 {
		t.Errorf("the right key from a throttled address = %d, want 200 (only failures are throttled)", rec.Code)
	}
	if rec := from("203.0.113.50", "wrong-key-other-0123456789"); rec.Code != 401 {
		t.Errorf("a wrong key from another address = %d, want 401", rec.Code)
	}
	if n := strings.Count(logs.take(), "throttling"); n != 1 {
		t.Errorf("%d log lines about throttling for 300 failures, want 1", n)
	}
	*f.clock = f.clock.Add(time.Minute)
	if rec := from("198.51.100.7", "wrong-key-again-0123456789"); rec.Code != 401 {
		t.Errorf("a wrong key a minute later = %d, want 401", rec.Code)
	}
}

// TestValidCredentialsPassTheThrottle: behind one address (a NAT, RunPod's
// egress), a stranger's wrong API keys and guessed callback secrets never
// refuse a valid API key or a worker's valid report, and the two kinds of
// failure are counted apart.
func TestValidCredentialsPassTheThrottle(t *testing.T) {
	const limit = 10
	f, _ := throttledFixture(t, limit, nil)
	id := f.downloading(t)
	const shared = "198.51.100.7"
	from := func(method, path, b string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(b))
		req.RemoteAddr = shared + ":40000"
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		return rec
	}
	wrongKey := func(i int) int {
		return from("GET", "/v1/deployments/"+id, "", "Authorization", fmt.Sprintf("Bearer wrong-key-%04d-0123456789", i)).Code
	}
	wrongSecret := func() int {
		return from("POST", "/internal/deployment-ready/"+id, `{"status":"ready"}`, InternalSecretHeader, "a-guess-0123456789").Code
	}
	secret := auth.CallbackSecret(f.srv.SigningKey, id).Reveal()

	for i := range 2 * limit {
		if got, want := wrongKey(i), map[bool]int{true: 401, false: 429}[i < limit]; got != want {
			t.Fatalf("wrong key %d = %d, want %d", i, got, want)
		}
	}
	if rec := from("GET", "/v1/deployments/"+id, "", "Authorization", "Bearer "+keyA); rec.Code != 200 {
		t.Errorf("a valid API key after %d wrong ones from its address = %d %s, want 200", 2*limit, rec.Code, rec.Body)
	}
	if code := wrongSecret(); code != 401 {
		t.Errorf("a wrong callback secret after wrong API keys = %d, want 401 (counted apart)", code)
	}
	if rec := from("POST", "/internal/deployment-ready/"+id, `{"status":"loading_model"}`, InternalSecretHeader, secret); rec.Code != 200 {
		t.Errorf("the worker's valid report after wrong API keys from its address = %d %s, want 200", rec.Code, rec.Body)
	}
	for range 2 * limit {
		wrongSecret()
	}
	if code := wrongSecret(); code != 429 {
		t.Errorf("wrong callback secrets past the limit = %d, want 429", code)
	}
	rec := from("POST", "/internal/deployment-ready/"+id, `{"status":"ready"}`, InternalSecretHeader, secret)
	if rec.Code != 200 || body(t, rec)["status"] != "ready" {
		t.Errorf("the worker's valid ready report after guessed secrets from its address = %d %s, want 200 ready", rec.Code, rec.Body)
	}
	if rec := from("GET", "/v1/deployments/"+id, "", "Authorization", "Bearer "+keyA); rec.Code != 200 {
		t.Errorf("a valid API key while both kinds are throttled = %d, want 200", rec.Code)
	}
}

// TestCallbackFailuresAreThrottled: guessing callback secrets is throttled
// the same way.
func TestCallbackFailuresAreThrottled(t *testing.T) {
	const limit = 5
	f, _ := throttledFixture(t, limit, nil)
	var last *httptest.ResponseRecorder
	for i := range limit + 3 {
		last = f.do(t, "POST", "/internal/deployment-ready/dep_2026_0000000"+fmt.Sprint(i%10), "", `{"status":"ready"}`, InternalSecretHeader, "guess")
		if i < limit && last.Code != 401 {
			t.Fatalf("guess %d = %d, want 401", i, last.Code)
		}
	}
	checkThrottled(t, last)
}

// TestThrottleUsesTheFrontEndsAddress: in the cloud the client is the entry
// Google's front end appended to X-Forwarded-For; rotating what the client
// itself puts on the left does not escape the throttle.
func TestThrottleUsesTheFrontEndsAddress(t *testing.T) {
	const limit = 5
	f, _ := throttledFixture(t, limit, func(r *http.Request) string { return httpx.ClientAddr(r, 0) })
	var last *httptest.ResponseRecorder
	for i := range limit + 1 {
		req := httptest.NewRequest("GET", "/v1/deployments", nil)
		req.RemoteAddr = "169.254.1.1:80" // Google's front end
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.0.0.%d, 203.0.113.9", i))
		req.Header.Set("Authorization", "Bearer wrong-key-0123456789")
		last = httptest.NewRecorder()
		f.h.ServeHTTP(last, req)
	}
	checkThrottled(t, last)
	req := httptest.NewRequest("GET", "/v1/deployments", nil)
	req.RemoteAddr = "169.254.1.1:80"
	req.Header.Set("X-Forwarded-For", "203.0.113.10")
	req.Header.Set("Authorization", "Bearer "+keyA)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("another client behind the same front end = %d, want 200", rec.Code)
	}
}

func checkThrottled(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code != 429 {
		t.Fatalf("status %d, want 429: %s", rec.Code, rec.Body)
	}
	if ra := rec.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("429 without a Retry-After: %q", ra)
	}
	b := body(t, rec)
	if b["error"] != "RateLimitError" || b["details"].(map[string]any)["retry_after_seconds"] == nil {
		t.Errorf("429 body %s", rec.Body)
	}
}

func newTestLogger(w *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
