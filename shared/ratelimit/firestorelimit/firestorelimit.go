// Package firestorelimit is a ratelimit.Limiter shared by every instance of
// the service: a fixed-window counter per key in Firestore.
//
// Each (key, window) pair is one document in the collection "ratelimits"
// (WithCollection changes it), with the id
//
//	hex(sha256(key)) + "_" + <window start, Unix seconds>
//
// and the fields
//
//	count         int64      requests allowed in the window (never above the limit)
//	window_start  timestamp  start of the window
//	expires_at    timestamp  end of the window: the document is useless afterwards
//
// Allow runs one read-write transaction: read the document, refuse when count
// has reached the limit (nothing is written: refused requests are not
// counted, so count is capped at the limit), else write count+1. Firestore
// serialises transactions on the document, so no more than limit requests
// are ever allowed in a window, whatever the number of instances.
//
// Two things keep Firestore work low. Within one instance, concurrent
// requests under the same key take turns (an in-process lock per document),
// so transactions contend only across instances: contending transactions
// are aborted and retried with a backoff of a second or more. And counts only
// grow within a window, so once an instance has seen a window full it
// refuses that key locally, with no Firestore call, until the window ends: a
// client hammering past its limit costs no reads.
//
// A fixed window allows up to 2×limit requests in a span of one window that
// straddles a boundary (limit at the end of one window, limit at the start of
// the next); ratelimit.Memory, a sliding window, does not. That is the price
// of one small document per window.
//
// Old documents are removed by a Firestore TTL policy on expires_at, which
// terraform must declare:
//
//	resource "google_firestore_field" "ratelimits_ttl" {
//	  project    = var.project_id
//	  database   = "(default)"
//	  collection = "ratelimits"
//	  field      = "expires_at"
//	  ttl_config {}
//	  index_config {} # no single-field indexes: nothing queries the collection
//	}
//
// TTL deletion runs within about a day of expires_at; a late deletion is
// harmless because a window's document is never read after its window.
package firestorelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/visgate/deployment-orchestrator/shared/ratelimit"
)

// Collection is the default collection of the counters.
const Collection = "ratelimits"

// Field names of a counter document.
const (
	FieldCount       = "count"
	FieldWindowStart = "window_start"
	FieldExpiresAt   = "expires_at"
)

const (
	defaultTimeout     = 2 * time.Second
	defaultMaxAttempts = 20
	// maxFull bounds the local cache of windows known to be full.
	maxFull = 10000
)

// Limiter is a ratelimit.Limiter over Firestore. It is safe for concurrent
// use.
type Limiter struct {
	client      *firestore.Client
	collection  string
	limit       int
	window      time.Duration
	now         func() time.Time
	timeout     time.Duration
	maxAttempts int

	mu    sync.Mutex
	full  map[string]time.Time // document id → end of its window, for windows seen full
	locks map[string]*docLock  // document id → its in-process lock, while in use
}

// docLock lets one Allow per document at a time talk to Firestore.
type docLock struct {
	ch   chan struct{} // holds a token while locked
	refs int           // holders and waiters
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// Option configures New.
type Option func(*Limiter)

// WithClock sets the clock (default time.Now); tests inject one. Every
// instance must agree on the time to share windows: on Cloud Run they do.
func WithClock(now func() time.Time) Option { return func(l *Limiter) { l.now = now } }

// WithCollection stores the counters in another collection. Limiters with
// different windows must not share a collection.
func WithCollection(name string) Option { return func(l *Limiter) { l.collection = name } }

// WithTimeout bounds one Allow call (default 2 s), so that a slow or
// unreachable Firestore gives an error in time rather than holding the
// request.
func WithTimeout(d time.Duration) Option { return func(l *Limiter) { l.timeout = d } }

// WithMaxAttempts sets how many times Allow tries its transaction when
// concurrent requests on the same key contend (default 20).
func WithMaxAttempts(n int) Option { return func(l *Limiter) { l.maxAttempts = n } }

// New returns a limiter allowing limit requests per window and key, counted
// in client's Firestore. It makes no network call. It panics when limit is
// not positive or window is not a positive whole number of seconds (the
// window start is named in Unix seconds), programming errors.
func New(client *firestore.Client, limit int, window time.Duration, opts ...Option) *Limiter {
	if limit < 1 || window < time.Second || window%time.Second != 0 {
		panic(fmt.Sprintf("firestorelimit.New: limit %d must be positive and window %s a positive whole number of seconds", limit, window))
	}
	l := &Limiter{
		client:      client,
		collection:  Collection,
		limit:       limit,
		window:      window,
		now:         time.Now,
		timeout:     defaultTimeout,
		maxAttempts: defaultMaxAttempts,
		full:        make(map[string]time.Time),
		locks:       make(map[string]*docLock),
	}
	for _, o := range opts {
		o(l)
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.maxAttempts < 1 {
		l.maxAttempts = 1
	}
	return l
}

// DocID is the id of the counter document of key for the window starting at
// start.
func DocID(key string, start time.Time) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:]) + "_" + strconv.FormatInt(start.Unix(), 10)
}

