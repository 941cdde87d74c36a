// Package runpodsim is an in-process simulator of the RunPod REST v2 API
// parts the orchestrator uses, in the spirit of net/http/httptest: New starts
// it on 127.0.0.1 and Server.URL is the base URL to give runpod.NewClient.
//
// It serves, as the openapi document describes them (status codes,
// application/problem+json errors, 400 for cross-field rule violations, 422
// for schema violations):
//
//	POST   /v2/serverless              createEndpoint
//	GET    /v2/serverless              listEndpoints
//	GET    /v2/serverless/{id}         getEndpoint
//	PATCH  /v2/serverless/{id}         updateEndpoint
//	DELETE /v2/serverless/{id}         deleteEndpoint
//	GET    /v2/serverless/{id}/workers listEndpointWorkers
//	GET    /v2/catalog/gpus            listGpuTypes
//
// State is kept per API key (account). Each endpoint runs workers.min
// simulated workers (none when min is 0, as on RunPod until a job arrives).
// A worker is THROTTLED while every pool of its endpoint is out of stock,
// then INITIALIZING; its container behaves like the orchestrator's inference
// container: when the endpoint env has VISGATE_CALLBACK_URL,
// VISGATE_CALLBACK_SECRET and VISGATE_DEPLOYMENT_ID, it POSTs
// {"status":"downloading_model"}, {"status":"loading_model"} and
// {"status":"ready"} to the callback URL (loopback hosts only) with the
// X-Visgate-Internal-Secret header, one CallbackInterval apart. The worker
// turns IDLE once BootDelay has passed and its callbacks are sent. In crash
// loop mode workers turn UNHEALTHY instead and send nothing.
//
// With WithWorkerProcess, the workers of endpoints whose image is the
// configured worker image are real processes instead (process.go): the
// unchanged Python worker and the runpod SDK, which takes its jobs from the
// simulator; the job API (POST /v2/{id}/run, /runsync, GET
// /v2/{id}/status/{job_id}: jobs.go) reaches them with the endpoint owner's
// key.
//
// Like RunPod, the simulator alters names: a FlashBoot endpoint's name gets
// a " -fb" suffix.
package runpodsim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
)

// Operation ids (the openapi operationId), the keys of Calls.
const (
	OpCreateEndpoint      = "createEndpoint"
	OpListEndpoints       = "listEndpoints"
	OpGetEndpoint         = "getEndpoint"
	OpUpdateEndpoint      = "updateEndpoint"
	OpDeleteEndpoint      = "deleteEndpoint"
	OpListEndpointWorkers = "listEndpointWorkers"
	OpListGPUTypes        = "listGpuTypes"
)

// AllPools, given to SetStockOut, puts every pool out of stock.
const AllPools = "*"

// Defaults of the timing options.
const (
	DefaultBootDelay        = time.Second
	DefaultCallbackInterval = 300 * time.Millisecond
	// DefaultRequestURLBase is where requestUrls point, as on RunPod.
	DefaultRequestURLBase = "https://api.runpod.ai/v2"
	// AnyKeyBalance is the balance of an account made on the fly by
	// WithAnyKey.
	AnyKeyBalance = 1000.0
)

// HeaderInternalAuth carries the callback secret of the inference
// container's reports.
const HeaderInternalAuth = "X-Visgate-Internal-Secret"

type config struct {
	addr             string
	anyKey           bool
	silent           bool
	bootDelay        time.Duration
	callbackInterval time.Duration
	requestURLBase   string
	catalog          *gpu.Catalog
	callbackClient   *http.Client
	proc             *WorkerProcess
	billingSpeed     float64
}

// Option configures New.
type Option func(*config)

// WithAnyKey accepts every non-empty API key, making an account with
// AnyKeyBalance on first use (for the local demo).
func WithAnyKey() Option { return func(c *config) { c.anyKey = true } }

// WithBootDelay sets how long a placed worker stays INITIALIZING at least.
func WithBootDelay(d time.Duration) Option { return func(c *config) { c.bootDelay = d } }

// WithCallbackInterval sets the spacing of the container's callbacks.
func WithCallbackInterval(d time.Duration) Option {
	return func(c *config) { c.callbackInterval = d }
}

