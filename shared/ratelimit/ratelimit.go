// Package ratelimit limits requests per key (one API key, one owner).
package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Decision is the outcome of one Allow call.
type Decision struct {
	// Allowed says whether the request may proceed.
	Allowed bool
	// Limit is the number of requests allowed per window.
	Limit int
	// Remaining is how many more requests the window allows right now.
	Remaining int
	// RetryAfter is how long to wait before a refused request can succeed;
	// zero when Allowed.
	RetryAfter time.Duration
	// Reset is when the oldest request counted in the window leaves it,
	// freeing one slot.
	Reset time.Time
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up and at least 1,
// as a Retry-After header wants it. It is 0 when the request was allowed.
func (d Decision) RetryAfterSeconds() int {
	if d.Allowed {
		return 0
	}
	return max(1, int((d.RetryAfter+time.Second-1)/time.Second))
}

// Limiter decides whether one more request under key is allowed.
type Limiter interface {
	Allow(ctx context.Context, key string) (Decision, error)
}

// Memory is an in-process Limiter with an exact sliding window: a request is
// allowed when fewer than limit requests were allowed under its key in the
// window before it. Refused requests are not counted. It keeps at most limit
// timestamps per key, and forgets keys idle for a whole window (swept at most
// once per window), so memory is bounded by the keys active in the last two
// windows. It is safe for concurrent use. It limits one process only: several
// instances need a shared store.
type Memory struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu        sync.Mutex
	keys      map[string]*ring
	lastSweep time.Time
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns a limiter allowing limit requests per window and key. now
// is the clock (nil means time.Now); tests inject one. It panics when limit
// or window is not positive, a programming error.
func NewMemory(limit int, window time.Duration, now func() time.Time) *Memory {
	if limit < 1 || window <= 0 {
		panic(fmt.Sprintf("ratelimit.NewMemory: limit %d and window %s must be positive", limit, window))
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{limit: limit, window: window, now: now, keys: make(map[string]*ring)}
}

// Allow records a request under key if the window allows it. The error is
// always nil: Memory cannot fail.
func (m *Memory) Allow(_ context.Context, key string) (Decision, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()

	m.sweep(now)
	r := m.keys[key]
	if r == nil {
		r = &ring{times: make([]time.Time, m.limit)}
		m.keys[key] = r
	}
	r.expire(now, m.window)
	d := Decision{Limit: m.limit}
	if r.n < m.limit {
		r.push(now)
		d.Allowed = true
		d.Remaining = m.limit - r.n
		d.Reset = r.oldest().Add(m.window)
		return d, nil
	}
	d.Reset = r.oldest().Add(m.window)
	d.RetryAfter = d.Reset.Sub(now)
	return d, nil
}

// Check reports whether one more request under key would be allowed now,
// recording nothing: a caller that counts only some requests (failed
// authentications) asks first and calls Allow for the ones that count.
func (m *Memory) Check(key string) Decision {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	d := Decision{Limit: m.limit, Allowed: true, Remaining: m.limit}
	r := m.keys[key]
	if r == nil {
		return d
	}
	r.expire(now, m.window)
	d.Remaining = m.limit - r.n
	if r.n > 0 {
		d.Reset = r.oldest().Add(m.window)
	}
	if r.n >= m.limit {
		d.Allowed, d.Remaining = false, 0
		d.RetryAfter = d.Reset.Sub(now)
	}
	return d
}

// sweep drops keys with nothing left in their window, at most once per window.
func (m *Memory) sweep(now time.Time) {
	if now.Sub(m.lastSweep) < m.window {
		return
	}
	m.lastSweep = now
	for k, r := range m.keys {
		if r.expire(now, m.window); r.n == 0 {
			delete(m.keys, k)
		}
	}
}

// ring holds the times of the requests allowed in the current window, oldest
// first, in a fixed buffer of limit entries.
type ring struct {
	times []time.Time
	start int // index of the oldest
	n     int
}

func (r *ring) oldest() time.Time { return r.times[r.start] }

func (r *ring) push(t time.Time) {
	r.times[(r.start+r.n)%len(r.times)] = t
	r.n++
}

// expire drops the requests that are a whole window old or older.
func (r *ring) expire(now time.Time, window time.Duration) {
	for r.n > 0 && now.Sub(r.oldest()) >= window {
		r.start = (r.start + 1) % len(r.times)
		r.n--
	}
}
