// Package api holds the public HTTP functions (create, get, delete, the
// service endpoints) and the internal callback of the inference container.
// Each function routes by path itself, so it works both deployed alone
// (Cloud Run functions serve one function at every path) and mounted with
// the others on one port (the local server).
package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/catalog"
	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/logging"
	"github.com/visgate/deployment-orchestrator/shared/ratelimit"
	"github.com/visgate/deployment-orchestrator/shared/seal"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// Store is what the API needs of the store.
type Store interface {
	store.Store
	store.IdempotencyStore
}

// Function names, as registered with functions-framework.
const (
	FnService          = "Service"
	FnCreateDeployment = "CreateDeployment"
	FnGetDeployment    = "GetDeployment"
	FnDeleteDeployment = "DeleteDeployment"
	FnUpdateDeployment = "UpdateDeployment"
	FnDeploymentReady  = "DeploymentReady"
)

// Server serves the API.
type Server struct {
	Store   Store
	Sealer  seal.Sealer
	Keys    *auth.Keyring
	Limiter ratelimit.Limiter
	// RateLimit is the per-key limit the Limiter enforces (for messages).
	RateLimit int
	// AuthFailures counts failed authentications per kind (API keys,
	// callback secrets) and client address; past the limit an address's
	// further failures get 429, never a valid credential. Nil: not
	// throttled.
	AuthFailures *ratelimit.Memory
	// ProgressReports limits each deployment's download progress reports
	// (keyed by deployment id; see ProgressReportsPerMinute). Nil: not
	// limited.
	ProgressReports *ratelimit.Memory
	// ClientAddr is the address a request is counted under (see
	// httpx.ClientAddr); nil means the connection's.
	ClientAddr func(*http.Request) string
	// BehindGateway: the API key is read from X-Forwarded-Authorization,
	// never from Authorization. API Gateway, when it mints the ID token the
	// function requires, puts that token in Authorization and moves the
	// caller's header to X-Forwarded-Authorization; Cloud Run checked the
	// token (the gateway's account alone may invoke the function) before
	// the request arrived. The key is verified there like anywhere else, so
	// a caller that writes X-Forwarded-Authorization itself gains nothing.
	BehindGateway bool
	Models        *catalog.Catalog
	GPUs          *gpu.Catalog
	// LiveGPUs, when set, is each account's GPU catalogue, the one
	// select_gpu chooses from: gpu_tier is validated against it.
	LiveGPUs *gpu.Live
	// SigningKey is the master key of the per-owner webhook secrets.
	SigningKey           secret.Secret
	AllowPrivateWebhooks bool
	// PrivateWebhooksOnly refuses webhook URLs whose host is not a
	// loopback or private address or localhost (webhook.ValidatePrivateURL).
	PrivateWebhooksOnly bool
	// DefaultTTL, when above zero, is the time limit of a deployment whose
	// owner sets none.
	DefaultTTL time.Duration
	// Docs serves /openapi.json, /docs and /redoc.
	Docs http.Handler
	Now  func() time.Time
	Log  *slog.Logger

	// encoded keeps GET's encoded answers per record version, listed the
	// list's encoded items (no logs).
	encoded, listed encodedCache
	// reads counts the successful reads logged at debug level.
	reads readCounter
	// limitValue is the last RateLimit-Limit header value (limitHeader).
	limitValue atomic.Pointer[limitValue]
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Server) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// route is one path of one function, with its handler per method.
type route struct {
	fn      string // function name
	pattern string // http.ServeMux pattern, without method
	methods map[string]http.HandlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{FnService, "/{$}", map[string]http.HandlerFunc{"GET": s.root}},
		{FnService, "/health", map[string]http.HandlerFunc{"GET": s.health}},
		{FnService, "/readiness", map[string]http.HandlerFunc{"GET": s.readiness}},
		{FnService, "/openapi.json", map[string]http.HandlerFunc{"GET": s.docs}},
		{FnService, "/docs", map[string]http.HandlerFunc{"GET": s.docs}},
		{FnService, "/docs/", map[string]http.HandlerFunc{"GET": s.docs}},
		{FnService, "/redoc", map[string]http.HandlerFunc{"GET": s.docs}},
		{FnService, "/redoc/", map[string]http.HandlerFunc{"GET": s.docs}},
		{FnService, "/v1/gpus", map[string]http.HandlerFunc{"GET": noQuery(s.listGPUs)}},
		{FnService, "/v1/models", map[string]http.HandlerFunc{"GET": noQuery(s.listModels)}},
		{FnCreateDeployment, "/v1/deployments", map[string]http.HandlerFunc{"POST": s.authed(noQueryOwner(s.create))}},
		{FnGetDeployment, "/v1/deployments", map[string]http.HandlerFunc{"GET": s.authed(s.list)}},
		{FnGetDeployment, "/v1/deployments/{id}", map[string]http.HandlerFunc{"GET": s.authed(noQueryOwner(s.get))}},
		{FnGetDeployment, "/v1/webhook-secret", map[string]http.HandlerFunc{"GET": s.authed(noQueryOwner(s.webhookSecret))}},
		{FnDeleteDeployment, "/v1/deployments/{id}", map[string]http.HandlerFunc{"DELETE": s.authed(noQueryOwner(s.delete))}},
		{FnUpdateDeployment, "/v1/deployments/{id}", map[string]http.HandlerFunc{"PATCH": s.authed(noQueryOwner(s.update))}},
		{FnDeploymentReady, "/internal/deployment-ready/{id}", map[string]http.HandlerFunc{"POST": s.callback}},
	}
}

