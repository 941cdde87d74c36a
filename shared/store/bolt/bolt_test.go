package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return open(t)
	})
}

func open(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "store.db"), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "store.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx := t.Context()
	d := storetest.Filled(t, "dep_2026_00000001", "owner", time.Now())
	if err := s.Create(ctx, d); err != nil {
		t.Fatalf("Create: %v", err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode = %o, want 600", mode)
	}

	// A second Open of a file in use fails after the lock timeout.
	start := time.Now()
	if s2, err := Open(path, WithLockTimeout(100*time.Millisecond)); err == nil {
		s2.Close()
		t.Errorf("second Open of a locked file succeeded")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("second Open took %v with a 100 ms lock timeout", took)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.Get(ctx, d.ID)
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	if diff := cmp.Diff(d, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("after reopen (-want +got):\n%s", diff)
	}
}

// recorder collects changes.
type recorder struct {
	mu      sync.Mutex
	changes []store.Change
}

func (r *recorder) record(_ context.Context, c store.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, c)
}

func (r *recorder) get() []store.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Change(nil), r.changes...)
}

func TestFeedDeliversCommittedChangesInOrder(t *testing.T) {
	ctx := t.Context()
	s := open(t)
	var r1, r2 recorder
	s.Subscribe(r1.record)
	s.Subscribe(func(ctx context.Context, c store.Change) {
		// Mutating what one subscriber gets must not reach another.
		c.New.Owner = "mutated"
		c.New.Logs = append(c.New.Logs[:0], deployment.LogEntry{Message: "mutated"})
		r2.record(ctx, store.Change{})
	})

	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	d := &deployment.Deployment{ID: "dep_2026_00000001", Owner: "alice", Status: deployment.StatusValidating, CreatedAt: now}
	d.Log(now, deployment.LevelInfo, "created")
	if err := s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, d); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Create: %v", err)
	}
	want := []store.Change{{New: d.Clone()}}
	prev := d.Clone()
	for _, next := range []deployment.Status{deployment.StatusSelectingGPU, deployment.StatusCreatingEndpoint} {
		got, err := s.Update(ctx, d.ID, func(d *deployment.Deployment) error {
			return d.Transition(now, next)
		})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, store.Change{Old: prev, New: got.Clone()})
		prev = got.Clone()
	}
	// Failed and empty updates publish nothing.
	if _, err := s.Update(ctx, d.ID, func(*deployment.Deployment) error { return store.ErrNoChange }); !errors.Is(err, store.ErrNoChange) {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, d.ID, func(*deployment.Deployment) error { return errors.New("no") }); err == nil {
		t.Fatal("Update: fn error not returned")
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, r1.get(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if n := len(r2.get()); n != len(want) {
		t.Errorf("second subscriber got %d changes, want %d", n, len(want))
	}
	for _, c := range r1.get() {
		if c.New.Owner != "alice" || c.New.Logs[0].Message != "created" {
			t.Errorf("a subscriber's mutation reached another: %+v", c.New)
		}
	}
}

func TestFeedKeepsPerDeploymentOrderUnderConcurrency(t *testing.T) {
	ctx := t.Context()
	s := open(t)
	var r recorder
	s.Subscribe(r.record)
	const deployments, updates = 3, 20
	for i := range deployments {
		d := &deployment.Deployment{ID: fmt.Sprintf("dep_2026_%08d", i), Owner: "alice", Status: deployment.StatusValidating}
		if err := s.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range deployments * updates {
		wg.Go(func() {
			_, err := s.Update(ctx, fmt.Sprintf("dep_2026_%08d", i%deployments), func(d *deployment.Deployment) error {
				d.Watch.Polls++
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	for _, c := range r.get() {
		id := c.New.ID
		if c.New.Version != last[id]+1 {
			t.Fatalf("%s: change to version %d after version %d", id, c.New.Version, last[id])
		}
		if c.Old != nil && (c.Old.Version != last[id] || c.New.Watch.Polls != c.Old.Watch.Polls+1) {
			t.Fatalf("%s: change %d has Old version %d, polls %d → %d", id, c.New.Version, c.Old.Version, c.Old.Watch.Polls, c.New.Watch.Polls)
		}
		last[id] = c.New.Version
	}
	for i := range deployments {
		if v := last[fmt.Sprintf("dep_2026_%08d", i)]; v != updates+1 {
			t.Errorf("deployment %d: last change at version %d, want %d", i, v, updates+1)
		}
	}
}

func TestFeedNeverBlocksWriters(t *testing.T) {
	ctx := t.Context()
	s := open(t)
	release := make(chan struct{})
	var r recorder
	s.Subscribe(func(ctx context.Context, c store.Change) {
		<-release
		r.record(ctx, c)
	})
	d := &deployment.Deployment{ID: "dep_2026_00000001", Status: deployment.StatusValidating}
	if err := s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	const updates = 200
	done := make(chan error, 1)
	go func() {
		for range updates {
			if _, err := s.Update(ctx, d.ID, func(d *deployment.Deployment) error { d.Watch.Polls++; return nil }); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writers blocked behind a stuck subscriber")
	}
	close(release)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(r.get()); n != updates+1 {
		t.Errorf("subscriber got %d changes after Close drained, want %d", n, updates+1)
	}
}

func TestCloseCancelsStuckSubscriber(t *testing.T) {
	ctx := t.Context()
	s := open(t, WithDrainTimeout(50*time.Millisecond))
	cancelled := make(chan struct{})
	s.Subscribe(func(ctx context.Context, c store.Change) {
		<-ctx.Done()
		close(cancelled)
	})
	if err := s.Create(ctx, &deployment.Deployment{ID: "dep_2026_00000001"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, &deployment.Deployment{ID: "dep_2026_00000002"}); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on a stuck subscriber")
	}
	select {
	case <-cancelled:
	default:
		t.Error("the stuck subscriber's context was not cancelled")
	}
	// Subscribing after Close is harmless.
	s.Subscribe(func(context.Context, store.Change) { t.Error("called after Close") })
}

// Get keeps what it decoded (recordCache): whatever a caller does to the
// record it got, in place or not, must not reach the next Get, and a write
// must be seen at once.
func TestGetCacheHandsOutCopies(t *testing.T) {
	s := open(t)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	if err := s.Create(ctx, storetest.Filled(t, "dep_2026_0000c0c0", "owner", time.Now())); err != nil {
		t.Fatal(err)
	}
	first, err := s.Get(ctx, "dep_2026_0000c0c0") // decodes, fills the cache
	if err != nil {
		t.Fatal(err)
	}
	want := first.Clone()
	hit, err := s.Get(ctx, "dep_2026_0000c0c0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, hit); diff != "" {
		t.Fatalf("cache hit differs from the decoded record (-want +got):\n%s", diff)
	}
	// Change every slice of both records in place, and some fields.
	for _, d := range []*deployment.Deployment{first, hit} {
		scribble(reflect.ValueOf(d).Elem())
		d.Status = deployment.StatusFailed
		d.Logs = append(d.Logs, deployment.LogEntry{Message: "added by a caller"})
	}
	again, err := s.Get(ctx, "dep_2026_0000c0c0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, again); diff != "" {
		t.Errorf("a caller's changes reached the next Get (-want +got):\n%s", diff)
	}

	updated, err := s.Update(ctx, "dep_2026_0000c0c0", func(d *deployment.Deployment) error {
		d.Log(time.Now(), deployment.LevelInfo, "after the update")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "dep_2026_0000c0c0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(updated, got); diff != "" {
		t.Errorf("Get after Update (-updated +got):\n%s", diff)
	}
}

// scribble changes, in place, every element of every slice reachable from v
// without following pointers it would have to allocate.
func scribble(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				scribble(v.Field(i))
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			e := v.Index(i)
			switch e.Kind() {
			case reflect.Uint8:
				e.SetUint(e.Uint() ^ 0xff)
			case reflect.String:
				e.SetString(e.String() + " (scribbled)")
			default:
				scribble(e)
			}
		}
	case reflect.String:
		v.SetString(v.String() + " (scribbled)")
	}
}

func TestGetCacheIsBounded(t *testing.T) {
	s := open(t)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	now := time.Now()
	for i := range recordCacheSize + 20 {
		id := fmt.Sprintf("dep_2026_%08x", i)
		if err := s.Create(ctx, storetest.Filled(t, id, "owner", now)); err != nil {
			t.Fatal(err)
		}
		d, err := s.Get(ctx, id)
		if err != nil || d.ID != id {
			t.Fatalf("Get(%s) = %v, %v", id, d, err)
		}
	}
	s.cache.mu.Lock()
	n := len(s.cache.m)
	s.cache.mu.Unlock()
	if n > recordCacheSize {
		t.Errorf("cache holds %d records, bound %d", n, recordCacheSize)
	}
}

// TestViewSeesWhatGetSees: View hands fn the stored record (the same as
// Get's copy), cold or from the cache, the new one after every Update,
// ErrNotFound for an unknown id, and returns fn's error.
func TestViewSeesWhatGetSees(t *testing.T) {
	s := open(t)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	const id = "dep_2026_0000d0d0"
	if err := s.Create(ctx, storetest.Filled(t, id, "owner", time.Now())); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		want, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // a miss or a hit, then a hit
			if err := s.View(ctx, id, func(d *deployment.Deployment) error {
				if diff := cmp.Diff(want, d); diff != "" {
					t.Errorf("%s: View (-Get +View):\n%s", what, diff)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	check("created")
	for i := range 3 {
		if _, err := s.Update(ctx, id, func(d *deployment.Deployment) error {
			d.Log(time.Now(), deployment.LevelInfo, "update %d", i)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("after update %d", i))
	}
	if err := s.View(ctx, "dep_2026_ffffffff", func(*deployment.Deployment) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("View of an unknown id: %v, want ErrNotFound", err)
	}
	boom := errors.New("boom")
	if err := s.View(ctx, id, func(*deployment.Deployment) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("View returned %v, want fn's error", err)
	}
}
