// Package openapi holds the OpenAPI 3.0 document of the Deployment
// Orchestrator's HTTP API and serves it, with Swagger UI and ReDoc, from the
// binary alone: every asset is embedded (Swagger UI through
// github.com/swaggo/files/v2, ReDoc through github.com/mvrilo/go-redoc), so
// the documentation pages work offline and load nothing from a CDN.
//
// The document is the contract: handlers are tested against it with the
// openapitest package, and the pages are checked in a real browser with the
// browsercheck package.
package openapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	redoc "github.com/mvrilo/go-redoc"
	swaggerfiles "github.com/swaggo/files/v2"
)

//go:embed openapi.json
var document []byte

//go:embed assets
var assetFS embed.FS

// Paths served by Handler.
const (
	DocumentPath = "/openapi.json"
	SwaggerPath  = "/docs"
	ReDocPath    = "/redoc"
)

// Content-Security-Policy of each kind of response. Both pages load scripts
// only from this origin and run no inline script.
//
// Swagger UI needs nothing beyond that but data: images (icons in its CSS).
// ReDoc renders with styled-components, which injects <style> elements at run
// time (hence style-src 'unsafe-inline'), and runs its search index in a Web
// Worker created from a blob: URL (hence worker-src blob:). The browser check
// in package browsercheck fails on any violation of these policies.
const (
	swaggerCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; " +
		"form-action 'self'; frame-ancestors 'none'"
	redocCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
		"connect-src 'self'; font-src 'self'; worker-src blob:; object-src 'none'; base-uri 'none'; " +
		"form-action 'self'; frame-ancestors 'none'"
	// Nothing but the two pages is ever rendered as a document.
	resourceCSP = "default-src 'none'; frame-ancestors 'none'"
)

// Cache-Control values. Pages and the document are revalidated on every use
// (their ETag makes that a 304); assets are addressed by a content hash in
// their query string (?v=), so a versioned URL can be kept for ever.
const (
	revalidate     = "no-cache"
	versionedAsset = "public, max-age=31536000, immutable"
	plainAsset     = "public, max-age=3600"
)

// Document returns the OpenAPI 3.0.3 document (JSON). The caller owns the
// returned slice.
func Document() []byte {
	return bytes.Clone(document)
}

// Serves reports whether Handler answers for the URL path p: the document,
// the two pages and their assets.
func Serves(p string) bool {
	switch p {
	case DocumentPath, SwaggerPath, SwaggerPath + "/", ReDocPath, ReDocPath + "/":
		return true
	}
	return strings.HasPrefix(p, SwaggerPath+"/") || strings.HasPrefix(p, ReDocPath+"/")
}

// Handler serves, for GET and HEAD:
//
//	/openapi.json        the document (application/json)
//	/docs                Swagger UI, with "Try it out" enabled
//	/docs/<asset>        Swagger UI's files and its start script
//	/redoc               ReDoc
//	/redoc/<asset>       ReDoc's bundle and its start script
//
// /docs/ and /redoc/ redirect to the page. Unknown paths under /docs/ and
// /redoc/ are 404; other methods are 405. Every response carries an ETag
// (If-None-Match gives 304), Cache-Control, X-Content-Type-Options: nosniff
// and a Content-Security-Policy.
func Handler() http.Handler {
	return handler()
}

var handler = sync.OnceValue(func() http.Handler {
	a := mustLoadAssets()
	mux := http.NewServeMux()
	mux.Handle("GET "+DocumentPath, a.document)
	mux.Handle("GET "+SwaggerPath, a.swaggerPage)
	mux.Handle("GET "+ReDocPath, a.redocPage)
	mux.Handle("GET "+SwaggerPath+"/{$}", http.RedirectHandler(SwaggerPath, http.StatusMovedPermanently))
	mux.Handle("GET "+ReDocPath+"/{$}", http.RedirectHandler(ReDocPath, http.StatusMovedPermanently))
	for p, f := range a.files {
		mux.Handle("GET "+p, f)
	}
	// Anything else under the two prefixes is an unknown asset.
	mux.Handle(SwaggerPath+"/", http.NotFoundHandler())
	mux.Handle(ReDocPath+"/", http.NotFoundHandler())
	return mux
})

