// Package browsercheck opens the service's documentation pages in headless
// Chromium, as a person would, and checks that they work: every operation of
// the OpenAPI document is shown, Swagger UI's "Try it out" really calls the
// server, ReDoc renders, and the pages' Content-Security-Policy is never
// violated. It is a plain package so that end-to-end tests of the real server
// can call it.
//
// It drives Debian's Chromium (scripts/install-chromium.sh installs it) with
// github.com/chromedp/chromedp, in a fresh profile, with the flags that keep
// it off the network.
package browsercheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/visgate/deployment-orchestrator/shared/openapi"
)

// EnvChromium names an environment variable that overrides the browser
// binary ChromiumPath finds.
const EnvChromium = "CHROMIUM_PATH"

// ChromiumPath returns the Chromium binary to drive: $CHROMIUM_PATH if set,
// else Debian's /usr/bin/chromium, else "chromium" on $PATH.
func ChromiumPath() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", EnvChromium, err)
		}
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		return "", errors.New("chromium not found: run scripts/install-chromium.sh (Debian package chromium) or set " + EnvChromium)
	}
	return p, nil
}

// Screenshots CheckDocs writes into its screenshot directory.
const (
	ScreenshotSwaggerUI = "swagger-ui.png"
	ScreenshotTryItOut  = "swagger-ui-try-it-out.png"
	ScreenshotReDoc     = "redoc.png"
)

// How long one page may take to render, and one request from "Try it out".
const stepTimeout = 30 * time.Second

// CheckDocs checks the documentation served at baseURL (for example
// "http://127.0.0.1:8080"):
//
//   - /docs (Swagger UI) shows every operation of the OpenAPI document;
//   - in it, GET /health expands, "Try it out" and "Execute" send the request,
//     and the page shows the answer {"status":"ok"} with status 200;
//   - /redoc (ReDoc) shows every operation;
//   - neither page violates its Content-Security-Policy nor throws an
//     uncaught exception.
//
// It writes PNG screenshots (the Screenshot* names) into screenshotDir,
// creating it, unless screenshotDir is empty. All problems found are
// returned joined; nil means the pages work.
func CheckDocs(ctx context.Context, baseURL, screenshotDir string) error {
	ops, err := documentOperations()
	if err != nil {
		return err
	}
	if screenshotDir != "" {
		if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
			return err
		}
	}
	b, err := startBrowser(ctx)
	if err != nil {
		return err
	}
	defer b.close()

	base := strings.TrimSuffix(baseURL, "/")
	var problems []error
	if err := b.checkSwaggerUI(base, ops, screenshotDir); err != nil {
		problems = append(problems, fmt.Errorf("/docs: %w", err))
	}
	if err := b.checkReDoc(base, ops, screenshotDir); err != nil {
		problems = append(problems, fmt.Errorf("/redoc: %w", err))
	}
	problems = append(problems, b.consoleProblems()...)
	return errors.Join(problems...)
}

// operation is one operation of the document.
type operation struct {
	Method, Path, OperationID, Tag string
}

func (o operation) String() string { return o.Method + " " + o.Path }

func documentOperations() ([]operation, error) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	var ops []operation
	for p, item := range doc.Paths {
		for method, raw := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
			default:
				continue // parameters, summary, ...
			}
			var op struct {
				OperationID string   `json:"operationId"`
				Tags        []string `json:"tags"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("openapi document: %s %s: %w", method, p, err)
			}
			if op.OperationID == "" || len(op.Tags) == 0 {
				return nil, fmt.Errorf("openapi document: %s %s needs an operationId and a tag", method, p)
			}
			ops = append(ops, operation{strings.ToUpper(method), p, op.OperationID, op.Tags[0]})
		}
	}
	slices.SortFunc(ops, func(a, b operation) int { return strings.Compare(a.String(), b.String()) })
	return ops, nil
}

type browser struct {
	ctx     context.Context // the tab
	cancel  func()
	dataDir string

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	done    chan struct{}
}

// cspRecorder runs in every page before the page's own scripts (injected
// scripts are exempt from the page's CSP) and keeps each violation the
// browser reports to the page.
const cspRecorder = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.effectiveDirective + " refused " + (e.blockedURI || "inline") +
    (e.sourceFile ? " from " + e.sourceFile.split("?")[0] : ""));
});`

func startBrowser(ctx context.Context) (*browser, error) {
	exe, err := ChromiumPath()
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "browsercheck-profile-")
	if err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(dataDir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	b := &browser{
		ctx:     tabCtx,
		dataDir: dataDir,
		done:    make(chan struct{}),
		cancel: func() {
			cancelTab()
			cancelAlloc()
		},
	}
	// Console starts the browser, and subscribes before any page loads.
	messages := chromedp.Console(tabCtx)
	go func() {
		defer close(b.done)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	if err := chromedp.Do(tabCtx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspRecorder})
		return err
	})); err != nil {
		b.close()
		return nil, fmt.Errorf("start %s: %w", exe, err)
	}
	return b, nil
}

