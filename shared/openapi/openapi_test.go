package openapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/visgate/deployment-orchestrator/shared/openapi"
	"github.com/visgate/deployment-orchestrator/shared/openapi/openapitest"
)

func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestDocumentIsValidOpenAPI303(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Document())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("validate: %v", err)
	}
}

// The examples are validated against their schemas: prove it by breaking one.
func TestDocumentValidationCatchesABadExample(t *testing.T) {
	var raw map[string]any
	if err := json.Unmarshal(openapi.Document(), &raw); err != nil {
		t.Fatal(err)
	}
	ex := dig(t, raw, "paths", "/v1/deployments", "post", "responses", "202", "content", "application/json", "example").(map[string]any)
	ex["status"] = "almost_ready"
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation()); err == nil {
		t.Fatal("a 202 example with an unknown status passed validation")
	}
}

func dig(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%q: not an object", k)
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("missing %q", k)
		}
	}
	return v
}

func TestEveryOperationIsComplete(t *testing.T) {
	doc := loadDoc(t)
	ids := map[string]bool{}
	for p, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + p
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s: missing or duplicate operationId %q", name, op.OperationID)
			}
			ids[op.OperationID] = true
			if op.Summary == "" || len(op.Tags) != 1 {
				t.Errorf("%s: needs a summary and one tag", name)
			}
			if op.Security == nil {
				t.Errorf("%s: security must be explicit ([] for public)", name)
			}
			ok := false
			for code := range op.Responses.Map() {
				ok = ok || strings.HasPrefix(code, "2")
			}
			if !ok {
				t.Errorf("%s: no 2xx response", name)
			}
			authed := op.Security != nil && len(*op.Security) > 0
			if authed && op.Responses.Status(401) == nil {
				t.Errorf("%s: authenticated but no 401", name)
			}
			if authed && (*op.Security)[0]["bearerAuth"] != nil && op.Responses.Status(429) == nil {
				t.Errorf("%s: rate limited by API key but no 429", name)
			}
			if strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/internal/") {
				if op.Responses.Status(500) == nil {
					t.Errorf("%s: no 500", name)
				}
			}
			if op.RequestBody != nil {
				checkExamples(t, name+" request", op.RequestBody.Value.Content)
			}
			for code, r := range op.Responses.Map() {
				checkExamples(t, name+" "+code, r.Value.Content)
			}
		}
	}
}

// checkExamples requires an example for every JSON body, on the media type
// itself (a schema-level example does not show a whole body).
func checkExamples(t *testing.T, name string, content openapi3.Content) {
	t.Helper()
	mt := content.Get("application/json")
	if mt == nil {
		return
	}
	if mt.Example == nil && len(mt.Examples) == 0 && mt.Schema.Value.Type.Is("object") && len(mt.Schema.Value.Properties) > 0 {
		t.Errorf("%s: JSON body without an example", name)
	}
}

// The seed's example bodies (seed/000 and SPEC.md) appear in the document
// exactly.
func TestSeedExamplesAreInTheDocument(t *testing.T) {
	doc := loadDoc(t)
	example := func(path, method string, status int) any {
		op := doc.Paths.Find(path).GetOperation(method)
		return op.Responses.Status(status).Value.Content.Get("application/json").Example
	}
	cases := []struct {
		name string
		got  any
		want string
	}{
		{"health", example("/health", http.MethodGet, 200), `{"status":"ok"}`},
		{"root", example("/", http.MethodGet, 200), `{"service":"deployment-orchestrator","docs":"/docs"}`},
		{"readiness", example("/readiness", http.MethodGet, 200), `{"status":"ready"}`},
		{"401", doc.Components.Responses["UnauthorizedError"].Value.Content.Get("application/json").Example,
			`{"error":"UnauthorizedError","message":"Missing or invalid API key","details":{}}`},
		{"404", doc.Components.Responses["DeploymentNotFoundError"].Value.Content.Get("application/json").Example,
			`{"error": "DeploymentNotFoundError", "message": "Deployment not found: dep_unknown_999", "details": {"deployment_id": "dep_unknown_999"}}`},
		{"internal 200", example("/internal/deployment-ready/{deployment_id}", http.MethodPost, 200),
			`{"deployment_id": "dep_2026_a3686d66", "status": "ready", "webhook_delivered": false}`},
	}
	for _, c := range cases {
		var want any
		if err := json.Unmarshal([]byte(c.want), &want); err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, c.got, want) {
			t.Errorf("%s: example = %v, want %v", c.name, c.got, want)
		}
	}

	// The seed's 202: its fields keep their values (the limits and the
	// price come beside them).
	accepted := example("/v1/deployments", http.MethodPost, 202).(map[string]any)
	for k, want := range map[string]any{
		"deployment_id": "dep_2026_c1badc17", "status": "validating", "model_id": "black-forest-labs/FLUX.1-schnell",
		"estimated_ready_seconds": 180.0, "webhook_url": "https://example.com/webhook", "created_at": "2026-02-14T13:28:55.130342Z",
	} {
		if accepted[k] != want {
			t.Errorf("create 202 example %s = %v, want %v", k, accepted[k], want)
		}
	}

	create := doc.Paths.Find("/v1/deployments").Post.RequestBody.Value.Content.Get("application/json").Examples
	for name, want := range map[string]string{
		"hf_model_id": `{"hf_model_id": "black-forest-labs/FLUX.1-schnell", "user_runpod_key": "rpa_xxx", "user_webhook_url": "https://example.com/webhook", "gpu_tier": "A40"}`,
		"model_name":  `{"model_name": "veo3", "provider": "fal", "user_runpod_key": "rpa_xxx", "user_webhook_url": "https://example.com/webhook", "gpu_tier": "A40"}`,
	} {
		var w any
		if err := json.Unmarshal([]byte(want), &w); err != nil {
			t.Fatal(err)
		}
		if create[name] == nil || !jsonEqual(t, create[name].Value.Value, w) {
			t.Errorf("create request example %q differs from the seed", name)
		}
	}

	// The seed's GET example, in progress: its fields keep their values.
	get := doc.Paths.Find("/v1/deployments/{deployment_id}").Get.Responses.Status(200).Value.Content.Get("application/json").Examples
	got := get["creating_endpoint"].Value.Value.(map[string]any)
	for k, want := range map[string]any{
		"deployment_id": "dep_2026_a3686d66", "status": "creating_endpoint", "runpod_endpoint_id": nil,
		"endpoint_url": nil, "gpu_allocated": nil, "model_vram_gb": 8.0, "error": nil,
		"created_at": "2026-02-14T13:28:57.253043Z", "ready_at": nil,
	} {
		if got[k] != want {
			t.Errorf("GET example %s = %v, want %v", k, got[k], want)
		}
	}
	if logs := got["logs"].([]any); len(logs) != 3 || logs[2].(map[string]any)["message"] != "Selected GPU: NVIDIA A40" {
		t.Errorf("GET example logs = %v", logs)
	}
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

