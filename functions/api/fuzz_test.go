package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/catalog"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/seal"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/store/bolt"
)

// spyStore counts the writes that took effect.
type spyStore struct {
	Store
	mu     sync.Mutex
	writes []string
}

func (s *spyStore) note(w string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, w)
}

func (s *spyStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.writes
	s.writes = nil
	return w
}

func (s *spyStore) Create(ctx context.Context, d *deployment.Deployment) error {
	err := s.Store.Create(ctx, d)
	if err == nil {
		s.note("Create " + d.ID)
	}
	return err
}

func (s *spyStore) Update(ctx context.Context, id string, fn store.UpdateFunc) (*deployment.Deployment, error) {
	d, err := s.Store.Update(ctx, id, fn)
	if err == nil {
		s.note("Update " + id)
	}
	return d, err
}

func (s *spyStore) ClaimIdempotency(ctx context.Context, rec store.Idempotency) (*store.Idempotency, error) {
	existing, err := s.Store.ClaimIdempotency(ctx, rec)
	if err == nil && existing == nil {
		s.note("ClaimIdempotency " + rec.Key)
	}
	return existing, err
}

func (s *spyStore) ReleaseIdempotency(ctx context.Context, owner, key string) error {
	err := s.Store.ReleaseIdempotency(ctx, owner, key)
	if err == nil {
		s.note("ReleaseIdempotency " + key)
	}
	return err
}

// fuzzFixture is newFixture for a fuzz target: one server for every input
// (opening a store per input would make the fuzzer crawl), no rate limit,
// writes spied on.
func fuzzFixture(tb testing.TB) (*fixture, *spyStore, *logBuffer) {
	tb.Helper()
	dir := tb.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	sealer, err := seal.LocalKeyset(filepath.Join(dir, "keyset.json"))
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := auth.ParseKeyring(keyA+","+keyB, "")
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	f := &fixture{store: st, dir: dir, clock: &now}
	clock := func() time.Time { return *f.clock }
	spy := &spyStore{Store: st}
	f.srv = &Server{
		Store: spy, Sealer: sealer, Keys: keys,
		RateLimit: 100, // no Limiter: the 429 path is TestRateLimit's
		Models:    catalog.Default(), GPUs: gpu.Default(),
		SigningKey: secret.New("test-signing-key-0123456789"),
		Now:        clock,
	}
	logs := &logBuffer{}
	f.srv.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.h = f.srv.Handler()
	return f, spy, logs
}

// headerValue reports whether v can travel as an HTTP header value (what a
// client can send at all), after the server trims it as net/http does.
func headerValue(v string) (string, bool) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return "", false
		}
	}
	return strings.Trim(v, " \t"), true
}

