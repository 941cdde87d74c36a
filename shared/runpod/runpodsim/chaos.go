package runpodsim

import (
	"maps"
	"math/rand/v2"
	"time"
)

// Chaos injects faults at random into the API calls (createEndpoint,
// listEndpoints, ... not the job API), each call drawing from a generator
// seeded by SetChaos, so that a failing run can be replayed with its seed.
// Rates are probabilities per call (or per endpoint for NeverStart).
type Chaos struct {
	// RateLimit answers 429, with a Retry-After header of RetryAfter when
	// it is positive (whole seconds, rounded up).
	RateLimit  float64
	RetryAfter time.Duration
	// ServerError answers a 5xx (500, 502 or 503).
	ServerError float64
	// Hang holds the call for HangFor, then serves it: a client with a
	// shorter timeout gives up while RunPod still does what it asked.
	Hang    float64
	HangFor time.Duration
	// LateCreate makes a create ambiguous (see CreateLate): the connection
	// drops after HangFor (or when the client gives up) and the endpoint
	// is made LateAfter later.
	LateCreate float64
	LateAfter  time.Duration
	// NeverStart makes an endpoint's workers stay INITIALIZING for ever,
	// sending no callbacks: a worker that never starts.
	NeverStart float64
}

// Chaos outcomes, the keys of ChaosCounts.
const (
	ChaosRateLimit   = "rate_limit"
	ChaosServerError = "server_error"
	ChaosHang        = "hang"
	ChaosLateCreate  = "late_create"
	ChaosNeverStart  = "never_start"
)

type chaosState struct {
	cfg    Chaos
	rnd    *rand.Rand
	counts map[string]int
}

// SetChaos turns random faults on (a zero Chaos turns them off), drawn from
// a generator seeded with seed.
func (s *Server) SetChaos(seed uint64, c Chaos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chaos = &chaosState{cfg: c, rnd: rand.New(rand.NewPCG(seed, 0x72756e706f64)), counts: map[string]int{}}
}

// ChaosCounts reports how many faults of each kind SetChaos's generator
// injected.
func (s *Server) ChaosCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chaos == nil {
		return nil
	}
	return maps.Clone(s.chaos.counts)
}

// chaosLocked draws the fault of one call of op, if any.
func (s *Server) chaosLocked(op string) (fault, bool) {
	c := s.chaos
	if c == nil || op == OpListGPUTypes {
		return fault{}, false
	}
	cfg := c.cfg
	if op == OpCreateEndpoint && c.rnd.Float64() < cfg.LateCreate {
		c.counts[ChaosLateCreate]++
		return fault{op: op, late: true, hang: cfg.HangFor, after: cfg.LateAfter}, true
	}
	switch r := c.rnd.Float64(); {
	case r < cfg.RateLimit:
		c.counts[ChaosRateLimit]++
		return fault{status: 429, retryAfter: cfg.RetryAfter}, true
	case r < cfg.RateLimit+cfg.ServerError:
		c.counts[ChaosServerError]++
		return fault{status: []int{500, 502, 503}[c.rnd.IntN(3)]}, true
	case r < cfg.RateLimit+cfg.ServerError+cfg.Hang:
		c.counts[ChaosHang]++
		return fault{hangOnly: true, hang: cfg.HangFor}, true
	}
	return fault{}, false
}

// neverStartLocked draws whether a new endpoint's workers never start.
func (s *Server) neverStartLocked() bool {
	if s.neverStart {
		return true
	}
	c := s.chaos
	if c == nil || c.cfg.NeverStart <= 0 || c.rnd.Float64() >= c.cfg.NeverStart {
		return false
	}
	c.counts[ChaosNeverStart]++
	return true
}

// HangNext holds each of the next n API calls of op ("" for any) for d
// (or until the client gives up), then serves it: a timeout for a client
// with a shorter one, after which RunPod still did what was asked.
func (s *Server) HangNext(op string, n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{op: op, hangOnly: true, hang: d})
	}
}

// FailFor answers every API call with status for d from now: an outage.
func (s *Server) FailFor(d time.Duration, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outageUntil, s.outageStatus = time.Now().Add(d), status
}

// outageLocked is the fault of a call during a FailFor outage.
func (s *Server) outageLocked() (fault, bool) {
	if time.Now().Before(s.outageUntil) {
		return fault{status: s.outageStatus}, true
	}
	return fault{}, false
}

// SetWorkersNeverStart makes the workers of endpoints created from now on
// stay INITIALIZING for ever, sending no callbacks (or, off, start again).
func (s *Server) SetWorkersNeverStart(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.neverStart = on
}