func TestContract(t *testing.T) {
	doc := loadDoc(t)
	var got []string
	for p, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			got = append(got, method+" "+p)
		}
	}
	slices.Sort(got)
	want := []string{
		"DELETE /v1/deployments/{deployment_id}",
		"GET /",
		"GET /docs",
		"GET /health",
		"GET /openapi.json",
		"GET /readiness",
		"GET /redoc",
		"GET /v1/deployments",
		"GET /v1/deployments/{deployment_id}",
		"GET /v1/gpus",
		"GET /v1/models",
		"GET /v1/webhook-secret",
		"PATCH /v1/deployments/{deployment_id}",
		"POST /internal/deployment-ready/{deployment_id}",
		"POST /v1/deployments",
	}
	if !slices.Equal(got, want) {
		t.Errorf("operations:\n got %q\nwant %q", got, want)
	}
	bearer := doc.Components.SecuritySchemes["bearerAuth"].Value
	if bearer.Type != "http" || bearer.Scheme != "bearer" {
		t.Errorf("bearerAuth = %+v", bearer)
	}
	internal := doc.Components.SecuritySchemes["internalSecret"].Value
	if internal.Type != "apiKey" || internal.In != "header" || internal.Name != "X-Visgate-Internal-Secret" {
		t.Errorf("internalSecret = %+v", internal)
	}
	statuses := doc.Components.Schemas["DeploymentStatus"].Value.Enum
	if len(statuses) != 9 {
		t.Errorf("DeploymentStatus has %d values", len(statuses))
	}
	if doc.Paths.Find("/v1/deployments").Post.Callbacks["deploymentEvent"] == nil {
		t.Error("createDeployment documents no webhook callback")
	}
}

