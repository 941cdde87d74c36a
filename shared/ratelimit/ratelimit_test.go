package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestHundredPerMinute(t *testing.T) {
	c := newClock()
	start := c.now()
	m := NewMemory(100, time.Minute, c.now)
	ctx := t.Context()

	for i := 1; i <= 100; i++ {
		d, err := m.Allow(ctx, "key-a")
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed || d.Remaining != 100-i || d.Limit != 100 {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", i, d, 100-i)
		}
		c.advance(100 * time.Millisecond) // 100 requests over 10 s
	}
	d, err := m.Allow(ctx, "key-a")
	if err != nil {
		t.Fatal(err)
	}
	want := Decision{Allowed: false, Limit: 100, Remaining: 0, RetryAfter: 50 * time.Second, Reset: start.Add(time.Minute)}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Fatalf("101st request (-want +got):\n%s", diff)
	}
	if d.RetryAfter <= 0 || d.RetryAfter > time.Minute {
		t.Errorf("RetryAfter %s not in (0, 60s]", d.RetryAfter)
	}
	if got := d.RetryAfterSeconds(); got != 50 {
		t.Errorf("RetryAfterSeconds() = %d, want 50", got)
	}

	// Another key is not affected.
	if d, _ := m.Allow(ctx, "key-b"); !d.Allowed {
		t.Errorf("key-b refused: %+v", d)
	}

	// Refused requests do not count: just before RetryAfter, still refused.
	c.advance(d.RetryAfter - time.Millisecond)
	if d, _ := m.Allow(ctx, "key-a"); d.Allowed {
		t.Fatalf("allowed 1 ms before RetryAfter: %+v", d)
	}
	// When it has passed, the oldest request has left the window.
	c.advance(time.Millisecond)
	d, _ = m.Allow(ctx, "key-a")
	if !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after RetryAfter: %+v, want allowed with 0 remaining", d)
	}

	// After a whole window of silence the full limit is back.
	c.advance(time.Minute)
	d, _ = m.Allow(ctx, "key-a")
	if !d.Allowed || d.Remaining != 99 {
		t.Fatalf("after a quiet window: %+v, want allowed with 99 remaining", d)
	}
}