// checkErrorShape fails unless a non-2xx response is the contract's error:
// a JSON object with exactly error (non-empty string), message (string) and
// details (object).
func checkErrorShape(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 200 && rec.Code < 300 {
		return
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%d with Content-Type %q", rec.Code, ct)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%d body %q is not a JSON object: %v", rec.Code, rec.Body, err)
	}
	var e struct {
		Error   string         `json:"error"`
		Message *string        `json:"message"`
		Details map[string]any `json:"details"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || len(m) != 3 || e.Error == "" || e.Message == nil || e.Details == nil {
		t.Fatalf("%d body %q is not {error, message, details}", rec.Code, rec.Body)
	}
}

// checkNoLeak fails if the response or the log lines carry s, in clear or
// JSON-escaped. A short s, or one that may be echoed legitimately (it is in
// public, the non-secret part of the request), proves nothing and is not
// checked.
func checkNoLeak(t *testing.T, rec *httptest.ResponseRecorder, logs, what, s, public string) {
	t.Helper()
	s = strings.TrimSpace(s)
	if len(s) < 12 || strings.Contains(public, s) {
		return
	}
	q, _ := json.Marshal(s)
	var hdr strings.Builder
	_ = rec.Header().Write(&hdr)
	for _, form := range []string{s, string(q[1 : len(q)-1])} {
		if strings.Contains(rec.Body.String(), form) || strings.Contains(hdr.String(), form) {
			t.Fatalf("response %d leaks %s %q:\n%s%s", rec.Code, what, s, hdr.String(), rec.Body)
		}
		if strings.Contains(logs, form) {
			t.Fatalf("log leaks %s %q:\n%s", what, s, logs)
		}
	}
}

// logBuffer collects the server's log lines of one input.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// take returns the lines so far and forgets them.
func (b *logBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

func FuzzCreateDeployment(f *testing.F) {
	big := `{"hf_model_id":"a/b","user_runpod_key":"` + strings.Repeat("x", httpx.MaxBody) + `"}`
	for _, seed := range []struct {
		body, authz, idem string
		hasIdem           bool
	}{
		{validCreate, "Bearer " + keyA, "", false},
		{validCreate, "Bearer " + keyA, "idem-1", true},
		{`{"model_name":"veo3","provider":"fal","user_runpod_key":"rpa_SECRETSECRET1","user_webhook_url":"https://example.com/w"}`, "Bearer " + keyB, "", false},
		{validCreate, "", "", false},
		{validCreate, "Bearer wrong-key-0123456789", "", false},
		{validCreate, "bearer " + keyA, "", false},
		{validCreate, "Bearer " + keyA, "", true},
		{validCreate, "Bearer " + keyA, "idem with spaces", true},
		{`{"hf_model_id":"a/b","hf_model_id":"c/d","user_runpod_key":"rpa_SECRETSECRET2","user_webhook_url":"https://example.com/w"}`, "Bearer " + keyA, "", false},
		{`{"user_runpod_key":{"nested":["rpa_SECRETSECRET3"]},"hf_token":123}`, "Bearer " + keyA, "", false},
		{`{"hf_model_id":"a/b","user_runpod_key":"rpa_SECRETSECRET4","user_webhook_url":"http://169.254.169.254/","min_workers":1e400,"max_workers":-0}`, "Bearer " + keyA, "", false},
		{`{"hf_model_id":"a/b","user_runpod_key":"rpa SECRET SECRET5","hf_token":"hf_\u0000SECRETSECRET","user_webhook_url":"https://example.com/w"}`, "Bearer " + keyA, "", false},
		{validCreate + ` trailing`, "Bearer " + keyA, "", false},
		{"\xef\xbb\xbf" + validCreate, "Bearer " + keyA, "", false},
		{`[` + validCreate + `]`, "Bearer " + keyA, "", false},
		{``, "Bearer " + keyA, "", false},
		{`null`, "Bearer " + keyA, "", false},
		{big, "Bearer " + keyA, "", false},
		{`{"hf_model_id":null,"user_runpod_key":null,"user_webhook_url":null}`, "Bearer " + keyA, "", false},
		{`{"hf_model_id":"org/name_","user_runpod_key":"rpa_SECRETSECRET6","user_webhook_url":"https://example.com/w","gpu_tier":null}`, "Bearer " + keyA, "", false},
		{`{"hf_model_id":"org/name-","user_runpod_key":"rpa_SECRETSECRET7","user_webhook_url":"https://example.com/w","min_workers":"3"}`, "Bearer " + keyA, "", false},
		{`{"hf_model_id":"_a/b.git","user_runpod_key":"rpa_SECRETSECRET8","user_webhook_url":"https://example.com/w","max_workers":"2","idle_timeout_seconds":null}`, "Bearer " + keyA, "", false},
	} {
		f.Add([]byte(seed.body), seed.authz, seed.idem, seed.hasIdem)
	}
	fx, spy, logs := fuzzFixture(f)
	f.Fuzz(func(t *testing.T, body []byte, authz, idem string, hasIdem bool) {
		authz, ok := headerValue(authz)
		if !ok {
			t.Skip("not a header value")
		}
		idem, ok = headerValue(idem)
		if !ok {
			t.Skip("not a header value")
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/deployments", bytes.NewReader(body))
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		if hasIdem {
			req.Header.Set("Idempotency-Key", idem)
		}
		spy.take()
		logs.take()

		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)

		switch rec.Code {
		case 202, 400, 401, 409, 413, 422, 429:
		default:
			t.Fatalf("status %d, not one the contract documents for a create:\n%s", rec.Code, rec.Body)
		}
		checkErrorShape(t, rec)
		logged := logs.take()
		if strings.Contains(logged, "panic serving request") {
			t.Fatalf("the handler panicked:\n%s", logged)
		}
		writes := spy.take()
		// Nothing written, so nothing owed: the change feed enqueues nothing.
		if rec.Code != http.StatusAccepted && len(writes) != 0 {
			t.Fatalf("a %d create wrote %v:\n%s", rec.Code, writes, rec.Body)
		}

		// The secrets of the request never come back.
		var raw map[string]json.RawMessage
		if json.Unmarshal(body, &raw) != nil {
			return
		}
		if rec.Code != 400 && rec.Code != 401 && rec.Code != 413 {
			checkFieldTypes(t, rec, raw)
		}
		secrets := map[string]string{}
		for _, name := range []string{"user_runpod_key", "hf_token"} {
			var s string
			if json.Unmarshal(raw[name], &s) == nil {
				secrets[name] = s
			}
			delete(raw, name)
		}
		rest, _ := json.Marshal(raw)
		public := string(rest) + "\n" + authz + "\n" + idem
		for name, s := range secrets {
			checkNoLeak(t, rec, logged, name, s, public)
		}
	})
}

// integerFields are the create body's integer fields.
var integerFields = []string{"min_workers", "max_workers", "idle_timeout_seconds"}

// checkFieldTypes checks the create's typing rules on a body that got past
// authentication and parsing: a null in any known field, or a string in an
// integer field, is a 422 naming that field; a model id is accepted only when
// the Hub's rule (huggingface.ValidID) accepts it.
func checkFieldTypes(t *testing.T, rec *httptest.ResponseRecorder, raw map[string]json.RawMessage) {
	t.Helper()
	var details map[string]any
	if rec.Code == http.StatusUnprocessableEntity {
		var e struct {
			Details map[string]any `json:"details"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		details = e.Details
	}
	mustName := func(field, why string) {
		t.Helper()
		if _, ok := details[field]; !ok {
			t.Fatalf("%s: %d %s, want a 422 naming %s", why, rec.Code, rec.Body, field)
		}
	}
	for name, v := range raw {
		if !createFields[name] {
			continue
		}
		trimmed := bytes.TrimSpace(v)
		if string(trimmed) == "null" {
			mustName(name, name+" is null")
		}
		if slices.Contains(integerFields, name) && len(trimmed) > 0 && trimmed[0] == '"' {
			mustName(name, name+" is a string")
		}
	}
	var id string
	if json.Unmarshal(raw["hf_model_id"], &id) == nil && raw["model_name"] == nil {
		id = strings.TrimSpace(id)
		switch {
		case rec.Code == http.StatusAccepted && !huggingface.ValidID(id):
			t.Fatalf("accepted hf_model_id %q, which the Hub's rule refuses", id)
		case details["hf_model_id"] != nil && huggingface.ValidID(id) && len(id) <= 200:
			t.Fatalf("refused hf_model_id %q, which the Hub's rule accepts: %s", id, rec.Body)
		}
	}
}