func (b *browser) close() {
	b.cancel()
	<-b.done
	// Chromium's children can still write into the profile for a moment
	// after it stops.
	for range 50 {
		if err := os.RemoveAll(b.dataDir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *browser) navigate(url string) error {
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(url))
	if err != nil {
		return err
	}
	if resp.Status != 200 {
		return fmt.Errorf("GET %s: status %d", url, resp.Status)
	}
	return nil
}

// eval evaluates a JavaScript expression through the DevTools protocol,
// which the page's CSP does not govern. (chromedp.Poll is not used: it builds
// its predicate with new Function, which a strict CSP rightly refuses.)
func eval[T any](b *browser, expr string) (T, error) {
	return chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
}

// waitFor evaluates expr until it is true. It gives up early when the page
// has violated its CSP: a page whose scripts or styles were refused may never
// get there, and the violation is the failure to report.
func (b *browser) waitFor(what, expr string) error {
	deadline := time.Now().Add(stepTimeout)
	probe := fmt.Sprintf(`({ok: !!(%s), violations: window.__cspViolations || []})`, expr)
	for {
		st, err := eval[waitState](b, probe)
		if err == nil && st.OK {
			return nil
		}
		if err == nil && len(st.Violations) > 0 {
			slices.Sort(st.Violations)
			return fmt.Errorf("waiting for %s: CSP violations: %s", what, strings.Join(slices.Compact(st.Violations), "; "))
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("waiting for %s: %w", what, err)
			}
			return fmt.Errorf("timed out after %s waiting for %s", stepTimeout, what)
		}
		select {
		case <-b.ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, b.ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type waitState struct {
	OK         bool     `json:"ok"`
	Violations []string `json:"violations"`
}

func (b *browser) screenshot(dir, name string) error {
	if dir == "" {
		return nil
	}
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return fmt.Errorf("screenshot %s: %w", name, err)
	}
	return os.WriteFile(filepath.Join(dir, name), png, 0o644)
}

// pageViolations returns the CSP violations the current page recorded.
func (b *browser) pageViolations() []string {
	v, err := eval[[]string](b, `window.__cspViolations || []`)
	if err != nil {
		return []string{"cannot read the page's CSP violations: " + err.Error()}
	}
	slices.Sort(v)
	return slices.Compact(v)
}

func (b *browser) checkSwaggerUI(base string, ops []operation, dir string) error {
	if err := b.navigate(base + openapi.SwaggerPath); err != nil {
		return err
	}
	if err := b.waitFor("Swagger UI to list the operations",
		fmt.Sprintf(`document.querySelectorAll("#swagger-ui .opblock").length >= %d`, len(ops))); err != nil {
		return errors.Join(err, b.swaggerError())
	}
	shown, err := eval[[]string](b, `Array.from(document.querySelectorAll("#swagger-ui .opblock")).map(function (e) {
	  var m = e.querySelector(".opblock-summary-method"), p = e.querySelector(".opblock-summary-path");
	  return (m ? m.textContent.trim() : "?") + " " + (p ? (p.getAttribute("data-path") || p.textContent.trim()) : "?");
	})`)
	if err != nil {
		return err
	}
	var problems []error
	for _, op := range ops {
		if !slices.Contains(shown, op.String()) {
			problems = append(problems, fmt.Errorf("operation %s is not shown (shown: %q)", op, shown))
		}
	}
	if err := b.screenshot(dir, ScreenshotSwaggerUI); err != nil {
		problems = append(problems, err)
	}
	if err := b.tryHealth(ops, dir); err != nil {
		problems = append(problems, err)
	}
	for _, v := range b.pageViolations() {
		problems = append(problems, fmt.Errorf("CSP violation: %s", v))
	}
	return errors.Join(problems...)
}

// swaggerError returns what Swagger UI shows when it cannot load the
// document, to explain a timeout.
func (b *browser) swaggerError() error {
	text, err := eval[string](b, `(function () {
	  var e = document.querySelector("#swagger-ui .errors-wrapper, #swagger-ui .loading-container, #swagger-ui");
	  return e ? e.innerText.slice(0, 500) : "(no #swagger-ui element)";
	})()`)
	if err != nil {
		return nil
	}
	return fmt.Errorf("the page shows: %q", text)
}

// tryHealth expands GET /health, presses "Try it out" (unless the UI starts
// in that mode) and "Execute", and reads the live response.
func (b *browser) tryHealth(ops []operation, dir string) error {
	i := slices.IndexFunc(ops, func(o operation) bool { return o.Method == "GET" && o.Path == "/health" })
	if i < 0 {
		return errors.New("the document has no GET /health")
	}
	block := fmt.Sprintf("#operations-%s-%s", ops[i].Tag, ops[i].OperationID)
	if err := chromedp.Do(b.ctx,
		chromedp.ScrollIntoView(chromedp.CSS(block)),
		chromedp.Click(chromedp.CSS(block+" .opblock-summary-control")),
	); err != nil {
		return fmt.Errorf("expand GET /health: %w", err)
	}
	tryButton := block + " .try-out__btn"
	if err := b.waitFor("the Try it out button", fmt.Sprintf(`!!document.querySelector(%q)`, tryButton)); err != nil {
		return err
	}
	label, err := eval[string](b, fmt.Sprintf(`document.querySelector(%q).textContent.trim()`, tryButton))
	if err != nil {
		return err
	}
	if strings.EqualFold(label, "Try it out") {
		if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(tryButton))); err != nil {
			return fmt.Errorf("click Try it out: %w", err)
		}
	}
	execute := block + " button.execute"
	if err := b.waitFor("the Execute button", fmt.Sprintf(`!!document.querySelector(%q)`, execute)); err != nil {
		return err
	}
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(execute))); err != nil {
		return fmt.Errorf("click Execute: %w", err)
	}
	table := block + " .live-responses-table"
	if err := b.waitFor("the live response", fmt.Sprintf(`(function () {
	  var s = document.querySelector(%q);
	  return !!s && s.textContent.trim() !== "";
	})()`, table+" .response .response-col_status")); err != nil {
		return err
	}
	res, err := eval[liveResponse](b, fmt.Sprintf(`(function () {
	  var row = document.querySelector(%q);
	  var body = row.querySelector(".response-col_description pre, .response-col_description code");
	  return {status: row.querySelector(".response-col_status").textContent.trim(), body: body ? body.textContent : ""};
	})()`, table+" .response"))
	if err != nil {
		return fmt.Errorf("read the live response: %w", err)
	}
	shotErr := func() error {
		if err := chromedp.Do(b.ctx, chromedp.ScrollIntoView(chromedp.CSS(block))); err != nil {
			return err
		}
		return b.screenshot(dir, ScreenshotTryItOut)
	}()
	if !strings.HasPrefix(res.Status, "200") {
		return errors.Join(fmt.Errorf("try it out GET /health: status %q, want 200; body %q", res.Status, res.Body), shotErr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(res.Body), &got); err != nil || len(got) != 1 || got["status"] != "ok" {
		return errors.Join(fmt.Errorf(`try it out GET /health: body %q, want {"status":"ok"}`, res.Body), shotErr)
	}
	return shotErr
}