// WithSilentContainer makes containers send no callbacks (workers still turn
// IDLE), to exercise polling.
func WithSilentContainer() Option { return func(c *config) { c.silent = true } }

// WithRequestURLBase sets the base of the endpoints' requestUrls; "" makes
// them the simulator's own URL (its job API: /run, /runsync, /status).
func WithRequestURLBase(u string) Option { return func(c *config) { c.requestURLBase = u } }

// WithCatalog sets the GPU pools and cards the simulator offers (default
// gpu.Default()).
func WithCatalog(cat *gpu.Catalog) Option { return func(c *config) { c.catalog = cat } }

// WithAddr sets the listen address (default 127.0.0.1:0). It must be a
// loopback address.
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithCallbackClient sets the HTTP client the simulated containers use.
func WithCallbackClient(hc *http.Client) Option { return func(c *config) { c.callbackClient = hc } }

// Endpoint is a snapshot of a simulated endpoint.
type Endpoint struct {
	ID            string
	Name          string
	Type          string
	Image         string
	Env           map[string]string
	Pools         []string
	ExcludedTypes []string
	GPUCount      int
	// AllowedCudaVersions is gpu.allowedCudaVersions, MinCudaVersion
	// gpu.minCudaVersion ("" when unset).
	AllowedCudaVersions []string
	MinCudaVersion      string
	WorkersMin          int
	WorkersMax          int
	IdleTimeout         int
	TimeoutMs           int
	DiskGB              int
	Flashboot           string
	CreatedAt           time.Time
	Workers             []Worker
}

// Worker is a snapshot of a simulated worker.
type Worker struct {
	ID        string
	Status    runpod.WorkerStatus
	GPUTypeID string
	StartedAt time.Time
	PID       int    // the process of a process worker (WithWorkerProcess), else 0
	Container string // its container when the worker runs in one (WorkerProcess.Container), else ""
}

// Callback records one POST a simulated container made.
type Callback struct {
	EndpointID   string
	WorkerID     string
	DeploymentID string
	Status       string
	HTTPStatus   int    // 0 when the request failed
	Err          string // why it failed
	At           time.Time
}

type fault struct {
	op         string // "" for any operation
	status     int
	retryAfter time.Duration
	detail     string
	// late: a create that hangs for hang (or until the client gives up),
	// drops the connection unanswered, and lands after.
	late        bool
	hang, after time.Duration
	// hangOnly: hold the call for hang, then serve it.
	hangOnly bool
}

type account struct {
	balance   float64
	endpoints map[string]*endpoint
}

// Server is a running simulator. Its methods are safe for concurrent use.
type Server struct {
	// URL is the API base including /v2 (http://127.0.0.1:PORT/v2).
	URL string

	cfg      config
	listener net.Listener
	http     *http.Server
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu         sync.Mutex
	accounts   map[string]*account
	calls      map[string]int
	faults     []fault
	stockOut   map[string]bool
	crashLoop  bool
	silent     bool
	changed    chan struct{} // closed and replaced when placement may change
	chaos      *chaosState   // SetChaos
	neverStart bool          // SetWorkersNeverStart
	// FailFor's outage.
	outageUntil  time.Time
	outageStatus int
	lateWaiting  int // late creates not landed yet
	lateLanded   int
	callbacks    []Callback
	closed       bool
	seq          int
	placeCenter  string
	procDir      string    // root of the worker processes' directories
	procDirTemp  bool      // procDir was made by the simulator: removed on Close
	sweep        sync.Once // stale containers of dead simulators removed (containerCommand)
	logMu        sync.Mutex
	charges      []*charge // every worker's billed time (billing.go)
}