func TestSlidingNotFixed(t *testing.T) {
	// A fixed window would allow 2×limit across a window boundary.
	c := newClock()
	m := NewMemory(3, time.Minute, c.now)
	c.advance(59 * time.Second)
	for range 3 {
		if d, _ := m.Allow(t.Context(), "k"); !d.Allowed {
			t.Fatal("refused within the limit")
		}
	}
	c.advance(2 * time.Second)
	d, _ := m.Allow(t.Context(), "k")
	if d.Allowed {
		t.Fatal("allowed a 4th request within one minute")
	}
	if d.RetryAfter != 58*time.Second {
		t.Errorf("RetryAfter = %s, want 58s", d.RetryAfter)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		d    Decision
		want int
	}{
		{Decision{Allowed: true}, 0},
		{Decision{RetryAfter: 0}, 1},
		{Decision{RetryAfter: time.Millisecond}, 1},
		{Decision{RetryAfter: time.Second}, 1},
		{Decision{RetryAfter: 1001 * time.Millisecond}, 2},
		{Decision{RetryAfter: time.Minute}, 60},
	}
	for _, tt := range tests {
		if got := tt.d.RetryAfterSeconds(); got != tt.want {
			t.Errorf("%+v.RetryAfterSeconds() = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func TestIdleKeysAreEvicted(t *testing.T) {
	c := newClock()
	m := NewMemory(5, time.Minute, c.now)
	for i := range 1000 {
		m.Allow(t.Context(), fmt.Sprint("key-", i))
	}
	c.advance(time.Minute)
	m.Allow(t.Context(), "fresh")
	m.mu.Lock()
	n := len(m.keys)
	m.mu.Unlock()
	if n != 1 {
		t.Errorf("%d keys kept after a window of silence, want 1", n)
	}
}

func TestConcurrentAllowNeverExceedsLimit(t *testing.T) {
	c := newClock()
	m := NewMemory(100, time.Minute, c.now)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed = map[string]int{}
	)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				key := fmt.Sprint("key-", (g+i)%4)
				d, err := m.Allow(t.Context(), key)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					mu.Lock()
					allowed[key]++
					mu.Unlock()
				}
				if i%50 == 0 {
					c.advance(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	want := map[string]int{"key-0": 100, "key-1": 100, "key-2": 100, "key-3": 100}
	if diff := cmp.Diff(want, allowed); diff != "" {
		t.Errorf("allowed per key (-want +got):\n%s", diff)
	}
}

func TestNewMemoryPanicsOnBadConfig(t *testing.T) {
	for _, tc := range []struct {
		limit  int
		window time.Duration
	}{{0, time.Minute}, {-1, time.Minute}, {10, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewMemory(%d, %s) did not panic", tc.limit, tc.window)
				}
			}()
			NewMemory(tc.limit, tc.window, nil)
		}()
	}
}

func TestMemoryCheckRecordsNothing(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := NewMemory(2, time.Minute, func() time.Time { return now })
	for range 5 {
		if d := m.Check("k"); !d.Allowed || d.Remaining != 2 {
			t.Fatalf("Check on an empty window = %+v", d)
		}
	}
	m.Allow(t.Context(), "k")
	now = now.Add(10 * time.Second)
	m.Allow(t.Context(), "k")
	d := m.Check("k")
	if d.Allowed || d.RetryAfter != 50*time.Second {
		t.Fatalf("Check on a full window = %+v, want refused, retry in 50s", d)
	}
	now = now.Add(50 * time.Second)
	if d := m.Check("k"); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("Check after the oldest left = %+v", d)
	}
}

// TestGrowingRingMatchesModel checks the buffer that grows with a key's use
// against the plain definition (the requests allowed in the window before
// now), over a sequence that makes it wrap, grow while wrapped, and fill up.
func TestGrowingRingMatchesModel(t *testing.T) {
	const limit, window = 100, 10 * time.Second
	c := newClock()
	m := NewMemory(limit, window, c.now)
	var allowed []time.Time // the model: every allowed request's time
	step := uint32(7)
	for i := range 3000 {
		step = step*1103515245 + 12345 // a fixed pseudo-random sequence
		c.advance(time.Duration(step%400) * time.Millisecond / 2)
		now := c.now()
		inWindow := 0
		var oldest time.Time
		for _, a := range allowed {
			if now.Sub(a) < window {
				if inWindow == 0 {
					oldest = a
				}
				inWindow++
			}
		}
		want := Decision{Limit: limit}
		if inWindow < limit {
			allowed = append(allowed, now)
			if inWindow == 0 {
				oldest = now
			}
			want.Allowed, want.Remaining = true, limit-inWindow-1
			want.Reset = oldest.Add(window)
		} else {
			want.Reset = oldest.Add(window)
			want.RetryAfter = want.Reset.Sub(now)
		}
		got, err := m.Allow(t.Context(), "k")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("request %d (-want +got):\n%s", i, diff)
		}
	}
	if r := m.keys["k"]; len(r.times) > limit {
		t.Errorf("the ring grew to %d entries, above the limit %d", len(r.times), limit)
	}
}

// TestRingStartsSmall: a key with a few requests does not hold a buffer of
// the whole limit.
func TestRingStartsSmall(t *testing.T) {
	m := NewMemory(500_000, time.Minute, nil)
	for range 3 {
		if d, _ := m.Allow(t.Context(), "k"); !d.Allowed {
			t.Fatal("refused")
		}
	}
	if n := len(m.keys["k"].times); n > initialRing {
		t.Errorf("3 requests hold a buffer of %d entries, want at most %d", n, initialRing)
	}
}
