// Package openapitest checks HTTP requests and responses against the
// service's OpenAPI document (package openapi), for handler tests:
//
//	v := openapitest.NewValidator(t)
//	rec := httptest.NewRecorder()
//	h.ServeHTTP(rec, req)
//	v.Response(t, req, rec.Result(), rec.Body.Bytes())
//
// A response fails the test when its route, status, headers, content type or
// body is not what the document says. Response schemas forbid unknown fields,
// so a handler that leaks an undocumented field (a secret, say) fails too.
package openapitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/visgate/deployment-orchestrator/shared/openapi"
)

func init() {
	// The documentation pages are documented as text/html strings.
	if openapi3filter.RegisteredBodyDecoder("text/html") == nil {
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	}
}

// Validator validates against one loaded copy of the document. It is safe for
// concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// NewValidator loads and validates the document, failing the test if it is
// invalid.
func NewValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := New()
	if err != nil {
		t.Fatalf("openapitest: %v", err)
	}
	return v
}

// New is NewValidator for use outside a test.
func New() (*Validator, error) {
	doc, err := Load()
	if err != nil {
		return nil, err
	}
	// The document's only server is "/" (relative, so that Swagger UI calls
	// the origin it was loaded from). Without servers the router matches any
	// scheme and host, which is what tests against httptest servers need.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
}

// Load parses the embedded document and validates it (examples included).
func Load() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Document())
	if err != nil {
		return nil, fmt.Errorf("load document: %w", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("invalid document: %w", err)
	}
	return doc, nil
}

// Doc returns the loaded document. Do not modify it.
func (v *Validator) Doc() *openapi3.T { return v.doc }

// Response fails the test unless resp, the answer to req, is documented: the
// operation (method and path of req) exists, resp.StatusCode is one of its
// responses, the documented headers are present and valid, and body (the
// response body, already read) has the documented content type and schema.
// A response documented without content must have an empty body.
func (v *Validator) Response(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	if err := v.CheckResponse(req, resp, body); err != nil {
		t.Errorf("%s %s -> %d: %v\nbody: %s", req.Method, req.URL.RequestURI(), resp.StatusCode, err, clip(body))
	}
}

// CheckResponse is Response returning the error instead of failing a test.
func (v *Validator) CheckResponse(req *http.Request, resp *http.Response, body []byte) error {
	route, pathParams, err := v.route(req)
	if err != nil {
		return err
	}
	ref := route.Operation.Responses.Status(resp.StatusCode)
	if ref == nil {
		ref = route.Operation.Responses.Default()
	}
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("status %d is not documented for %s %s", resp.StatusCode, route.Method, route.Path)
	}
	if len(ref.Value.Content) == 0 && len(body) > 0 {
		return fmt.Errorf("status %d is documented without a body, got %d bytes", resp.StatusCode, len(body))
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: pathParams,
			Route:      route,
		},
		Status: resp.StatusCode,
		Header: resp.Header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	input.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return describe(err)
	}
	return nil
}

// Request fails the test unless req, with body as its body, is a documented
// request: the operation exists, its parameters and body are valid, and the
// credentials its security requires are present (their values are not
// checked). req.Body is not read.
func (v *Validator) Request(t testing.TB, req *http.Request, body []byte) {
	t.Helper()
	if err := v.CheckRequest(req, body); err != nil {
		t.Errorf("%s %s: %v\nbody: %s", req.Method, req.URL.RequestURI(), err, clip(body))
	}
}

// CheckRequest is Request returning the error instead of failing a test.
func (v *Validator) CheckRequest(req *http.Request, body []byte) error {
	route, pathParams, err := v.route(req)
	if err != nil {
		return err
	}
	return v.validateRequest(req, body, route, pathParams)
}

