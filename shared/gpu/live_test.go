package gpu_test

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

func price(t *testing.T, c *gpu.Catalog, pool string) float64 {
	t.Helper()
	p, ok := c.Pool(pool)
	if !ok {
		return 0
	}
	return p.PricePerHour
}

func a40At(price float64) []gpu.Offer {
	return []gpu.Offer{{ID: "NVIDIA A40", Name: "A40", Pool: "AMPERE_48", MemoryGB: 48, PricePerHour: price}}
}

// TestLivePerAccount: each account gets its own offers, never another's.
func TestLivePerAccount(t *testing.T) {
	byKey := map[string][]gpu.Offer{"key-alice": a40At(0.99), "key-bob": a40At(1.77)}
	var calls atomic.Int32
	l := &gpu.Live{Base: gpu.Default(), Source: func(_ context.Context, key secret.Secret) ([]gpu.Offer, error) {
		calls.Add(1)
		return byKey[key.Reveal()], nil
	}}
	ctx := t.Context()
	if got := price(t, l.Get(ctx, secret.New("key-alice")), "AMPERE_48"); got != 0.99 {
		t.Errorf("alice's A40 price %v, want her 0.99", got)
	}
	if got := price(t, l.Get(ctx, secret.New("key-bob")), "AMPERE_48"); got != 1.77 {
		t.Errorf("bob's A40 price %v, want his 1.77 (not alice's cached one)", got)
	}
	l.Get(ctx, secret.New("key-alice"))
	l.Get(ctx, secret.New("key-bob"))
	if n := calls.Load(); n != 2 {
		t.Errorf("%d reads for two accounts within the TTL, want 2", n)
	}
	if got := l.Get(ctx, secret.Secret{}); got != l.Base {
		t.Error("no key: want the embedded catalogue")
	}
}

// TestLiveCollapsesConcurrentReads: many callers for one account while its
// read is in flight make one call; a caller for another account is not held
// up by it (no lock across the read), and a caller that gives up returns.
func TestLiveCollapsesConcurrentReads(t *testing.T) {
	release := make(chan struct{})
	var slowCalls atomic.Int32
	l := &gpu.Live{Base: gpu.Default(), Source: func(ctx context.Context, key secret.Secret) ([]gpu.Offer, error) {
		if key.Reveal() == "fast-key" {
			return a40At(2.5), nil
		}
		slowCalls.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return a40At(0.5), nil
	}}
	const n = 20
	var wg sync.WaitGroup
	got := make([]float64, n)
	for i := range n {
		wg.Go(func() { got[i] = price(t, l.Get(t.Context(), secret.New("slow-key")), "AMPERE_48") })
	}
	// Another account is served while slow-key's read is blocked.
	if p := price(t, l.Get(t.Context(), secret.New("fast-key")), "AMPERE_48"); p != 2.5 {
		t.Errorf("other account's price %v while a read is in flight", p)
	}
	// A caller whose context ends stops waiting, with what the account had.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if c := l.Get(ctx, secret.New("slow-key")); c != l.Base {
		t.Error("a cancelled caller did not get the account's last catalogue")
	}
	close(release)
	wg.Wait()
	if c := slowCalls.Load(); c != 1 {
		t.Errorf("%d reads for %d concurrent callers of one account, want 1", c, n+1)
	}
	for i, p := range got {
		if p != 0.5 {
			t.Errorf("caller %d got price %v, want the one read 0.5", i, p)
		}
	}
}

// TestLiveTTLAndFailures: a catalogue is reused for TTL; a failed read keeps
// the last one and is retried after FailureTTL.
func TestLiveTTLAndFailures(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	var calls int
	var fail bool
	l := &gpu.Live{Base: gpu.Default(), TTL: time.Hour, FailureTTL: time.Minute, Now: func() time.Time { return now },
		Source: func(context.Context, secret.Secret) ([]gpu.Offer, error) {
			calls++
			if fail {
				return nil, errors.New("RunPod down")
			}
			return a40At(0.99), nil
		}}
	key := secret.New("key-alice")
	l.Get(t.Context(), key)
	now = now.Add(59 * time.Minute)
	l.Get(t.Context(), key)
	if calls != 1 {
		t.Fatalf("%d reads within the TTL", calls)
	}
	now = now.Add(2 * time.Minute)
	fail = true
	if got := price(t, l.Get(t.Context(), key), "AMPERE_48"); got != 0.99 || calls != 2 {
		t.Errorf("after a failed read: price %v, %d reads; want the last good one", got, calls)
	}
	now = now.Add(30 * time.Second)
	l.Get(t.Context(), key)
	if calls != 2 {
		t.Errorf("retried %d times within FailureTTL", calls-2)
	}
	now = now.Add(31 * time.Second)
	fail = false
	l.Get(t.Context(), key)
	if calls != 3 {
		t.Errorf("not retried after FailureTTL: %d reads", calls)
	}
}

// TestStandsOnItsOwn: the catalogue imports no client of a GPU provider;
// the RunPod side adapts its catalogue to gpu.Offer.
func TestStandsOnItsOwn(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); strings.HasPrefix(p, "github.com/visgate/") && !strings.HasSuffix(p, "/shared/secret") {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}