// FuzzListQuery: any query string the list endpoint gets is answered in the
// contract's shape, and one url.ParseQuery cannot read is a 422, never
// served as if the broken part were absent.
func FuzzListQuery(f *testing.F) {
	for _, seed := range []string{"", "limit=5", "%zz=1", "a;b=c", "limit=5;x=1", "limit=1&limit=2", "status=ready", "limit=0", "cursor=%ff",
		"limit=", "cursor=", "=1"} {
		f.Add(seed)
	}
	fx, _, logs := fuzzFixture(f)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest(http.MethodGet, "/v1/deployments", nil)
		req.URL.RawQuery = rawQuery
		req.Header.Set("Authorization", "Bearer "+keyA)
		logs.take()
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		if strings.Contains(logs.take(), "panic serving request") {
			t.Fatalf("the handler panicked on %q", rawQuery)
		}
		switch rec.Code {
		case 200, 422:
		default:
			t.Fatalf("?%s = %d %s", rawQuery, rec.Code, rec.Body)
		}
		checkErrorShape(t, rec)
		q, err := url.ParseQuery(rawQuery)
		if err != nil && rec.Code != http.StatusUnprocessableEntity {
			t.Fatalf("?%s (malformed: %v) = %d, want 422", rawQuery, err, rec.Code)
		}
		for name, vs := range q {
			if (name == "" || slices.Contains(vs, "")) && rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("?%s (an empty name or value) = %d, want 422", rawQuery, rec.Code)
			}
		}
	})
}