func (v *Validator) validateRequest(req *http.Request, body []byte, route *routers.Route, pathParams map[string]string) error {
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	input := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: pathParams,
		Route:      route,
		Options: &openapi3filter.Options{
			MultiError:                        true,
			SkipSettingDefaults:               true,
			RejectWhenRequestBodyNotSpecified: true,
			AuthenticationFunc:                credentialsPresent,
		},
	}
	if err := openapi3filter.ValidateRequest(context.Background(), input); err != nil {
		return describe(err)
	}
	return nil
}

// Webhook fails the test unless req, with body as its body, is a webhook
// delivery as documented by the createDeployment callback: the
// Standard Webhooks headers are present and well formed and the body is a
// documented event. Signatures are not verified.
func (v *Validator) Webhook(t testing.TB, req *http.Request, body []byte) {
	t.Helper()
	if err := v.CheckWebhook(req, body); err != nil {
		t.Errorf("webhook %s %s: %v\nbody: %s", req.Method, req.URL, err, clip(body))
	}
}

// CheckWebhook is Webhook returning the error instead of failing a test.
func (v *Validator) CheckWebhook(req *http.Request, body []byte) error {
	if req.Method != http.MethodPost {
		return fmt.Errorf("webhooks are POSTed, got %s", req.Method)
	}
	route, err := v.callbackRoute("createDeployment", "deploymentEvent")
	if err != nil {
		return err
	}
	return v.validateRequest(req, body, route, nil)
}

// callbackRoute makes a route of the POST operation of a callback, which the
// router does not know (its path is a runtime expression).
func (v *Validator) callbackRoute(operationID, callback string) (*routers.Route, error) {
	for p, item := range v.doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID != operationID {
				continue
			}
			cb := op.Callbacks[callback]
			if cb == nil || cb.Value == nil {
				return nil, fmt.Errorf("%s %s has no callback %q", method, p, callback)
			}
			for expr, cbItem := range cb.Value.Map() {
				if cbItem.Post != nil {
					return &routers.Route{Spec: v.doc, Path: expr, PathItem: cbItem, Method: http.MethodPost, Operation: cbItem.Post}, nil
				}
			}
			return nil, fmt.Errorf("callback %q of %s has no POST operation", callback, operationID)
		}
	}
	return nil, fmt.Errorf("no operation %q", operationID)
}

func (v *Validator) route(req *http.Request) (*routers.Route, map[string]string, error) {
	// The router matches the path only; give it an absolute URL whatever the
	// request looked like (a server request has no scheme or host).
	r := req.Clone(context.Background())
	u := *req.URL
	if u.Host == "" {
		u.Host = req.Host
		if u.Host == "" {
			u.Host = "localhost"
		}
	}
	if u.Scheme == "" {
		u.Scheme = "http"
	}
	r.URL = &u
	route, params, err := v.router.FindRoute(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s is not a documented operation: %w", req.Method, req.URL.Path, err)
	}
	return route, params, nil
}

// credentialsPresent stands in for the service's authentication: the
// document requires credentials, and this checks they were sent, not that
// they are right.
func credentialsPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	scheme := in.SecurityScheme
	h := in.RequestValidationInput.Request.Header
	switch {
	case scheme.Type == "http" && strings.EqualFold(scheme.Scheme, "bearer"):
		token, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			return errors.New("missing Authorization: Bearer credentials")
		}
	case scheme.Type == "apiKey" && scheme.In == "header":
		if h.Get(scheme.Name) == "" {
			return fmt.Errorf("missing %s header", scheme.Name)
		}
	default:
		return fmt.Errorf("security scheme %s/%s is not supported by openapitest", scheme.Type, scheme.In)
	}
	return nil
}

// describe flattens kin-openapi's errors into one readable message.
func describe(err error) error {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		parts := make([]string, 0, len(me))
		for _, e := range me {
			parts = append(parts, describe(e).Error())
		}
		return errors.New(strings.Join(parts, "; "))
	}
	return err
}

func clip(b []byte) string {
	const limit = 2000
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
