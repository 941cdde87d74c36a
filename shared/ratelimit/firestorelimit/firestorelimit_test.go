package firestorelimit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/visgate/deployment-orchestrator/shared/store/firestore/emulatortest"
)

// project returns a fresh project id on the emulator, wiped when the test
// ends (skips, or fails under REQUIRE_EMULATORS=1, without an emulator).
func project(t *testing.T) string { return emulatortest.Project(t, "demo-rl") }

// client returns a new client (a new "instance") for project p.
func client(t *testing.T, p string) *firestore.Client {
	t.Helper()
	c, err := firestore.NewClient(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var minute0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func TestHundredAndFirstRefused(t *testing.T) {
	p := project(t)
	c := &clock{t: minute0.Add(10 * time.Second)}
	fs := client(t, p)
	l := New(fs, 100, time.Minute, WithClock(c.now))
	ctx := t.Context()

	for i := 1; i <= 100; i++ {
		d, err := l.Allow(ctx, "owner-a")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if !d.Allowed || d.Limit != 100 || d.Remaining != 100-i || d.RetryAfter != 0 || !d.Reset.Equal(minute0.Add(time.Minute)) {
			t.Fatalf("request %d: %+v, want allowed with %d remaining, reset at %s", i, d, 100-i, minute0.Add(time.Minute))
		}
	}
	d, err := l.Allow(ctx, "owner-a")
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || d.Remaining != 0 || d.Limit != 100 {
		t.Fatalf("101st request: %+v, want refused", d)
	}
	if d.RetryAfter <= 0 || d.RetryAfter > time.Minute {
		t.Errorf("RetryAfter %s not in (0, 1m]", d.RetryAfter)
	}
	if d.RetryAfter != 50*time.Second {
		t.Errorf("RetryAfter %s, want 50s (the rest of the window)", d.RetryAfter)
	}
	if got := d.RetryAfterSeconds(); got != 50 {
		t.Errorf("RetryAfterSeconds() = %d, want 50", got)
	}

	// A fresh instance (no local knowledge) asks Firestore, is refused too,
	// and refusals write nothing: the count stays capped at the limit.
	l2 := New(client(t, p), 100, time.Minute, WithClock(c.now))
	for range 3 {
		if d, err := l2.Allow(ctx, "owner-a"); err != nil || d.Allowed {
			t.Fatalf("other instance: %+v, %v; want refused", d, err)
		}
	}
	snap, err := fs.Collection(Collection).Doc(DocID("owner-a", minute0)).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Data()[FieldCount]; got != int64(100) {
		t.Errorf("stored count = %v, want 100", got)
	}
	if got, _ := snap.Data()[FieldExpiresAt].(time.Time); !got.Equal(minute0.Add(time.Minute)) {
		t.Errorf("expires_at = %v, want %s", snap.Data()[FieldExpiresAt], minute0.Add(time.Minute))
	}
	if got, _ := snap.Data()[FieldWindowStart].(time.Time); !got.Equal(minute0) {
		t.Errorf("window_start = %v, want %s", snap.Data()[FieldWindowStart], minute0)
	}

	// Another key is not affected.
	if d, err := l.Allow(ctx, "owner-b"); err != nil || !d.Allowed || d.Remaining != 99 {
		t.Errorf("owner-b: %+v, %v; want allowed with 99 remaining", d, err)
	}
}

func TestInstancesShareTheCount(t *testing.T) {
	p := project(t)
	c := &clock{t: minute0}
	a := New(client(t, p), 10, time.Minute, WithClock(c.now))
	b := New(client(t, p), 10, time.Minute, WithClock(c.now))
	ctx := t.Context()
	for i := 1; i <= 10; i++ {
		l := a
		if i%2 == 0 {
			l = b
		}
		d, err := l.Allow(ctx, "owner")
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed || d.Remaining != 10-i {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", i, d, 10-i)
		}
	}
	for name, l := range map[string]*Limiter{"a": a, "b": b} {
		if d, err := l.Allow(ctx, "owner"); err != nil || d.Allowed {
			t.Errorf("instance %s after 10 shared requests: %+v, %v; want refused", name, d, err)
		}
	}
}

func TestConcurrentNeverExceedsLimit(t *testing.T) {
	p := project(t)
	c := &clock{t: minute0}
	const limit, goroutines, each, instances = 50, 20, 10, 2
	// Instances, each with its own client, share the goroutines. Within an
	// instance requests take turns; across instances their transactions
	// contend in Firestore (the emulator aborts and the client retries, with
	// a backoff of a second or more: hence the generous timeout).
	var ls []*Limiter
	for range instances {
		ls = append(ls, New(client(t, p), limit, time.Minute, WithClock(c.now), WithTimeout(time.Minute)))
	}
	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		allowed, refused int
		errs             []error
		remaining        = map[int]int{}
	)
	for g := range goroutines {
		wg.Go(func() {
			for range each {
				d, err := ls[g%instances].Allow(t.Context(), "owner")
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case d.Allowed:
					allowed++
					remaining[d.Remaining]++
				default:
					refused++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed > limit {
		t.Fatalf("%d requests allowed, limit %d", allowed, limit)
	}
	for _, err := range errs {
		t.Errorf("Allow: %v", err)
	}
	if len(errs) == 0 && (allowed != limit || refused != goroutines*each-limit) {
		t.Errorf("allowed %d, refused %d; want %d and %d", allowed, refused, limit, goroutines*each-limit)
	}
	// Every allowed request saw a distinct count.
	for r, n := range remaining {
		if n != 1 {
			t.Errorf("%d allowed requests saw %d remaining", n, r)
		}
	}
}

func TestNextWindowAllowsAgain(t *testing.T) {
	p := project(t)
	c := &clock{t: minute0.Add(59 * time.Second)}
	l := New(client(t, p), 3, time.Minute, WithClock(c.now))
	ctx := t.Context()
	for range 3 {
		if d, err := l.Allow(ctx, "k"); err != nil || !d.Allowed {
			t.Fatalf("within the limit: %+v, %v", d, err)
		}
	}
	d, err := l.Allow(ctx, "k")
	if err != nil || d.Allowed || d.RetryAfter != time.Second {
		t.Fatalf("4th in the window: %+v, %v; want refused with RetryAfter 1s", d, err)
	}
	// One nanosecond before the window ends: still refused.
	c.set(minute0.Add(time.Minute - time.Nanosecond))
	if d, err := l.Allow(ctx, "k"); err != nil || d.Allowed || d.RetryAfter != time.Nanosecond {
		t.Fatalf("1 ns before the window ends: %+v, %v; want refused", d, err)
	}
	// The next window starts from zero.
	c.set(minute0.Add(time.Minute))
	d, err = l.Allow(ctx, "k")
	if err != nil || !d.Allowed || d.Remaining != 2 || !d.Reset.Equal(minute0.Add(2*time.Minute)) {
		t.Fatalf("next window: %+v, %v; want allowed with 2 remaining", d, err)
	}
}

func TestUnreachableFirestoreIsAnError(t *testing.T) {
	// A client pointed at a closed port: Allow fails within its timeout,
	// New itself never touched the network.
	t.Setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
	fs, err := firestore.NewClient(context.Background(), "demo-rl-unreachable")
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	l := New(fs, 5, time.Minute, WithTimeout(500*time.Millisecond), WithMaxAttempts(1))
	d, err := l.Allow(t.Context(), "k")
	if err == nil || d.Allowed {
		t.Fatalf("Allow on an unreachable Firestore: %+v, %v; want an error", d, err)
	}
	if !strings.HasPrefix(err.Error(), "firestorelimit: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
}

func TestNewMakesNoCallAndChecksConfig(t *testing.T) {
	// A nil client proves New does not use it.
	if l := New(nil, 1, time.Minute); l == nil {
		t.Fatal("New returned nil")
	}
	for _, tc := range []struct {
		limit  int
		window time.Duration
	}{{0, time.Minute}, {-1, time.Minute}, {1, 0}, {1, 500 * time.Millisecond}, {1, 1500 * time.Millisecond}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d, %s) did not panic", tc.limit, tc.window)
				}
			}()
			New(nil, tc.limit, tc.window)
		}()
	}
}

func TestDocIDAndWindows(t *testing.T) {
	l := New(nil, 1, time.Minute)
	for _, tc := range []struct{ at, start time.Time }{
		{minute0, minute0},
		{minute0.Add(59*time.Second + 999*time.Millisecond), minute0},
		{minute0.Add(time.Minute), minute0.Add(time.Minute)},
		{time.Unix(-1, 0), time.Unix(-60, 0)},
	} {
		if got := l.windowStart(tc.at); !got.Equal(tc.start) {
			t.Errorf("windowStart(%s) = %s, want %s", tc.at, got, tc.start)
		}
	}
	id := DocID("owner", minute0)
	// sha256("owner")
	want := fmt.Sprintf("%s_%d", "4c1029697ee358715d3a14a2add817c4b01651440de808371f78165ac90dc581", minute0.Unix())
	if id != want {
		t.Errorf("DocID = %s, want %s", id, want)
	}
	// Keys are hashed: nothing a caller sends can make an invalid document id.
	if strings.Contains(DocID("a/b/../__x__", minute0), "/") {
		t.Error("DocID kept a slash")
	}
}
