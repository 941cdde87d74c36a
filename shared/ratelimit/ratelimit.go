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
// timestamps per key (8 bytes each, in a buffer that grows with the key's
// use, not allocated in full up front, and that the garbage collector does
// not scan), and forgets keys idle for a whole window (swept at most once
// per window), so memory is bounded by the requests allowed in the last two
// windows. It is safe for concurrent use. It limits one process only:
// several instances need a shared store.
type Memory struct {
	limit  int
	window time.Duration
	now    func() time.Time
	// epoch is the clock's reading at NewMemory: the rings keep each
	// request's time as its offset from it (monotonic when the clock is).
	epoch time.Time

	mu        sync.Mutex
	keys      map[string]*ring
	lastSweep time.Duration // since epoch
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
	return &Memory{limit: limit, window: window, now: now, epoch: now(), keys: make(map[string]*ring)}
}

// Allow records a request under key if the window allows it. The error is
// always nil: Memory cannot fail.
func (m *Memory) Allow(_ context.Context, key string) (Decision, error) {
	t := m.now()
	now := t.Sub(m.epoch)
	m.mu.Lock()
	defer m.mu.Unlock()

	m.sweep(now)
	r := m.keys[key]
	if r == nil {
		r = &ring{times: make([]time.Duration, min(m.limit, initialRing))}
		m.keys[key] = r
	}
	r.expire(now, m.window)
	d := Decision{Limit: m.limit}
	if r.n < m.limit {
		r.push(now, m.limit)
		d.Allowed = true
		d.Remaining = m.limit - r.n
		d.Reset = m.epoch.Add(r.oldest() + m.window)
		return d, nil
	}
	d.Reset = m.epoch.Add(r.oldest() + m.window)
	d.RetryAfter = d.Reset.Sub(t)
	return d, nil
}

// Check reports whether one more request under key would be allowed now,
// recording nothing: a caller that counts only some requests (failed
// authentications) asks first and calls Allow for the ones that count.
func (m *Memory) Check(key string) Decision {
	t := m.now()
	now := t.Sub(m.epoch)
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
		d.Reset = m.epoch.Add(r.oldest() + m.window)
	}
	if r.n >= m.limit {
		d.Allowed, d.Remaining = false, 0
		d.RetryAfter = d.Reset.Sub(t)
	}
	return d
}

// sweep drops keys with nothing left in their window, at most once per window.
func (m *Memory) sweep(now time.Duration) {
	if now-m.lastSweep < m.window {
		return
	}
	m.lastSweep = now
	for k, r := range m.keys {
		if r.expire(now, m.window); r.n == 0 {
			delete(m.keys, k)
		}
	}
}

// initialRing is the buffer a key starts with; it doubles when full, up to
// the limit.
const initialRing = 16

// ring holds the times of the requests allowed in the current window (as
// offsets from the limiter's epoch), oldest first, in a circular buffer of
// at most limit entries.
type ring struct {
	times []time.Duration
	start int // index of the oldest
	n     int
}

func (r *ring) oldest() time.Duration { return r.times[r.start] }

// push appends t, first growing a full buffer (doubling, at most to limit;
// the caller never pushes onto limit entries).
func (r *ring) push(t time.Duration, limit int) {
	if r.n == len(r.times) {
		grown := make([]time.Duration, min(max(2*len(r.times), 1), limit))
		k := copy(grown, r.times[r.start:])
		copy(grown[k:], r.times[:r.start])
		r.times, r.start = grown, 0
	}
	r.times[(r.start+r.n)%len(r.times)] = t
	r.n++
}

// expire drops the requests that are a whole window old or older.
func (r *ring) expire(now, window time.Duration) {
	for r.n > 0 && now-r.oldest() >= window {
		r.start = (r.start + 1) % len(r.times)
		r.n--
	}
}
