package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
)

// ReadinessError is /readiness's error when the store does not answer.
const ReadinessError = "the store is unreachable"

// ReadinessTimeout bounds the store check of /readiness.
const ReadinessTimeout = 1500 * time.Millisecond

func joinSorted(s []string) string {
	c := slices.Clone(s)
	slices.Sort(c)
	return strings.Join(slices.Compact(c), ", ")
}

// Header values of the static answers, assigned (canonical keys, shared
// slices, never changed in place) rather than Set: Set canonicalises and
// allocates per request.
var (
	jsonType = []string{"application/json"}
	noStore  = []string{"no-store"}
)

var (
	healthBody = []byte(`{"status":"ok"}` + "\n")
	rootBody   = []byte(`{"service":"deployment-orchestrator","docs":"/docs"}` + "\n")
)

func writeStatic(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Cache-Control"] = noStore
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) { writeStatic(w, healthBody) }

func (s *Server) root(w http.ResponseWriter, r *http.Request) { writeStatic(w, rootBody) }

func (s *Server) readiness(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), ReadinessTimeout)
	defer cancel()
	if err := s.Store.Ping(ctx); err != nil {
		s.logger().WarnContext(ctx, "readiness: store unreachable", "error", err.Error())
		// Anyone may call /readiness: the store's own error (addresses,
		// project, paths) goes to the log only.
		httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unready", "error": ReadinessError})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) docs(w http.ResponseWriter, r *http.Request) {
	if s.Docs == nil {
		httpx.WriteError(w, httpx.RouteNotFound(r.URL.Path))
		return
	}
	s.Docs.ServeHTTP(w, r)
}

type gpuCard struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type gpuPool struct {
	Pool           string    `json:"pool"`
	VRAMGB         int       `json:"vram_gb"`
	PricePerHour   float64   `json:"price_per_hour"`
	PricePerSecond float64   `json:"price_per_second"`
	Cards          []gpuCard `json:"cards"`
}

// GPUPricesNote says what the prices of GET /v1/gpus leave out.
const GPUPricesNote = "RunPod's serverless list price (flex workers) of one GPU per worker, billed per second while a worker runs; " +
	"storage, network and RunPod's fees are not included"

func (s *Server) listGPUs(w http.ResponseWriter, r *http.Request) {
	out := []gpuPool{}
	for _, p := range s.GPUs.Pools() {
		g := gpuPool{Pool: p.ID, VRAMGB: p.VRAMGB, PricePerHour: p.PricePerHour,
			PricePerSecond: deployment.PricePerSecond(p.PricePerHour), Cards: []gpuCard{}}
		for _, c := range p.Cards {
			g.Cards = append(g.Cards, gpuCard{ID: c.ID, Name: c.Short})
		}
		out = append(out, g)
	}
	source, at := "embedded", (*time.Time)(nil)
	if t := s.GPUs.ReadAt(); !t.IsZero() {
		source, at = "runpod", &t
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"gpus": out, "catalog_source": source, "catalog_at": at, "prices_note": GPUPricesNote})
}

type modelEntry struct {
	Provider    string `json:"provider"`
	ModelName   string `json:"model_name"`
	HFModelID   string `json:"hf_model_id"`
	Description string `json:"description"`
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	out := []modelEntry{}
	for _, e := range s.Models.Entries() {
		out = append(out, modelEntry{Provider: e.Provider, ModelName: e.ModelName, HFModelID: e.HFModelID, Description: e.Description})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"models": out})
}
