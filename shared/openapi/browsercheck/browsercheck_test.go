package browsercheck_test

import (
	"context"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/openapi"
	"github.com/visgate/deployment-orchestrator/shared/openapi/browsercheck"
)

// requireBrowser skips the test when Chromium is missing, unless
// REQUIRE_BROWSER=1 (as in CI), where a missing browser is a failure.
func requireBrowser(t *testing.T) {
	t.Helper()
	if _, err := browsercheck.ChromiumPath(); err != nil {
		if os.Getenv("REQUIRE_BROWSER") == "1" {
			t.Fatalf("REQUIRE_BROWSER=1: %v", err)
		}
		t.Skip(err)
	}
}

// docsServer serves the documentation and a /health like the service's.
func docsServer(t *testing.T, docs http.Handler) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.Handle("/", docs)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// screenshotDir keeps the screenshots in $BROWSERCHECK_SCREENSHOTS when set
// (to look at them), else in the test's temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("BROWSERCHECK_SCREENSHOTS"); d != "" {
		return filepath.Join(d, t.Name())
	}
	return t.TempDir()
}

func TestCheckDocs(t *testing.T) {
	requireBrowser(t)
	srv := docsServer(t, openapi.Handler())
	dir := screenshotDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if err := browsercheck.CheckDocs(ctx, srv.URL, dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{browsercheck.ScreenshotSwaggerUI, browsercheck.ScreenshotTryItOut, browsercheck.ScreenshotReDoc} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 600 {
			t.Errorf("%s: %v is too small", name, b)
		}
	}
}

// withCSP replaces the Content-Security-Policy of one page.
func withCSP(h http.Handler, path string, edit func(string) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Security-Policy", edit(rec.Header().Get("Content-Security-Policy")))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// The check does see violations, and each source the pages' policies allow
// beyond 'self' is needed: take it away and the page breaks the policy.
func TestCheckDocsReportsCSPViolations(t *testing.T) {
	requireBrowser(t)
	cases := []struct {
		name, path, remove, want string
	}{
		{"ReDoc injects styles", openapi.ReDocPath, " 'unsafe-inline'", "style-src"},
		{"ReDoc searches in a blob: worker", openapi.ReDocPath, " worker-src blob:;", "worker-src"},
		{"Swagger UI icons are data: images", openapi.SwaggerPath, " data:", "img-src"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			edited := withCSP(openapi.Handler(), c.path, func(csp string) string {
				if !strings.Contains(csp, c.remove) {
					t.Fatalf("policy %q has no %q", csp, c.remove)
				}
				return strings.Replace(csp, c.remove, "", 1)
			})
			srv := docsServer(t, edited)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := browsercheck.CheckDocs(ctx, srv.URL, "")
			if err == nil {
				t.Fatalf("CheckDocs passed with %q removed from the policy of %s", c.remove, c.path)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error does not name %s:\n%v", c.want, err)
			}
			t.Logf("CheckDocs: %v", err)
		})
	}
}

func TestCheckDocsReportsABrokenTryItOut(t *testing.T) {
	requireBrowser(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"down"}`))
	})
	mux.Handle("/", openapi.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := browsercheck.CheckDocs(ctx, srv.URL, "")
	if err == nil || !strings.Contains(err.Error(), "try it out GET /health") {
		t.Fatalf("CheckDocs = %v, want a Try it out failure", err)
	}
}

func TestChromiumPathHonoursOverride(t *testing.T) {
	t.Setenv(browsercheck.EnvChromium, filepath.Join(t.TempDir(), "no-such-browser"))
	if _, err := browsercheck.ChromiumPath(); err == nil {
		t.Error("a missing $CHROMIUM_PATH was accepted")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(browsercheck.EnvChromium, self)
	if p, err := browsercheck.ChromiumPath(); err != nil || p != self {
		t.Errorf("ChromiumPath() = %q, %v; want %q", p, err, self)
	}
}