// file is one embedded response.
type file struct {
	body        []byte
	contentType string
	csp         string
	etag        string
	version     string // content hash: the ETag, and the ?v= of an asset's versioned URL
	asset       bool   // cacheable by URL; pages and the document are revalidated
}

func newFile(body []byte, contentType, csp string, asset bool) *file {
	sum := sha256.Sum256(body)
	v := hex.EncodeToString(sum[:8])
	return &file{body: body, contentType: contentType, csp: csp, etag: `"` + v + `"`, version: v, asset: asset}
}

func (f *file) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Content-Security-Policy", f.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("ETag", f.etag)
	switch {
	case !f.asset:
		h.Set("Cache-Control", revalidate)
	case r.URL.Query().Get("v") == f.version:
		h.Set("Cache-Control", versionedAsset)
	default:
		h.Set("Cache-Control", plainAsset)
	}
	// ServeContent answers If-None-Match, Range and HEAD.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

const (
	jsonType = "application/json"
	htmlType = "text/html; charset=utf-8"
)

type assets struct {
	document    *file
	swaggerPage *file
	redocPage   *file
	files       map[string]*file // by URL path
}

func mustLoadAssets() *assets {
	a, err := loadAssets()
	if err != nil {
		// The inputs are all embedded: this is a build defect.
		panic("openapi: " + err.Error())
	}
	return a
}

func loadAssets() (*assets, error) {
	a := &assets{
		document: newFile(document, jsonType, resourceCSP, false),
		files:    map[string]*file{},
	}
	for _, name := range []string{
		"swagger-ui.css", "swagger-ui.css.map",
		"swagger-ui-bundle.js", "swagger-ui-bundle.js.map",
		"index.css", "favicon-32x32.png", "favicon-16x16.png",
	} {
		b, err := fs.ReadFile(swaggerfiles.FS, name)
		if err != nil {
			return nil, fmt.Errorf("swagger-ui asset: %w", err)
		}
		a.files[SwaggerPath+"/"+name] = newFile(b, contentType(name), resourceCSP, true)
	}
	if redoc.JavaScript == "" {
		return nil, fmt.Errorf("redoc bundle is empty")
	}
	a.files[ReDocPath+"/redoc.standalone.js"] = newFile([]byte(redoc.JavaScript), contentType(".js"), resourceCSP, true)
	for urlPath, name := range map[string]string{
		SwaggerPath + "/init.js": "assets/docs-init.js",
		ReDocPath + "/init.js":   "assets/redoc-init.js",
		ReDocPath + "/redoc.css": "assets/redoc.css",
	} {
		b, err := assetFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		a.files[urlPath] = newFile(b, contentType(name), resourceCSP, true)
	}
	var err error
	if a.swaggerPage, err = a.page("assets/docs.html", swaggerCSP); err != nil {
		return nil, err
	}
	if a.redocPage, err = a.page("assets/redoc.html", redocCSP); err != nil {
		return nil, err
	}
	return a, nil
}

var assetRef = regexp.MustCompile(`\{\{(/[^}]+)\}\}`)

// page renders an HTML page, replacing each {{/url/path}} with the asset's
// versioned URL.
func (a *assets) page(name, csp string) (*file, error) {
	b, err := assetFS.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var missing []string
	out := assetRef.ReplaceAllFunc(b, func(m []byte) []byte {
		p := string(assetRef.FindSubmatch(m)[1])
		f, ok := a.files[p]
		if !ok {
			missing = append(missing, p)
			return m
		}
		return []byte(p + "?v=" + f.version)
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s refers to unknown assets %v", name, missing)
	}
	return newFile(out, htmlType, csp, false), nil
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".png":
		return "image/png"
	case ".map":
		return jsonType
	case ".html":
		return htmlType
	}
	return "application/octet-stream"
}