// noQuery serves h only when the request has no query string: a route of
// the API that takes no parameter refuses one (unknown, malformed or only
// separators, as in "?&") with a 422, as the list does, rather than serving
// as if it were absent. A bare "?" is no query.
func noQuery(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "" { // nothing to refuse, nothing to parse
			h(w, r)
			return
		}
		if _, herr := httpx.Query(r); herr != nil {
			httpx.WriteError(w, herr)
			return
		}
		if r.URL.RawQuery != "" {
			// url.ParseQuery skips empty parameters: "?&" parses as none.
			httpx.WriteError(w, httpx.FieldErrors{httpx.QueryField: "must be absent: this endpoint takes no query parameters"}.Err())
			return
		}
		h(w, r)
	}
}

// noQueryOwner is noQuery for an authenticated handler (checked after the
// key, like the body).
func noQueryOwner(h func(http.ResponseWriter, *http.Request, string)) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, owner string) {
		if r.URL.RawQuery == "" {
			h(w, r, owner)
			return
		}
		noQuery(func(w http.ResponseWriter, r *http.Request) { h(w, r, owner) })(w, r)
	}
}

// Function returns the handler of one function (what Cloud Run serves
// when FUNCTION_TARGET names it): its own paths, the contract's 404 and
// 405 elsewhere.
func (s *Server) Function(name string) http.Handler {
	return s.mux(func(r route) bool { return r.fn == name })
}

// Handler serves every function on one port (the local server).
func (s *Server) Handler() http.Handler {
	return s.mux(func(route) bool { return true })
}

// Functions lists the function names.
func Functions() []string {
	return []string{FnService, FnCreateDeployment, FnGetDeployment, FnDeleteDeployment, FnUpdateDeployment, FnDeploymentReady}
}

func (s *Server) mux(keep func(route) bool) http.Handler {
	m := http.NewServeMux()
	merged := map[string]map[string]http.HandlerFunc{}
	var order []string
	for _, r := range s.routes() {
		if !keep(r) {
			continue
		}
		if merged[r.pattern] == nil {
			merged[r.pattern] = map[string]http.HandlerFunc{}
			order = append(order, r.pattern)
		}
		for method, h := range r.methods {
			merged[r.pattern][method] = h
		}
	}
	for _, p := range order {
		m.Handle(p, methods(merged[p]))
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, httpx.RouteNotFound(r.URL.Path))
	})
	return s.middleware(m)
}

func methods(hs map[string]http.HandlerFunc) http.Handler {
	var allowed []string
	for m := range hs {
		allowed = append(allowed, m)
	}
	if _, ok := hs["GET"]; ok {
		allowed = append(allowed, "HEAD")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		h, ok := hs[method]
		if !ok {
			w.Header().Set("Allow", joinSorted(allowed))
			httpx.WriteError(w, httpx.MethodNotAllowed(allowed...))
			return
		}
		h(w, r)
	})
}

// middleware adds a request id, a log line per request (see logRequest)
// and turns panics into the contract's 500.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := httpx.NewRequestID()
		// Canonical keys: Get canonicalises "traceparent" into a new
		// string on every request.
		trace := r.Header.Get("X-Cloud-Trace-Context")
		if trace == "" {
			trace = r.Header.Get("Traceparent")
		}
		ctx := logging.WithRequest(r.Context(), id, trace)
		r = r.WithContext(ctx)
		rec := &recorder{ResponseWriter: w, status: http.StatusOK, id: [1]string{id}}
		rec.Header()["X-Request-Id"] = rec.id[:] // canonical: no Set (see httpx.SetJSONHeaders)
		defer func() {
			if p := recover(); p != nil {
				s.logger().ErrorContext(ctx, "panic serving request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rec.wrote {
					httpx.WriteError(rec, httpx.Internal(id))
				}
			}
			if r.URL.Path == "/health" && rec.status == http.StatusOK {
				return // liveness probes would drown the log
			}
			s.logRequest(ctx, r, rec.status, start)
		}()
		next.ServeHTTP(rec, r)
	})
}