// windowStart is the start of the window holding t: windows are aligned on
// the Unix epoch, so every instance computes the same ones.
func (l *Limiter) windowStart(t time.Time) time.Time {
	w := int64(l.window / time.Second)
	s := t.Unix()
	s -= ((s % w) + w) % w // floor, also before 1970
	return time.Unix(s, 0).UTC()
}

// errFull ends the transaction without a write when the window is full.
var errFull = errors.New("window full")

// Allow counts a request under key if its window has room. An error means
// Firestore could not decide (unreachable, timeout, too much contention);
// the request was then not counted.
func (l *Limiter) Allow(ctx context.Context, key string) (ratelimit.Decision, error) {
	now := l.now()
	start := l.windowStart(now)
	end := start.Add(l.window)
	id := DocID(key, start)
	refused := ratelimit.Decision{Limit: l.limit, Reset: end, RetryAfter: end.Sub(now)}

	if l.knownFull(id, now) {
		return refused, nil
	}

	if l.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	unlock, err := l.lock(ctx, id)
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("firestorelimit: allow: waiting for a concurrent request: %w", err)
	}
	defer unlock()
	// A request this one waited for may have filled the window.
	if l.knownFull(id, now) {
		return refused, nil
	}

	ref := l.client.Collection(l.collection).Doc(id)
	var count int64
	err = l.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		count = 0
		snap, err := tx.Get(ref)
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			return err
		default:
			v, err := snap.DataAt(FieldCount)
			if err != nil {
				return fmt.Errorf("reading %s: %w", FieldCount, err)
			}
			n, ok := v.(int64)
			if !ok {
				return fmt.Errorf("%s is %T, not an integer", FieldCount, v)
			}
			count = n
		}
		if count >= int64(l.limit) {
			return errFull
		}
		count++
		return tx.Set(ref, map[string]any{
			FieldCount:       count,
			FieldWindowStart: start,
			FieldExpiresAt:   end,
		})
	}, firestore.MaxAttempts(l.maxAttempts))
	if errors.Is(err, errFull) {
		l.markFull(id, end, now)
		return refused, nil
	}
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("firestorelimit: allow: %w", err)
	}
	if count >= int64(l.limit) {
		l.markFull(id, end, now)
	}
	return ratelimit.Decision{
		Allowed:   true,
		Limit:     l.limit,
		Remaining: l.limit - int(count),
		Reset:     end,
	}, nil
}

// knownFull reports whether this instance has seen the window of id full.
func (l *Limiter) knownFull(id string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	end, ok := l.full[id]
	if ok && !now.Before(end) {
		delete(l.full, id)
		return false
	}
	return ok
}

// markFull remembers that the window of id, ending at end, is full. It
// forgets ended windows first, and remembers nothing more when maxFull
// windows are still running (Allow then asks Firestore, which stays correct).
func (l *Limiter) markFull(id string, end, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.full) >= maxFull {
		for k, e := range l.full {
			if !now.Before(e) {
				delete(l.full, k)
			}
		}
		if len(l.full) >= maxFull {
			return
		}
	}
	l.full[id] = end
}

// lock takes the in-process lock of document id, or fails when ctx ends
// first. It returns the unlock function.
func (l *Limiter) lock(ctx context.Context, id string) (func(), error) {
	l.mu.Lock()
	dl := l.locks[id]
	if dl == nil {
		dl = &docLock{ch: make(chan struct{}, 1)}
		l.locks[id] = dl
	}
	dl.refs++
	l.mu.Unlock()

	drop := func() {
		l.mu.Lock()
		if dl.refs--; dl.refs == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
	select {
	case dl.ch <- struct{}{}:
		return func() { <-dl.ch; drop() }, nil
	case <-ctx.Done():
		drop()
		return nil, context.Cause(ctx)
	}
}