func FuzzCallback(f *testing.F) {
	fx, _, logs := fuzzFixture(f)
	// Two deployments: the fuzzer moves them along (or not) with the right
	// secret (useSecret), and tries anything else with its own.
	var ids, secrets []string
	for range 2 {
		req := httptest.NewRequest(http.MethodPost, "/v1/deployments", strings.NewReader(validCreate))
		req.Header.Set("Authorization", "Bearer "+keyA)
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			f.Fatalf("create = %d %s", rec.Code, rec.Body)
		}
		var out createResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			f.Fatal(err)
		}
		sec := auth.CallbackSecret(fx.srv.SigningKey, out.DeploymentID)
		ids, secrets = append(ids, out.DeploymentID), append(secrets, sec.Reveal())
	}
	for _, seed := range []struct {
		which     uint8
		id        string
		useSecret bool
		secret    string
		body      string
	}{
		{0, "", true, "", `{"status":"downloading_model"}`},
		{0, "", true, "", `{"status":"loading_model","message":"50%"}`},
		{1, "", true, "", `{"status":"failed","error":"CUDA out of memory"}`},
		{0, "", true, "", `{"status":"ready"}`},
		{0, "", true, "", `{"status":"ready","status":"failed"}`},
		{0, "", true, "", `{"status":"bogus"}`},
		{0, "", true, "", `{"status":"ready","extra":1}`},
		{0, "", true, "", `{"status":["ready"]}`},
		{0, "", true, "", `{"status":"ready"} {}`},
		{0, "", true, "", "\xef\xbb\xbf{\"status\":\"ready\"}"},
		{0, "", true, "", ``},
		{0, "", true, "", `{"status":"failed","error":"` + strings.Repeat("e", httpx.MaxBody) + `"}`},
		{0, "", false, "", `{"status":"ready"}`},
		{0, "", false, "wrong-secret", `{"status":"ready"}`},
		{0, "dep_fake_123", false, "x", `{"status":"ready"}`},
		{0, "dep_2026_00000000", true, "", `{"status":"ready"}`},
	} {
		f.Add(seed.which, seed.id, seed.useSecret, seed.secret, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, which uint8, id string, useSecret bool, secretValue string, body []byte) {
		i := int(which) % len(ids)
		if id == "" {
			id = ids[i]
		}
		if strings.ContainsAny(id, "/?#%") || id == "." || id == ".." || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			t.Skip("not one path segment")
		}
		if useSecret {
			secretValue = secrets[i]
		}
		secretValue, ok := headerValue(secretValue)
		if !ok {
			t.Skip("not a header value")
		}
		req := httptest.NewRequest(http.MethodPost, "/internal/deployment-ready/x", bytes.NewReader(body))
		req.URL.Path = "/internal/deployment-ready/" + id
		if secretValue != "" {
			req.Header.Set(InternalSecretHeader, secretValue)
		}
		logs.take()
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		logged := logs.take()
		if strings.Contains(logged, "panic serving request") {
			t.Fatalf("the handler panicked:\n%s", logged)
		}

		switch rec.Code {
		case 200, 400, 401, 404, 413, 422:
		default:
			t.Fatalf("status %d, not one the contract documents for the callback:\n%s", rec.Code, rec.Body)
		}
		checkErrorShape(t, rec)
		// Without the id's own secret, every id (known or not) gets the same 401.
		if secretValue != auth.CallbackSecret(fx.srv.SigningKey, id).Reveal() && rec.Code != http.StatusUnauthorized {
			t.Fatalf("a wrong secret for %q got %d, want the 401 every stranger gets:\n%s", id, rec.Code, rec.Body)
		}
		public := string(body) + "\n" + id + "\n" + secretValue
		for _, s := range secrets {
			checkNoLeak(t, rec, logged, "callback secret", s, public)
		}
		checkNoLeak(t, rec, logged, "user_runpod_key", "rpa_SECRET123", public)
		checkNoLeak(t, rec, logged, "hf_token", "hf_SECRET456", public)
		if rec.Code == http.StatusOK {
			var out callbackResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.DeploymentID != id || out.Status == "" {
				t.Fatalf("200 body %q for %s", rec.Body, id)
			}
		}
	})
}