// liveResponse is what Swagger UI shows of the answer to "Execute".
type liveResponse struct {
	Status string `json:"status"`
	Body   string `json:"body"`
}

func (b *browser) checkReDoc(base string, ops []operation, dir string) error {
	if err := b.navigate(base + openapi.ReDocPath); err != nil {
		return err
	}
	ids := make([]string, len(ops))
	for i, op := range ops {
		ids[i] = op.OperationID
	}
	idsJSON, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	// ReDoc names an operation's section "operation/<operationId>" (or
	// "tag/<tag>/operation/<operationId>", depending on its version).
	missing := fmt.Sprintf(`%s.filter(function (id) {
	  return !document.querySelector('[data-section-id$="operation/' + id + '"]');
	})`, idsJSON)
	if err := b.waitFor("ReDoc to render the operations", missing+".length === 0"); err != nil {
		left, _ := eval[[]string](b, missing)
		shown, _ := eval[string](b, `(document.getElementById("redoc") || document.body).innerText.slice(0, 500)`)
		return fmt.Errorf("%w: operations not shown %q; the page shows %q", err, left, shown)
	}
	var problems []error
	if err := b.screenshot(dir, ScreenshotReDoc); err != nil {
		problems = append(problems, err)
	}
	for _, v := range b.pageViolations() {
		problems = append(problems, fmt.Errorf("CSP violation: %s", v))
	}
	return errors.Join(problems...)
}

// consoleProblems returns the CSP violations and uncaught exceptions the
// browser reported in the console, each distinct one once.
func (b *browser) consoleProblems() []error {
	// Give the last messages time to arrive.
	time.Sleep(200 * time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	var problems []error
	seen := map[string]bool{}
	for _, m := range b.console {
		var p string
		switch {
		case strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Content-Security-Policy"):
			p = fmt.Sprintf("console reports a CSP violation: %s (%s)", m.Text, m.URL)
		case m.IsException():
			p = fmt.Sprintf("uncaught exception: %s (%s:%d)", m.Text, m.URL, m.Line)
		default:
			continue
		}
		if !seen[p] {
			seen[p] = true
			problems = append(problems, errors.New(p))
		}
	}
	return problems
}
