package runpodsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
)

// apiError is a problem+json answer.
type apiError struct {
	status     int
	detail     string
	errors     []string
	retryAfter time.Duration
	allow      string
}

func badRequest(detail string) *apiError {
	return &apiError{status: http.StatusBadRequest, detail: detail}
}

func invalid(errs []string) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, detail: "Request validation failed.", errors: errs}
}

func notFound(detail string) *apiError { return &apiError{status: http.StatusNotFound, detail: detail} }

func writeProblem(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.retryAfter.Seconds()))))
	}
	if e.allow != "" {
		w.Header().Set("Allow", e.allow)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(e.status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		Title  string   `json:"title"`
		Status int      `json:"status"`
		Detail string   `json:"detail"`
		Errors []string `json:"errors,omitempty"`
	}{http.StatusText(e.status), e.status, e.detail, e.errors})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// route maps a request to its operation id and endpoint id.
func route(r *http.Request) (op, id string, e *apiError) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	methods := func(allowed string, byMethod map[string]string) (string, *apiError) {
		if op, ok := byMethod[r.Method]; ok {
			return op, nil
		}
		return "", &apiError{status: http.StatusMethodNotAllowed,
			detail: "The requested method is not allowed for this path.", allow: allowed}
	}
	switch {
	case len(parts) == 2 && parts[0] == "v2" && parts[1] == "serverless":
		op, e = methods("GET, POST", map[string]string{"GET": OpListEndpoints, "POST": OpCreateEndpoint})
	case len(parts) == 3 && parts[0] == "v2" && parts[1] == "serverless" && parts[2] != "":
		id = parts[2]
		op, e = methods("GET, PATCH, DELETE", map[string]string{
			"GET": OpGetEndpoint, "PATCH": OpUpdateEndpoint, "DELETE": OpDeleteEndpoint})
	case len(parts) == 4 && parts[0] == "v2" && parts[1] == "serverless" && parts[2] != "" && parts[3] == "workers":
		id = parts[2]
		op, e = methods("GET", map[string]string{"GET": OpListEndpointWorkers})
	case len(parts) == 3 && parts[0] == "v2" && parts[1] == "billing" && parts[2] == "serverless":
		op, e = methods("GET", map[string]string{"GET": OpListServerlessBilling})
	case len(parts) == 3 && parts[0] == "v2" && parts[1] == "catalog" && parts[2] == "gpus":
		op, e = methods("GET", map[string]string{"GET": OpListGPUTypes})
	default:
		e = notFound("no such path: " + r.URL.Path)
	}
	return op, id, e
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if jr, ok := parseJobRoute(r.URL.Path); ok {
		s.serveJobs(w, r, jr)
		return
	}
	op, id, rerr := route(r)
	if rerr != nil {
		writeProblem(w, rerr)
		return
	}
	s.mu.Lock()
	s.calls[op]++
	f, ok := s.outageLocked()
	if !ok {
		f, ok = s.takeFaultLocked(op)
	}
	if !ok {
		f, ok = s.chaosLocked(op)
	}
	if ok && f.hangOnly {
		s.mu.Unlock()
		t := time.NewTimer(f.hang)
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-s.ctx.Done():
		}
		t.Stop()
		s.mu.Lock()
		ok = false
	}
	if ok && f.late {
		s.lateWaiting++
		s.mu.Unlock()
		s.createLate(w, r, f)
		return
	} else if ok {
		s.mu.Unlock()
		detail := f.detail
		if detail == "" {
			detail = strings.ToLower(http.StatusText(f.status))
			if f.status == http.StatusTooManyRequests {
				detail = "rate limit exceeded for the minute window"
			}
		}
		e := &apiError{status: f.status, detail: detail, retryAfter: f.retryAfter}
		if f.status == http.StatusUnprocessableEntity {
			e.errors = []string{detail}
		}
		writeProblem(w, e)
		return
	}
	s.mu.Unlock()

	key, aerr := s.authenticate(r)
	if aerr != nil {
		writeProblem(w, aerr)
		return
	}
	var body []byte
	if r.Method == http.MethodPost || r.Method == http.MethodPatch {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeProblem(w, badRequest("request body could not be read"))
			return
		}
		body = b
	}
	switch op {
	case OpCreateEndpoint:
		s.create(w, key, body)
	case OpListEndpoints:
		s.list(w, key)
	case OpGetEndpoint:
		s.get(w, key, id)
	case OpUpdateEndpoint:
		s.update(w, key, id, body)
	case OpDeleteEndpoint:
		s.delete(w, key, id)
	case OpListEndpointWorkers:
		s.workers(w, key, id)
	case OpListGPUTypes:
		s.gpus(w, r)
	case OpListServerlessBilling:
		s.serverlessBilling(w, r, key)
	}
}