// New starts a simulator on a loopback address. Like httptest.NewServer, it
// panics if it cannot listen.
func New(opts ...Option) *Server {
	cfg := config{
		addr:             "127.0.0.1:0",
		bootDelay:        DefaultBootDelay,
		callbackInterval: DefaultCallbackInterval,
		requestURLBase:   DefaultRequestURLBase,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.catalog == nil {
		cfg.catalog = gpu.Default()
	}
	if cfg.callbackClient == nil {
		cfg.callbackClient = &http.Client{
			Timeout: 5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	host, _, err := net.SplitHostPort(cfg.addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		panic(fmt.Sprintf("runpodsim: listen address %q is not a loopback IP address", cfg.addr))
	}
	l, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		panic(fmt.Sprintf("runpodsim: listening on %s: %v", cfg.addr, err))
	}
	if cfg.requestURLBase == "" {
		cfg.requestURLBase = "http://" + l.Addr().String() + "/v2"
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		URL:         "http://" + l.Addr().String() + "/v2",
		cfg:         cfg,
		listener:    l,
		ctx:         ctx,
		cancel:      cancel,
		accounts:    make(map[string]*account),
		calls:       make(map[string]int),
		stockOut:    make(map[string]bool),
		silent:      cfg.silent,
		changed:     make(chan struct{}),
		placeCenter: "US-TX-3",
	}
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(fmt.Sprintf("runpodsim: serving: %v", err))
		}
	}()
	return s
}

// Close stops the server, every simulated worker and every callback, and
// waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.http.Shutdown(ctx)
	s.wg.Wait()
	s.removeProcDir()
}

// AddAccount makes key a valid API key whose account has balance (USD). A
// balance of 0 or less makes creates answer 402. Adding an existing key
// sets its balance and keeps its endpoints.
func (s *Server) AddAccount(key string, balance float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accounts[key]; ok {
		a.balance = balance
		return
	}
	s.accounts[key] = &account{balance: balance, endpoints: make(map[string]*endpoint)}
}

// FailNext makes the next n API calls, whatever they are, answer status
// (429 or 5xx, say) with a problem body and, when retryAfter > 0, a
// Retry-After header in whole seconds (rounded up). Injected failures are
// answered before authentication and count in Calls.
func (s *Server) FailNext(n, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status: status, retryAfter: retryAfter})
	}
}

// FailNextCreate makes the next createEndpoint answer status (400, 402, 403,
// 422...) with detail (and, for 422, detail as the errors list).
func (s *Server) FailNextCreate(status int, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{op: OpCreateEndpoint, status: status, detail: detail})
}

// CreateLate makes the next createEndpoint ambiguous, as when RunPod is
// slow: the request hangs for hang (or until the client gives up, whichever
// comes first), the connection is then dropped without an answer, and the
// endpoint is created after that, once after has passed.
func (s *Server) CreateLate(hang, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{op: OpCreateEndpoint, late: true, hang: hang, after: after})
}

// LateCreates reports the late creates (see CreateLate) still to land and
// those that landed.
func (s *Server) LateCreates() (waiting, landed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lateWaiting, s.lateLanded
}

// SetStockOut sets which pools have no capacity (AllPools: every pool);
// no argument restocks everything. Workers waiting on capacity are placed
// as soon as one of their pools has some; placed workers stay where they are.
func (s *Server) SetStockOut(pools ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stockOut = make(map[string]bool, len(pools))
	for _, p := range pools {
		s.stockOut[p] = true
	}
	s.notifyLocked()
}

// SetCrashLoop makes workers that start booting from now on turn UNHEALTHY
// instead of IDLE, without callbacks.
func (s *Server) SetCrashLoop(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crashLoop = on
}

// SetSilent turns the containers' callbacks off (or back on) for workers
// that start booting from now on.
func (s *Server) SetSilent(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.silent = on
}

// Endpoints returns the endpoints of key's account, oldest first.
func (s *Server) Endpoints(key string) []Endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[key]
	if !ok {
		return nil
	}
	var out []Endpoint
	for _, e := range a.sorted() {
		out = append(out, e.snapshot())
	}
	return out
}

// Calls returns how many requests each operation received (failed ones
// included), keyed by the Op constants.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// Callbacks returns every callback the containers made, in order.
func (s *Server) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.callbacks)
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (a *account) sorted() []*endpoint {
	eps := slices.Collect(maps.Values(a.endpoints))
	slices.SortFunc(eps, func(x, y *endpoint) int { return x.seq - y.seq })
	return eps
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// newID returns 8 random lowercase alphanumerics, like RunPod's ids.
func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}
