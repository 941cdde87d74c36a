package bolt

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bbolt "go.etcd.io/bbolt"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/store/storetest"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

// TestReadsNeverSeeARecordOlderThanACompletedWrite: readers (Get, View,
// List) racing writers on a few records never get a version older than one
// whose Update had returned before the read began.
func TestReadsNeverSeeARecordOlderThanACompletedWrite(t *testing.T) {
	s := open(t)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	ids := []string{"dep_2026_0000a001", "dep_2026_0000a002", "dep_2026_0000a003"}
	done := map[string]*atomic.Int64{} // the highest version whose Update returned
	for _, id := range ids {
		if err := s.Create(ctx, storetest.Filled(t, id, "owner", time.Now())); err != nil {
			t.Fatal(err)
		}
		done[id] = new(atomic.Int64)
		done[id].Store(1)
	}
	const writes = 150
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var reads atomic.Int64
	for w := range len(ids) {
		wg.Go(func() {
			id := ids[w]
			for i := range writes {
				d, err := s.Update(ctx, id, func(d *deployment.Deployment) error {
					d.Error = fmt.Sprintf("write %d", i)
					return nil
				})
				if err != nil {
					t.Errorf("Update: %v", err)
					return
				}
				for { // a max: several Updates of one id never run at once here, but be exact
					cur := done[id].Load()
					if d.Version <= cur || done[id].CompareAndSwap(cur, d.Version) {
						break
					}
				}
			}
		})
	}
	var readers sync.WaitGroup
	for r := range 4 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[(r+i)%len(ids)]
				floor := done[id].Load()
				var got int64
				switch i % 3 {
				case 0:
					d, err := s.Get(ctx, id)
					if err != nil {
						t.Errorf("Get: %v", err)
						return
					}
					got = d.Version
				case 1:
					if err := s.View(ctx, id, func(d *deployment.Deployment) error { got = d.Version; return nil }); err != nil {
						t.Errorf("View: %v", err)
						return
					}
				default:
					ds, _, err := s.List(ctx, store.ListQuery{})
					if err != nil {
						t.Errorf("List: %v", err)
						return
					}
					for _, d := range ds {
						if d.ID == id {
							got = d.Version
						}
					}
				}
				if got < floor {
					t.Errorf("read version %d of %s after version %d was written", got, id, floor)
					return
				}
				reads.Add(1)
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if reads.Load() == 0 {
		t.Fatal("no read ran")
	}
	for _, id := range ids {
		d, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(writes + 1); d.Version != want || d.Error != fmt.Sprintf("write %d", writes-1) {
			t.Errorf("%s at the end: version %d, error %q; want version %d, the last write", id, d.Version, d.Error, want)
		}
	}
}