type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	id     [1]string // the X-Request-Id header's value (in the recorder's allocation)
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// authed checks the Bearer key and the owner's rate limit.
func (s *Server) authed(h func(w http.ResponseWriter, r *http.Request, owner string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		owner, ok := s.Keys.Authenticate(r.Header.Get(s.keyHeader()))
		if !ok {
			if s.authFailed(w, r, failedAPIKey) {
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="deployment-orchestrator"`)
			httpx.WriteError(w, httpx.Unauthorized())
			return
		}
		if s.Limiter != nil {
			dec, err := s.Limiter.Allow(r.Context(), owner)
			if err != nil {
				// The limiter's store is down: serve rather than lock every user out.
				s.logger().WarnContext(r.Context(), "rate limiter unavailable; request allowed", "error", err.Error())
			} else {
				h := w.Header() // canonical keys: no Set (see httpx.SetJSONHeaders)
				h["Ratelimit-Limit"] = s.limitHeader(dec.Limit)
				h["Ratelimit-Remaining"] = []string{strconv.Itoa(max(dec.Remaining, 0))}
				if !dec.Allowed {
					httpx.WriteError(w, httpx.RateLimited(s.RateLimit, dec.RetryAfter))
					return
				}
			}
		}
		h(w, r, owner)
	}
}

// limitHeader is the RateLimit-Limit value of limit, made once: the limit
// is the same for every request (a shared slice, never changed).
func (s *Server) limitHeader(limit int) []string {
	if v := s.limitValue.Load(); v != nil && v.limit == limit {
		return v.header
	}
	v := &limitValue{limit: limit, header: []string{strconv.Itoa(limit)}}
	s.limitValue.Store(v)
	return v.header
}

type limitValue struct {
	limit  int
	header []string
}

// ForwardedAuthorizationHeader is where API Gateway puts the caller's
// Authorization header when it replaces it with its own ID token.
const ForwardedAuthorizationHeader = "X-Forwarded-Authorization"

// keyHeader is the header that carries the caller's "Bearer <API key>".
func (s *Server) keyHeader() string {
	if s.BehindGateway {
		return ForwardedAuthorizationHeader
	}
	return "Authorization"
}

// What failed to authenticate: each kind is counted on its own, so that
// wrong API keys from an address never throttle the callback secrets of
// the inference workers behind the same address (a NAT, RunPod's egress),
// nor the other way round.
const (
	failedAPIKey         = "api key"
	failedCallbackSecret = "callback secret"
)

// authFailed counts a failed authentication of kind from r's client
// address. Past the limit it answers 429 with Retry-After and reports true
// (the caller answers 401 otherwise). Only failures are counted and only
// failures are refused: a request whose credential is valid is served
// whatever its address did before. The log gets one WARN line when an
// address reaches the limit, not one per attempt.
func (s *Server) authFailed(w http.ResponseWriter, r *http.Request, kind string) (throttled bool) {
	if s.AuthFailures == nil {
		return false
	}
	ctx := r.Context()
	addr := httpx.ClientAddr(r, -1)
	if s.ClientAddr != nil {
		addr = s.ClientAddr(r)
	}
	d, _ := s.AuthFailures.Allow(ctx, kind+" from "+addr)
	switch {
	case !d.Allowed:
		httpx.WriteError(w, httpx.AuthThrottled(d.Limit, d.RetryAfter))
		return true
	case d.Remaining == 0:
		s.logger().WarnContext(ctx, "failed authentications from one address: throttling its further failures", "client", addr,
			"what", kind, "failures", d.Limit, "window", "1m", "until", d.Reset.UTC().Format(time.RFC3339))
	default:
		s.logger().DebugContext(ctx, "authentication failed", "client", addr, "what", kind)
	}
	return false
}

// internalError logs err with the request id and answers the contract's 500.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, store.ErrFull) {
		s.logger().ErrorContext(r.Context(), what+": the store's disk is full", "error", err.Error())
		httpx.WriteError(w, httpx.StorageFull(storageFullRetry))
		return
	}
	s.logger().ErrorContext(r.Context(), what, "error", err.Error())
	httpx.WriteError(w, httpx.Internal(logging.RequestID(r.Context())))
}

// storageFullRetry is the Retry-After of a write refused for want of space.
const storageFullRetry = 30 * time.Second

// Route says which function serves a path, and with which methods.
type Route struct {
	Function string
	Pattern  string // http.ServeMux pattern, without method
	Methods  []string
}

// Routes lists every public path of every function: what a single public
// base URL (the local front door, a load balancer) routes to each function.
func Routes() []Route {
	var out []Route
	for _, r := range (&Server{}).routes() {
		var ms []string
		for m := range r.methods {
			ms = append(ms, m)
		}
		out = append(out, Route{Function: r.fn, Pattern: r.pattern, Methods: ms})
	}
	return out
}