func get(t *testing.T, h http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func readAll(t *testing.T, r *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandlerServesDocumentAndPages(t *testing.T) {
	h := openapi.Handler()
	cases := []struct {
		path, contentType, csp, cache, contains string
	}{
		{"/openapi.json", "application/json", "default-src 'none'", "no-cache", `"openapi": "3.0.3"`},
		{"/docs", "text/html; charset=utf-8", "script-src 'self'; style-src 'self';", "no-cache", `id="swagger-ui"`},
		{"/redoc", "text/html; charset=utf-8", "worker-src blob:", "no-cache", `id="redoc"`},
		{"/docs/init.js", "text/javascript; charset=utf-8", "default-src 'none'", "public, max-age=3600", `url: "/openapi.json"`},
		{"/docs/swagger-ui-bundle.js", "text/javascript; charset=utf-8", "", "public, max-age=3600", "SwaggerUIBundle"},
		{"/docs/swagger-ui.css", "text/css; charset=utf-8", "", "public, max-age=3600", ".swagger-ui"},
		{"/docs/favicon-32x32.png", "image/png", "", "public, max-age=3600", "PNG"},
		{"/redoc/redoc.standalone.js", "text/javascript; charset=utf-8", "", "public, max-age=3600", "Redoc"},
		{"/redoc/init.js", "text/javascript; charset=utf-8", "", "public, max-age=3600", `Redoc.init("/openapi.json"`},
	}
	for _, c := range cases {
		resp := get(t, h, http.MethodGet, c.path, nil)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", c.path, resp.StatusCode)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != c.contentType {
			t.Errorf("%s: Content-Type %q, want %q", c.path, ct, c.contentType)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, c.csp) || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q, want it to contain %q", c.path, csp, c.csp)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != c.cache {
			t.Errorf("%s: Cache-Control %q, want %q", c.path, cc, c.cache)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("ETag") == "" {
			t.Errorf("%s: missing nosniff or ETag: %v", c.path, resp.Header)
		}
		if !strings.Contains(string(body), c.contains) {
			t.Errorf("%s: body does not contain %q", c.path, c.contains)
		}
	}
}

func TestHandlerDocumentIsTheEmbeddedOne(t *testing.T) {
	resp := get(t, openapi.Handler(), http.MethodGet, "/openapi.json", nil)
	if string(readAll(t, resp)) != string(openapi.Document()) {
		t.Error("/openapi.json differs from Document()")
	}
	d := openapi.Document()
	d[0] = 'X'
	if openapi.Document()[0] == 'X' {
		t.Error("Document returns the embedded slice itself")
	}
}

var (
	assetRefRe    = regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	inlineRe      = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|\son[a-z]+=|<style|\sstyle=|javascript:`)
	scriptNoSrcRe = regexp.MustCompile(`(?i)<script(?:\s+(?:type|charset)="[^"]*")*\s*>`)
)

// The pages run no inline code, and every asset they name is served with a
// versioned URL that may be cached for ever.
func TestPagesUseOnlyServedVersionedAssets(t *testing.T) {
	h := openapi.Handler()
	for _, page := range []string{"/docs", "/redoc"} {
		body := string(readAll(t, get(t, h, http.MethodGet, page, nil)))
		if inlineRe.MatchString(body) || scriptNoSrcRe.MatchString(body) {
			t.Errorf("%s has inline script or style:\n%s", page, body)
		}
		refs := assetRefRe.FindAllStringSubmatch(body, -1)
		if len(refs) < 3 {
			t.Fatalf("%s names only %d assets", page, len(refs))
		}
		for _, m := range refs {
			ref := m[1]
			if !strings.HasPrefix(ref, "/") || !strings.Contains(ref, "?v=") {
				t.Errorf("%s: asset %q is not a versioned local URL", page, ref)
				continue
			}
			resp := get(t, h, http.MethodGet, ref, nil)
			readAll(t, resp)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: asset %s: status %d", page, ref, resp.StatusCode)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
				t.Errorf("%s: asset %s: Cache-Control %q", page, ref, cc)
			}
		}
	}
}

func TestHandlerConditionalHeadAndErrors(t *testing.T) {
	h := openapi.Handler()

	first := get(t, h, http.MethodGet, "/openapi.json", nil)
	etag := first.Header.Get("ETag")
	again := get(t, h, http.MethodGet, "/openapi.json", http.Header{"If-None-Match": {etag}})
	if again.StatusCode != http.StatusNotModified || len(readAll(t, again)) != 0 {
		t.Errorf("If-None-Match: status %d, want 304 with no body", again.StatusCode)
	}

	head := get(t, h, http.MethodHead, "/redoc/redoc.standalone.js", nil)
	if head.StatusCode != http.StatusOK || len(readAll(t, head)) != 0 || head.ContentLength <= 0 {
		t.Errorf("HEAD: status %d, length %d", head.StatusCode, head.ContentLength)
	}

	for path, want := range map[string]int{
		"/docs/":                http.StatusMovedPermanently,
		"/redoc/":               http.StatusMovedPermanently,
		"/docs/index.html":      http.StatusNotFound,
		"/docs/oauth2-redirect": http.StatusNotFound,
		"/redoc/nope.js":        http.StatusNotFound,
	} {
		resp := get(t, h, http.MethodGet, path, nil)
		if resp.StatusCode != want {
			t.Errorf("GET %s: status %d, want %d", path, resp.StatusCode, want)
		}
	}
	if loc := get(t, h, http.MethodGet, "/docs/", nil).Header.Get("Location"); loc != "/docs" {
		t.Errorf("/docs/ redirects to %q", loc)
	}
	post := get(t, h, http.MethodPost, "/openapi.json", nil)
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /openapi.json: status %d, want 405", post.StatusCode)
	}
}

func TestServes(t *testing.T) {
	for p, want := range map[string]bool{
		"/openapi.json": true, "/docs": true, "/docs/": true, "/docs/init.js": true,
		"/redoc": true, "/redoc/redoc.standalone.js": true,
		"/": false, "/health": false, "/docsx": false, "/v1/deployments": false, "/openapi.yaml": false,
	} {
		if got := openapi.Serves(p); got != want {
			t.Errorf("Serves(%q) = %v, want %v", p, got, want)
		}
	}
}