// createLate serves a create taken by a CreateLate fault: it hangs, drops
// the connection, and creates the endpoint later.
func (s *Server) createLate(w http.ResponseWriter, r *http.Request, f fault) {
	landed := func() {
		s.mu.Lock()
		s.lateWaiting--
		s.lateLanded++
		s.mu.Unlock()
	}
	key, aerr := s.authenticate(r)
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if aerr != nil || err != nil {
		landed() // nothing to create: the request itself was bad
		panic(http.ErrAbortHandler)
	}
	t := time.NewTimer(f.hang)
	select {
	case <-t.C:
	case <-r.Context().Done():
	case <-s.ctx.Done():
	}
	t.Stop()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		landed()
		panic(http.ErrAbortHandler)
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer landed()
		if !sleep(s.ctx, f.after) {
			return
		}
		s.create(discard{header: http.Header{}}, key, body)
	}()
	panic(http.ErrAbortHandler) // the connection drops unanswered
}

// discard is a ResponseWriter nobody reads: the answer of a late create.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

func (s *Server) takeFaultLocked(op string) (fault, bool) {
	for i, f := range s.faults {
		if f.op == "" || f.op == op {
			s.faults = slices.Delete(s.faults, i, i+1)
			return f, true
		}
	}
	return fault{}, false
}