// TestAFillOvertakenByAWriteIsDropped plays the race the generation
// guards against, step by step: a read misses and reads the file, a write
// commits (and its entry is then evicted, or not) before the read fills the
// cache with what it read. The next read must see the write.
func TestAFillOvertakenByAWriteIsDropped(t *testing.T) {
	for _, evicted := range []bool{false, true} {
		t.Run(fmt.Sprintf("evicted=%v", evicted), func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			ctx := t.Context()
			const id = "dep_2026_0000b0b0"
			if err := s.Create(ctx, storetest.Filled(t, id, "owner", time.Now())); err != nil {
				t.Fatal(err)
			}
			dropEntry(s, id) // a cold cache: the next read misses

			// The read: its generation, then its transaction.
			gen := s.cache.generation()
			var oldRaw []byte
			if err := s.db.View(func(tx *bbolt.Tx) error {
				oldRaw = append([]byte(nil), tx.Bucket(bucketDeployments).Get([]byte(id))...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			old, err := decode(oldRaw)
			if err != nil {
				t.Fatal(err)
			}
			// The write overtakes it.
			updated, err := s.Update(ctx, id, func(d *deployment.Deployment) error { d.Error = "written"; return nil })
			if err != nil {
				t.Fatal(err)
			}
			if evicted {
				dropEntry(s, id) // as a full cache may drop any entry
			}
			// The read fills the cache late.
			s.cache.fill(id, oldRaw, old, gen)

			for range 2 { // from the file or the cache, then from the cache
				got, err := s.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(updated, got); diff != "" {
					t.Fatalf("Get after the write (-written +got):\n%s", diff)
				}
			}
		})
	}
}

// dropEntry removes id from the cache without counting a write, as an
// eviction does.
func dropEntry(s *Store, id string) {
	s.cache.mu.Lock()
	delete(s.cache.m, id)
	s.cache.mu.Unlock()
}

// TestCreateAndUpdateAreReadWithoutATransaction: the write-through part:
// after Create and after Update the record is kept, so a read needs no
// transaction (checked by looking at the cache, then by reading with the
// file's deployments bucket emptied behind the store's back, which only a
// cache hit survives).
func TestCreateAndUpdateAreReadWithoutATransaction(t *testing.T) {
	s := open(t)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	const id = "dep_2026_0000c1c1"
	d := storetest.Filled(t, id, "owner", time.Now())
	if err := s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := s.cache.current(id); got == nil || got.Version != 1 {
		t.Fatalf("after Create the cache keeps %v, want version 1", got)
	}
	updated, err := s.Update(ctx, id, func(d *deployment.Deployment) error { d.Error = "updated"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketDeployments).Delete([]byte(id)) }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get of a kept record read the file: %v", err)
	}
	if diff := cmp.Diff(updated, got); diff != "" {
		t.Errorf("Get after Update (-updated +got):\n%s", diff)
	}
}

// TestAFailedUpdateKeepsTheCacheTrue: an UpdateFunc's error writes nothing
// and leaves the kept record as it was; ErrNoChange returns it.
func TestAFailedUpdateKeepsTheCacheTrue(t *testing.T) {
	s := open(t)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	const id = "dep_2026_0000c2c2"
	if err := s.Create(ctx, storetest.Filled(t, id, "owner", time.Now())); err != nil {
		t.Fatal(err)
	}
	want, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if _, err := s.Update(ctx, id, func(d *deployment.Deployment) error { d.Error = "not written"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	cur, err := s.Update(ctx, id, func(d *deployment.Deployment) error { d.Error = "not written"; return store.ErrNoChange })
	if !errors.Is(err, store.ErrNoChange) {
		t.Fatalf("Update = %v, want ErrNoChange", err)
	}
	if diff := cmp.Diff(want, cur); diff != "" {
		t.Errorf("ErrNoChange's record (-stored +got):\n%s", diff)
	}
	got, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get after failed updates (-stored +got):\n%s", diff)
	}
}

// TestReadsFailAfterClose: a closed store does not answer from its cache.
func TestReadsFailAfterClose(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	const id = "dep_2026_0000c3c3"
	if err := s.Create(ctx, storetest.Filled(t, id, "owner", time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, id); err == nil {
		t.Error("Get after Close succeeded")
	}
	if err := s.View(ctx, id, func(*deployment.Deployment) error { return nil }); err == nil {
		t.Error("View after Close succeeded")
	}
}

// TestSubscribersReadWhatTheyAreToldOf: a change feed subscriber that
// reads the record it is told of (as the local trigger does) gets that
// version or a later one, never an older one kept by the cache.
func TestSubscribersReadWhatTheyAreToldOf(t *testing.T) {
	s := open(t)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	const id = "dep_2026_0000c4c4"
	var (
		mu    sync.Mutex
		stale []string
		seen  int
	)
	s.Subscribe(func(ctx context.Context, c store.Change) {
		d, err := s.Get(ctx, c.New.ID)
		mu.Lock()
		defer mu.Unlock()
		seen++
		if err != nil {
			stale = append(stale, err.Error())
		} else if d.Version < c.New.Version {
			stale = append(stale, fmt.Sprintf("told of version %d, read %d", c.New.Version, d.Version))
		}
	})
	if err := s.Create(ctx, storetest.Filled(t, id, "owner", time.Now())); err != nil {
		t.Fatal(err)
	}
	const writes = 300
	for i := range writes {
		if _, err := s.Update(ctx, id, func(d *deployment.Deployment) error { d.Error = fmt.Sprint(i); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	wait.Until(t, 30*time.Second, "the subscriber to see every change", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen == writes+1
	})
	mu.Lock()
	defer mu.Unlock()
	if len(stale) > 0 {
		t.Errorf("%d of %d reads by the subscriber were stale; first: %s", len(stale), seen, stale[0])
	}
}
