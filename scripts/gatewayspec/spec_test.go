package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/visgate/deployment-orchestrator/functions/api"
)

// TestCommittedDocumentIsCurrent: the template terraform deploys is what
// the generator makes of today's routes.
func TestCommittedDocumentIsCurrent(t *testing.T) {
	want, err := Document(api.Routes())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "..", DefaultOutput))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with api.Routes(): run `make gateway-spec` (go run ./scripts/gatewayspec) and commit it", DefaultOutput)
	}
}

type operation struct {
	Backend struct {
		Address         string  `json:"address"`
		PathTranslation string  `json:"path_translation"`
		DisableAuth     *bool   `json:"disable_auth"`
		JWTAudience     string  `json:"jwt_audience"`
		Deadline        float64 `json:"deadline"`
	} `json:"x-google-backend"`
	OperationID string `json:"operationId"`
	Parameters  []struct {
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
}

// matches tells whether a request path matches an API Gateway path
// template (Google's "Understanding path templating"): a literal segment
// matches itself, {v} one non-empty segment, {v=**} the rest (zero or more
// characters, slashes too); a trailing slash is allowed.
func matches(template, path string) bool {
	ts := strings.Split(strings.TrimPrefix(template, "/"), "/")
	ps := strings.Split(strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/"), "/")
	if template == "/" {
		return path == "/"
	}
	for i, seg := range ts {
		if strings.HasSuffix(seg, "=**}") {
			return true
		}
		if i >= len(ps) {
			return false
		}
		switch {
		case strings.HasPrefix(seg, "{"):
			if ps[i] == "" {
				return false
			}
		case seg != ps[i]:
			return false
		}
	}
	return len(ps) == len(ts)
}

// TestDocumentRoutesEveryPathToItsFunction: every path and method of
// api.Routes() reaches, through every template that matches it, the
// function that serves it, with its own path and the caller's
// Authorization header; and nothing else is routed.
func TestDocumentRoutesEveryPathToItsFunction(t *testing.T) {
	raw, err := Document(api.Routes())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Swagger string                          `json:"swagger"`
		Paths   map[string]map[string]operation `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Swagger != "2.0" {
		t.Errorf("swagger = %q, API Gateway takes OpenAPI 2.0", doc.Swagger)
	}
	ids := map[string]bool{}
	served := 0
	for tmpl, ops := range doc.Paths {
		for method, op := range ops {
			served++
			if ids[op.OperationID] {
				t.Errorf("operationId %s is not unique", op.OperationID)
			}
			ids[op.OperationID] = true
			b := op.Backend
			if b.PathTranslation != "APPEND_PATH_TO_ADDRESS" || b.DisableAuth != nil || b.JWTAudience != b.Address || b.Deadline < 60 {
				t.Errorf("%s %s: backend %+v: want APPEND_PATH_TO_ADDRESS, no disable_auth (the gateway's ID token), jwt_audience = address, deadline >= 60", method, tmpl, b)
			}
			for _, seg := range strings.Split(tmpl, "/") {
				if name, ok := strings.CutPrefix(seg, "{"); ok {
					name = strings.TrimSuffix(strings.TrimSuffix(name, "}"), "=**")
					found := false
					for _, p := range op.Parameters {
						found = found || (p.Name == name && p.In == "path")
					}
					if !found {
						t.Errorf("%s %s: path parameter %s is not declared", method, tmpl, name)
					}
				}
			}
		}
	}
	sample := strings.NewReplacer("{id}", "dep_2026_a3686d66", "{$}", "")
	want := 0
	for _, r := range api.Routes() {
		path := sample.Replace(r.Pattern)
		var paths []string
		if strings.HasSuffix(path, "/") && path != "/" {
			paths = []string{path, path + "swagger-ui.css", path + "a/b.js"}
		} else {
			paths = []string{path}
		}
		for _, method := range r.Methods {
			want++
			for _, p := range paths {
				n := 0
				for tmpl, ops := range doc.Paths {
					op, ok := ops[strings.ToLower(method)]
					if !ok || !matches(tmpl, p) {
						continue
					}
					n++
					if got := op.Backend.Address; got != Placeholder(r.Function) {
						t.Errorf("%s %s: template %s sends it to %s, %s serves it", method, p, tmpl, got, r.Function)
					}
				}
				if n == 0 {
					t.Errorf("%s %s: no operation of the document matches it", method, p)
				}
			}
		}
	}
	if served != want {
		t.Errorf("the document has %d operations for %d routes and methods", served, want)
	}
}

func TestMatches(t *testing.T) {
	for _, c := range []struct {
		tmpl, path string
		want       bool
	}{
		{"/", "/", true},
		{"/", "/health", false},
		{"/health", "/health", true},
		{"/health", "/health/", true},
		{"/v1/deployments/{id}", "/v1/deployments/dep_1", true},
		{"/v1/deployments/{id}", "/v1/deployments/", false},
		{"/v1/deployments/{id}", "/v1/deployments/a/b", false},
		{"/v1/deployments", "/v1/deployments/dep_1", false},
		{"/docs/{path=**}", "/docs/", true},
		{"/docs/{path=**}", "/docs/a/b.js", true},
		{"/docs/{path=**}", "/redoc/", false},
	} {
		if got := matches(c.tmpl, c.path); got != c.want {
			t.Errorf("matches(%q, %q) = %v, want %v", c.tmpl, c.path, got, c.want)
		}
	}
}