func (s *Server) authenticate(r *http.Request) (string, *apiError) {
	// RunPod takes the key as a Bearer token or raw (its operation
	// reference sends `authorization: $RUNPOD_API_KEY`).
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	key := h
	if scheme, rest, ok := strings.Cut(h, " "); ok {
		if !strings.EqualFold(scheme, "Bearer") {
			return "", &apiError{status: http.StatusUnauthorized, detail: "missing bearer token"}
		}
		key = strings.TrimSpace(rest)
	}
	if key == "" {
		return "", &apiError{status: http.StatusUnauthorized, detail: "missing bearer token"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[key]; ok {
		return key, nil
	}
	if s.cfg.anyKey {
		s.accounts[key] = &account{balance: AnyKeyBalance, endpoints: make(map[string]*endpoint)}
		return key, nil
	}
	return "", &apiError{status: http.StatusUnauthorized, detail: "invalid API key"}
}

// checkCompute applies the cross-field rules of a create or update (400).
func (s *Server) checkCompute(b *body) *apiError {
	if b.cudaSet && len(b.cudaVersions) > 0 && b.minCuda != nil && *b.minCuda != "" {
		return badRequest("gpu.allowedCudaVersions and gpu.minCudaVersion are mutually exclusive")
	}
	if !b.poolsSet {
		return nil
	}
	var cards []string
	for _, id := range b.pools {
		p, ok := s.cfg.catalog.Pool(id)
		if !ok {
			return badRequest(fmt.Sprintf("unknown GPU pool %q; pools are the `pool` values of GET /v2/catalog/gpus", id))
		}
		for _, c := range p.Cards {
			cards = append(cards, c.ID)
		}
	}
	left := len(cards)
	for _, t := range b.excluded {
		if !slices.Contains(cards, t) {
			return badRequest(fmt.Sprintf("gpu.excludedTypes: %q is not a GPU type in the selected pools", t))
		}
		left--
	}
	if left <= 0 {
		return badRequest("gpu.excludedTypes leaves no GPU type in the selected pools")
	}
	return nil
}

// decodeBody parses a create (or update) body, answering the problem itself
// when it is not valid.
func decodeBody(w http.ResponseWriter, raw []byte, create bool) (*body, bool) {
	obj, perr := decodeObject(raw)
	if perr != nil {
		writeProblem(w, perr)
		return nil, false
	}
	b, errs := parseBody(obj, create)
	if len(errs) > 0 {
		writeProblem(w, invalid(errs))
		return nil, false
	}
	return b, true
}

func (s *Server) create(w http.ResponseWriter, key string, raw []byte) {
	b, ok := decodeBody(w, raw, true)
	if !ok {
		return
	}
	if b.gpuSet == b.cpuSet {
		writeProblem(w, badRequest("exactly one of gpu or cpu must be given"))
		return
	}
	if perr := s.checkCompute(b); perr != nil {
		writeProblem(w, perr)
		return
	}
	if b.templateID != nil {
		writeProblem(w, notFound(fmt.Sprintf("template %q not found", *b.templateID)))
		return
	}
	e := &endpoint{
		owner: key,
		id:    newID(), typ: *b.typ, image: deref(b.image, ""), args: deref(b.args, ""),
		disk: deref(b.disk, 20), ports: orEmpty(b.ports), env: b.env, registry: b.registry,
		gpu: b.gpuSet, pools: b.pools, excluded: b.excluded, gpuCount: deref(b.gpuCount, 1),
		cudaVersions: orEmpty(b.cudaVersions), minCuda: b.minCuda, cpu: b.cpu,
		min: deref(b.wMin, 0), max: deref(b.wMax, 3), idle: deref(b.wIdle, 10),
		scalingType: b.scalingType, queueDelay: b.queueDelay, requestCount: b.requestCount,
		dataCenterIDs: orEmpty(b.dataCenterIDs), networkVolumes: orEmpty(b.netVolumes),
		timeout: deref(b.timeout, 300000), flashboot: deref(b.flashboot, "OFF"),
		createdAt: time.Now().UTC(), version: 1,
		jobs: map[string]*job{}, jobsChanged: make(chan struct{}),
	}
	if e.env == nil {
		e.env = map[string]string{}
	}
	if e.min > e.max {
		writeProblem(w, badRequest(fmt.Sprintf("workers.min (%d) cannot exceed workers.max (%d)", e.min, e.max)))
		return
	}
	if e.typ == "QUEUE" && e.scalingType == "REQUEST_COUNT" && b.wIdle != nil {
		writeProblem(w, badRequest("workers.idleTimeout does not apply to a queue endpoint scaling on requestCount"))
		return
	}
	e.name = *b.name
	if e.flashboot != "OFF" {
		e.name += " -fb"
	}

	s.mu.Lock()
	a := s.accounts[key]
	if a.balance <= 0 {
		s.mu.Unlock()
		writeProblem(w, &apiError{status: http.StatusPaymentRequired,
			detail: "insufficient balance: add funds to your account to create serverless endpoints"})
		return
	}
	s.seq++
	e.seq = s.seq
	e.neverStart = s.neverStartLocked()
	e.ctx, e.cancel = context.WithCancel(s.ctx)
	a.endpoints[e.id] = e
	s.scaleLocked(e)
	out := s.wireLocked(e)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) list(w http.ResponseWriter, key string) {
	s.mu.Lock()
	out := struct {
		Endpoints []wireEndpoint `json:"endpoints"`
	}{Endpoints: []wireEndpoint{}}
	for _, e := range s.accounts[key].sorted() {
		out.Endpoints = append(out.Endpoints, s.wireLocked(e))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) find(key, id string) (*endpoint, *apiError) {
	e, ok := s.accounts[key].endpoints[id]
	if !ok {
		return nil, notFound(fmt.Sprintf("endpoint %s not found", id))
	}
	return e, nil
}

func (s *Server) get(w http.ResponseWriter, key, id string) {
	s.mu.Lock()
	e, aerr := s.find(key, id)
	if aerr != nil {
		s.mu.Unlock()
		writeProblem(w, aerr)
		return
	}
	out := s.wireLocked(e)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) update(w http.ResponseWriter, key, id string, raw []byte) {
	s.mu.Lock()
	_, aerr := s.find(key, id)
	s.mu.Unlock()
	if aerr != nil {
		writeProblem(w, aerr)
		return
	}
	b, ok := decodeBody(w, raw, false)
	if !ok {
		return
	}
	if b.templateID != nil {
		writeProblem(w, notFound(fmt.Sprintf("template %q not found", *b.templateID)))
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	e, aerr := s.find(key, id)
	if aerr != nil {
		writeProblem(w, aerr)
		return
	}
	switch {
	case b.gpuSet && b.cpuSet:
		writeProblem(w, badRequest("gpu and cpu cannot both be given"))
		return
	case b.gpuSet && !e.gpu:
		writeProblem(w, badRequest("gpu cannot be set on a CPU endpoint: compute family is immutable"))
		return
	case b.cpuSet && e.gpu:
		writeProblem(w, badRequest("cpu cannot be set on a GPU endpoint: compute family is immutable"))
		return
	}
	if perr := s.checkCompute(b); perr != nil {
		writeProblem(w, perr)
		return
	}
	newMin, newMax := deref(b.wMin, e.min), deref(b.wMax, e.max)
	if newMin > newMax {
		writeProblem(w, badRequest(fmt.Sprintf("workers.min (%d) cannot exceed workers.max (%d)", newMin, newMax)))
		return
	}
	scalingType := e.scalingType
	if b.scalingSet {
		scalingType = b.scalingType
	}
	if e.typ == "LOAD_BALANCER" && scalingType == "QUEUE_DELAY" {
		writeProblem(w, badRequest("a LOAD_BALANCER endpoint scales on REQUEST_COUNT only"))
		return
	}
	if e.typ == "QUEUE" && scalingType == "REQUEST_COUNT" && b.wIdle != nil {
		writeProblem(w, badRequest("workers.idleTimeout does not apply to a queue endpoint scaling on requestCount"))
		return
	}

	containerChanged := b.image != nil || b.env != nil || b.args != nil || b.disk != nil || b.portsSet || b.registrySet
	if b.name != nil {
		e.name = *b.name
	}
	if b.image != nil {
		e.image = *b.image
	}
	if b.args != nil {
		e.args = *b.args
	}
	if b.disk != nil {
		e.disk = *b.disk
	}
	if b.env != nil {
		e.env = b.env
	}
	if b.portsSet {
		e.ports = orEmpty(b.ports)
	}
	if b.registrySet {
		e.registry = b.registry
	}
	if b.dcSet {
		e.dataCenterIDs = orEmpty(b.dataCenterIDs)
	}
	if b.nvSet {
		e.networkVolumes = orEmpty(b.netVolumes)
	}
	if b.timeout != nil {
		e.timeout = *b.timeout
	}
	if b.flashboot != nil {
		e.flashboot = *b.flashboot
	}
	if b.poolsSet {
		e.pools, e.excluded = b.pools, b.excluded
	}
	if b.gpuCount != nil {
		e.gpuCount = *b.gpuCount
	}
	if b.cudaSet {
		e.cudaVersions = orEmpty(b.cudaVersions)
	}
	if b.minCuda != nil {
		e.minCuda = b.minCuda
		if *b.minCuda == "" {
			e.minCuda = nil
		}
	}
	if b.cpuSet {
		e.cpu = b.cpu
	}
	if b.scalingSet {
		e.scalingType, e.queueDelay, e.requestCount = b.scalingType, b.queueDelay, b.requestCount
	}
	e.min, e.max = newMin, newMax
	if b.wIdle != nil {
		e.idle = *b.wIdle
	}
	if containerChanged {
		e.version++
	}
	s.scaleLocked(e)
	writeJSON(w, http.StatusOK, s.wireLocked(e))
}

func (s *Server) delete(w http.ResponseWriter, key, id string) {
	s.mu.Lock()
	e, aerr := s.find(key, id)
	if aerr != nil {
		s.mu.Unlock()
		writeProblem(w, aerr)
		return
	}
	for _, wk := range e.workers {
		wk.cancel() // stops its billing
	}
	e.cancel()
	delete(s.accounts[key].endpoints, id)
	s.mu.Unlock()
	e.running.Wait() // its workers have stopped: none calls back after the delete
	w.WriteHeader(http.StatusNoContent)
}

type wireWorker struct {
	ID            string              `json:"id"`
	Status        runpod.WorkerStatus `json:"status"`
	IsStale       bool                `json:"isStale"`
	Version       int                 `json:"version"`
	GPUCount      int                 `json:"gpuCount"`
	Image         *string             `json:"image"`
	UptimeSeconds *int                `json:"uptimeSeconds"`
	GPUTypeID     *string             `json:"gpuTypeId"`
	DataCenterID  *string             `json:"dataCenterId"`
	StartedAt     *time.Time          `json:"startedAt"`
}

type workerSummary struct {
	Running      int `json:"running"`
	Idle         int `json:"idle"`
	Initializing int `json:"initializing"`
	Throttled    int `json:"throttled"`
	Unhealthy    int `json:"unhealthy"`
	Total        int `json:"total"`
}

func (s *Server) workers(w http.ResponseWriter, key, id string) {
	s.mu.Lock()
	e, aerr := s.find(key, id)
	if aerr != nil {
		s.mu.Unlock()
		writeProblem(w, aerr)
		return
	}
	out := struct {
		Workers         []wireWorker  `json:"workers"`
		Summary         workerSummary `json:"summary"`
		EndpointVersion int           `json:"endpointVersion"`
	}{Workers: []wireWorker{}, EndpointVersion: e.version}
	now := time.Now().UTC()
	for _, wk := range e.workers {
		ww := wireWorker{ID: wk.id, Status: wk.status, IsStale: wk.version != e.version, Version: wk.version}
		if wk.status != runpod.WorkerThrottled {
			image, gpuType, dc, started := e.image, wk.gpuTypeID, wk.dataCenter, wk.startedAt
			uptime := int(now.Sub(started).Seconds())
			ww.Image, ww.DataCenterID, ww.StartedAt, ww.UptimeSeconds = &image, &dc, &started, &uptime
			if e.gpu {
				ww.GPUCount = e.gpuCount
				ww.GPUTypeID = &gpuType
			}
		}
		out.Workers = append(out.Workers, ww)
		switch wk.status {
		case runpod.WorkerRunning:
			out.Summary.Running++
		case runpod.WorkerIdle:
			out.Summary.Idle++
		case runpod.WorkerInitializing:
			out.Summary.Initializing++
		case runpod.WorkerThrottled:
			out.Summary.Throttled++
		case runpod.WorkerUnhealthy:
			out.Summary.Unhealthy++
		}
		out.Summary.Total++
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

type wireGPUType struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Pool         string `json:"pool"`
	Manufacturer string `json:"manufacturer"`
	Memory       int    `json:"memory"`
	Secure       bool   `json:"secure"`
	Community    bool   `json:"community"`
	Price        struct {
		Secure     float64 `json:"secure"`
		Community  float64 `json:"community"`
		Serverless float64 `json:"serverless"`
	} `json:"price"`
	MaxCount struct {
		Secure    int `json:"secure"`
		Community int `json:"community"`
	} `json:"maxCount"`
	Availability string `json:"availability,omitempty"`
}

func (s *Server) gpus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	include, product := q.Get("include"), q.Get("product")
	if include != "" && include != "AVAILABILITY" {
		writeProblem(w, invalid([]string{fmt.Sprintf("include: value must be one of 'AVAILABILITY', got %q", include)}))
		return
	}
	if (include == "") != (product == "") {
		writeProblem(w, badRequest("product is required with include=AVAILABILITY, and valid only with it"))
		return
	}
	s.mu.Lock()
	stock := func(pool string) string {
		if s.stockOut[AllPools] || s.stockOut[pool] {
			return "NONE"
		}
		return "HIGH"
	}
	out := struct {
		GPUs []wireGPUType `json:"gpus"`
	}{GPUs: []wireGPUType{}}
	for _, p := range s.cfg.catalog.Pools() {
		for _, c := range p.Cards {
			g := wireGPUType{ID: c.ID, Name: c.Short, Pool: p.ID, Manufacturer: "NVIDIA", Memory: c.VRAMGB,
				Secure: true, Community: true}
			g.Price.Serverless = p.PricePerHour
			g.Price.Secure = math.Round(p.PricePerHour*60) / 100
			g.Price.Community = math.Round(p.PricePerHour*45) / 100
			g.MaxCount.Secure, g.MaxCount.Community = 8, 4
			if include != "" {
				g.Availability = stock(p.ID)
			}
			out.GPUs = append(out.GPUs, g)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// Endpoint wire format (openapi Endpoint).

type wireGPUConfig struct {
	Pools               []string `json:"pools"`
	ExcludedTypes       []string `json:"excludedTypes,omitempty"`
	Count               int      `json:"count"`
	AllowedCudaVersions []string `json:"allowedCudaVersions"`
	MinCudaVersion      *string  `json:"minCudaVersion"`
}

type wireWorkers struct {
	Min         int  `json:"min"`
	Max         int  `json:"max"`
	IdleTimeout *int `json:"idleTimeout,omitempty"`
}

type wireScaling struct {
	Type         string   `json:"type"`
	QueueDelay   *float64 `json:"queueDelay,omitempty"`
	RequestCount *int     `json:"requestCount,omitempty"`
}

type wireEndpoint struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	Type           string            `json:"type"`
	RequestURLs    map[string]string `json:"requestUrls"`
	Image          string            `json:"image"`
	Args           string            `json:"args"`
	Disk           int               `json:"disk"`
	Ports          []string          `json:"ports"`
	Env            map[string]string `json:"env"`
	Registry       *string           `json:"registry"`
	GPU            *wireGPUConfig    `json:"gpu"`
	CPU            []cpuConfig       `json:"cpu,omitempty"`
	Workers        wireWorkers       `json:"workers"`
	Scaling        wireScaling       `json:"scaling"`
	DataCenterIDs  []string          `json:"dataCenterIds"`
	NetworkVolumes []string          `json:"networkVolumes"`
	Timeout        int               `json:"timeout"`
	Flashboot      string            `json:"flashboot"`
	CreatedAt      time.Time         `json:"createdAt"`
}

func (s *Server) wireLocked(e *endpoint) wireEndpoint {
	out := wireEndpoint{
		ID: e.id, Name: e.name, Type: e.typ, Image: e.image, Args: e.args, Disk: e.disk,
		Ports: slices.Clone(e.ports), Env: cloneMap(e.env), Registry: e.registry,
		CPU:           slices.Clone(e.cpu),
		Workers:       wireWorkers{Min: e.min, Max: e.max},
		Scaling:       wireScaling{Type: e.scalingType},
		DataCenterIDs: slices.Clone(e.dataCenterIDs), NetworkVolumes: slices.Clone(e.networkVolumes),
		Timeout: e.timeout, Flashboot: e.flashboot, CreatedAt: e.createdAt,
	}
	if !(e.typ == "QUEUE" && e.scalingType == "REQUEST_COUNT") {
		idle := e.idle
		out.Workers.IdleTimeout = &idle
	}
	switch e.scalingType {
	case "QUEUE_DELAY":
		d := e.queueDelay
		out.Scaling.QueueDelay = &d
	case "REQUEST_COUNT":
		n := e.requestCount
		out.Scaling.RequestCount = &n
	}
	if e.gpu {
		out.GPU = &wireGPUConfig{Pools: slices.Clone(e.pools), ExcludedTypes: slices.Clone(e.excluded),
			Count: e.gpuCount, AllowedCudaVersions: slices.Clone(e.cudaVersions), MinCudaVersion: e.minCuda}
	}
	base := strings.TrimRight(s.cfg.requestURLBase, "/")
	if e.typ == "LOAD_BALANCER" {
		// https://{id}.api.runpod.ai, as RunPod gives it.
		lb := base + "/" + e.id
		if u, err := url.Parse(base); err == nil && u.Host != "" {
			lb = u.Scheme + "://" + e.id + "." + u.Host
		}
		out.RequestURLs = map[string]string{"base": lb, "health": lb + "/ping"}
	} else {
		u := base + "/" + e.id
		out.RequestURLs = map[string]string{
			"run": u + "/run", "runSync": u + "/runsync", "status": u + "/status/{job_id}",
			"stream": u + "/stream/{job_id}", "cancel": u + "/cancel/{job_id}", "retry": u + "/retry/{job_id}",
			"purgeQueue": u + "/purge-queue", "health": u + "/health",
		}
	}
	return out
}
