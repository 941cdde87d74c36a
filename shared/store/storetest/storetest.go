// Package storetest is the conformance suite that every implementation of
// store.Store and store.IdempotencyStore passes: the embedded bolt store and
// the Firestore store (against the emulator).
//
// Stores may round times to their precision (Firestore keeps microseconds);
// the suite expects Create to leave in d exactly what Get returns, and
// nothing to be lost beyond a microsecond. Nil and empty slices are equal.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// Store is what the suite tests: a deployment store that also keeps
// idempotency claims.
type Store interface {
	store.Store
	store.IdempotencyStore
}

// How to get each emulator: the end of RequireEnv's skip message.
const (
	HowToFirestore  = "`make test` starts the Firestore emulator when gcloud with its cloud-firestore-emulator component (https://cloud.google.com/sdk/docs/install) and Java 17+ are installed; by hand: eval \"$(scripts/firestore-emulator.sh start)\""
	HowToCloudTasks = "`make test` starts the Cloud Tasks emulator (built from tools/go.mod); by hand: eval \"$(scripts/cloudtasks-emulator.sh start)\""
)

// RequireEnv returns the value of the environment variable name. When it is
// unset or empty, the test is skipped with a message that includes howto,
// unless REQUIRE_EMULATORS=1, in which case the test fails: CI sets it so that
// a suite that needs an emulator can never pass by skipping.
func RequireEnv(t testing.TB, name, howto string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	msg := fmt.Sprintf("%s is not set; %s", name, howto)
	if os.Getenv("REQUIRE_EMULATORS") == "1" {
		t.Fatalf("%s (REQUIRE_EMULATORS=1 forbids skipping)", msg)
	}
	t.Skip(msg)
	return ""
}

// Run runs the conformance suite. open must return a new, empty store on
// every call, and may be called from parallel subtests; Run closes every
// store it opens.
func Run(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateExisting", testCreateExisting},
		{"GetNotFound", testGetNotFound},
		{"Update", testUpdate},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"List", testList},
		{"ListPages", testListPages},
		{"ListAfterUpdate", testListAfterUpdate},
		{"ListBadCursor", testListBadCursor},
		{"Ping", testPing},
		{"Idempotency", testIdempotency},
		{"ConcurrentClaims", testConcurrentClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
	t.Run("Close", func(t *testing.T) {
		t.Parallel()
		testClose(t, open(t))
	})
}

// cmpOpts compares records: times with Equal (cmp uses the Equal method),
// nil and empty slices alike.
var cmpOpts = cmp.Options{cmpopts.EquateEmpty()}

// base is a fixed instant far from the zero time, with nanoseconds.
var base = time.Date(2026, 11, 1, 0, 0, 0, 987654321, time.UTC)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func id(n int) string { return fmt.Sprintf("dep_2026_%08x", n) }

func mustCreate(ctx context.Context, t *testing.T, s Store, d *deployment.Deployment) {
	t.Helper()
	if err := s.Create(ctx, d); err != nil {
		t.Fatalf("Create(%s): %v", d.ID, err)
	}
}

func mustGet(ctx context.Context, t *testing.T, s Store, id string) *deployment.Deployment {
	t.Helper()
	d, err := s.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return d
}

func testCreateGet(t *testing.T, s Store) {
	ctx := testContext(t)
	tests := []struct {
		name string
		d    *deployment.Deployment
	}{
		{"every field set", Filled(t, id(1), "owner-a", base)},
		{"minimal", &deployment.Deployment{
			ID: id(2), Owner: "owner-a", Status: deployment.StatusValidating,
			StatusChangedAt: base, CreatedAt: base,
		}},
		{"empty slices and secrets", &deployment.Deployment{
			ID:              id(3),
			Owner:           "owner-b",
			Status:          deployment.StatusValidating,
			Logs:            []deployment.LogEntry{},
			RunPodKey:       deployment.Sealed{},
			HFToken:         deployment.Sealed{0},
			StatusChangedAt: base,
			CreatedAt:       base,
			Placement:       deployment.Placement{GPUPools: []string{}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := tc.d.Clone()
			orig.Version = 1
			d := tc.d
			d.Version = 7
			mustCreate(ctx, t, s, d)
			if d.Version != 1 {
				t.Errorf("after Create, d.Version = %d, want 1", d.Version)
			}
			got := mustGet(ctx, t, s, d.ID)
			if diff := cmp.Diff(d, got, cmpOpts); diff != "" {
				t.Errorf("Get differs from the created d (-created +got):\n%s", diff)
			}
			if diff := cmp.Diff(orig, got, cmpOpts, cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
				t.Errorf("Get lost more than rounding to the microsecond (-given +got):\n%s", diff)
			}

			// Neither the caller's record nor a returned one aliases the stored one.
			want := got.Clone()
			for _, r := range []*deployment.Deployment{d, got} {
				r.Status = deployment.StatusFailed
				if len(r.Logs) > 0 {
					r.Logs[0].Message = "mutated"
				}
				if len(r.RunPodKey) > 0 {
					r.RunPodKey[0] ^= 0xff
				}
			}
			if diff := cmp.Diff(want, mustGet(ctx, t, s, want.ID), cmpOpts); diff != "" {
				t.Errorf("mutating records outside the store changed it (-want +got):\n%s", diff)
			}
		})
	}
}

func testCreateExisting(t *testing.T, s Store) {
	ctx := testContext(t)
	first := Filled(t, id(1), "owner-a", base)
	mustCreate(ctx, t, s, first)
	second := Filled(t, id(1), "owner-b", base.Add(time.Hour))
	second.Status = deployment.StatusValidating
	err := s.Create(ctx, second)
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Create: err = %v, want ErrExists", err)
	}
	if diff := cmp.Diff(first, mustGet(ctx, t, s, first.ID), cmpOpts); diff != "" {
		t.Errorf("the failed Create changed the record (-want +got):\n%s", diff)
	}
}

func testGetNotFound(t *testing.T, s Store) {
	ctx := testContext(t)
	mustCreate(ctx, t, s, Filled(t, id(1), "owner-a", base))
	for _, missing := range []string{id(2), "", "no-such/deployment", "dep"} {
		t.Run(fmt.Sprintf("%q", missing), func(t *testing.T) {
			d, err := s.Get(ctx, missing)
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get(%q): err = %v, want ErrNotFound", missing, err)
			}
			if d != nil {
				t.Errorf("Get(%q) returned a record with its error: %+v", missing, d)
			}
		})
	}
}

var errBoom = errors.New("boom")

func testUpdate(t *testing.T, s Store) {
	ctx := testContext(t)
	now := time.Now().UTC()
	tests := []struct {
		name string
		// missing updates an id that was never created.
		missing bool
		fn      func(d *deployment.Deployment) error
		wantErr error // nil: success
		// wantRecord reports that Update returns a record with wantErr
		// (only ErrNoChange does).
		wantRecord bool
	}{
		{
			name: "applies the change",
			fn: func(d *deployment.Deployment) error {
				if err := d.Transition(now, deployment.StatusLoadingModel); err != nil {
					return err
				}
				d.Log(now, deployment.LevelInfo, "Loading %s", d.ModelID)
				d.Watch.Polls = 42
				d.GPUPools = append(d.GPUPools, "ADA_80_PRO")
				d.HFToken = nil
				return nil
			},
		},
		{
			name: "version set by fn is ignored",
			fn: func(d *deployment.Deployment) error {
				d.Version = 100
				d.UpdatedAt = time.Time{}
				return nil
			},
		},
		{
			name: "fn error writes nothing",
			fn: func(d *deployment.Deployment) error {
				d.Error = "should not be written"
				return fmt.Errorf("step: %w", errBoom)
			},
			wantErr: errBoom,
		},
		{
			name: "no change returns the current record",
			fn: func(d *deployment.Deployment) error {
				d.Error = "should not be written"
				return store.ErrNoChange
			},
			wantErr:    store.ErrNoChange,
			wantRecord: true,
		},
		{
			name:    "unknown id",
			missing: true,
			fn: func(d *deployment.Deployment) error {
				return errors.New("fn called for a missing deployment")
			},
			wantErr: store.ErrNotFound,
		},
		{
			name: "changing the id is refused",
			fn: func(d *deployment.Deployment) error {
				d.ID = id(999)
				return nil
			},
			wantErr: errAny,
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := Filled(t, id(i+1), "owner-a", base)
			if tc.missing {
				before.ID = id(1000 + i)
			} else {
				mustCreate(ctx, t, s, before)
			}

			// What the store should hold if fn succeeds.
			want := before.Clone()
			wantFnErr := tc.fn(want)

			start := time.Now()
			got, err := s.Update(ctx, before.ID, tc.fn)
			end := time.Now()

			switch {
			case tc.wantErr == errAny:
				if err == nil {
					t.Fatalf("Update: no error, want one")
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Update: err = %v, want %v", err, tc.wantErr)
				}
			default:
				if err != nil || wantFnErr != nil {
					t.Fatalf("Update: err = %v (fn alone: %v), want nil", err, wantFnErr)
				}
			}

			if tc.wantErr != nil {
				switch {
				case tc.wantRecord:
					if diff := cmp.Diff(before, got, cmpOpts); diff != "" {
						t.Errorf("Update with ErrNoChange returned (-current +got):\n%s", diff)
					}
				case got != nil:
					t.Errorf("Update returned a record with error %v: %+v", err, got)
				}
				if tc.missing {
					if _, err := s.Get(ctx, before.ID); !errors.Is(err, store.ErrNotFound) {
						t.Errorf("Get after a failed Update of a missing id: err = %v, want ErrNotFound", err)
					}
					return
				}
				if diff := cmp.Diff(before, mustGet(ctx, t, s, before.ID), cmpOpts); diff != "" {
					t.Errorf("a failed Update wrote (-before +stored):\n%s", diff)
				}
				if _, err := s.Get(ctx, id(999)); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Get(%s): err = %v, want ErrNotFound", id(999), err)
				}
				return
			}

			if got.Version != before.Version+1 {
				t.Errorf("Version = %d, want %d", got.Version, before.Version+1)
			}
			if lo := start.Add(-time.Microsecond); got.UpdatedAt.Before(lo) || got.UpdatedAt.After(end) {
				t.Errorf("UpdatedAt = %v, want within [%v, %v]", got.UpdatedAt, start, end)
			}
			want.Version = got.Version
			want.UpdatedAt = got.UpdatedAt
			if diff := cmp.Diff(want, got, cmpOpts, cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
				t.Errorf("Update returned (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(got, mustGet(ctx, t, s, before.ID), cmpOpts); diff != "" {
				t.Errorf("stored record differs from the one Update returned (-returned +stored):\n%s", diff)
			}
		})
	}
}

// errAny stands for "some error" in the Update table.
var errAny = errors.New("any error")

func testConcurrentUpdates(t *testing.T, s Store) {
	ctx := testContext(t)
	const n = 10
	d := Filled(t, id(1), "owner-a", base)
	d.Logs = nil
	d.Watch.Polls = 0
	mustCreate(ctx, t, s, d)

	var wg sync.WaitGroup
	versions := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			got, err := s.Update(ctx, d.ID, func(d *deployment.Deployment) error {
				d.Watch.Polls++
				d.Log(time.Now(), deployment.LevelInfo, "worker %d", i)
				return nil
			})
			errs[i] = err
			if err == nil {
				versions[i] = got.Version
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Updates: %v", err)
	}

	got := mustGet(ctx, t, s, d.ID)
	if got.Version != 1+n || got.Watch.Polls != n {
		t.Errorf("after %d Updates: Version = %d, Polls = %d; want %d, %d", n, got.Version, got.Watch.Polls, 1+n, n)
	}
	var lines []string
	for _, l := range got.Logs {
		lines = append(lines, l.Message)
	}
	var wantLines []string
	for i := range n {
		wantLines = append(wantLines, fmt.Sprintf("worker %d", i))
	}
	slices.Sort(lines)
	slices.Sort(wantLines)
	if diff := cmp.Diff(wantLines, lines); diff != "" {
		t.Errorf("log lines after concurrent Updates (-want +got):\n%s", diff)
	}
	// Every Update committed on top of a different version.
	slices.Sort(versions)
	var wantVersions []int64
	for v := range int64(n) {
		wantVersions = append(wantVersions, v+2)
	}
	if diff := cmp.Diff(wantVersions, versions); diff != "" {
		t.Errorf("versions returned by the Updates (-want +got):\n%s", diff)
	}
}

type listFixture struct {
	n                  int
	owner              string
	status             deployment.Status
	created, changedAt time.Duration // after t0
}

// t0 is whole hours: the ChangedBefore boundaries below are exact.
var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func testList(t *testing.T, s Store) {
	ctx := testContext(t)
	const (
		validating  = deployment.StatusValidating
		downloading = deployment.StatusDownloadingModel
	)
	fixtures := []listFixture{
		{1, "alice", validating, 1 * time.Hour, 1 * time.Hour},
		{2, "alice", deployment.StatusReady, 2 * time.Hour, 3 * time.Hour},
		{3, "bob", validating, 3 * time.Hour, 3 * time.Hour},
		{4, "alice", deployment.StatusFailed, 4 * time.Hour, 5 * time.Hour},
		{5, "bob", downloading, 4 * time.Hour, 4 * time.Hour},
		{6, "alice", downloading, 4 * time.Hour, 6 * time.Hour},
		{7, "carol", deployment.StatusDeleted, 0, 10 * time.Hour},
	}
	stored := map[string]*deployment.Deployment{}
	for _, f := range fixtures {
		d := Filled(t, id(f.n), f.owner, t0.Add(f.created))
		d.Status = f.status
		d.StatusChangedAt = t0.Add(f.changedAt)
		mustCreate(ctx, t, s, d)
		stored[d.ID] = d
	}

	tests := []struct {
		name string
		q    store.ListQuery
		want []int
	}{
		{"everything, newest first, ties by id desc", store.ListQuery{}, []int{6, 5, 4, 3, 2, 1, 7}},
		{"owner", store.ListQuery{Owner: "alice"}, []int{6, 4, 2, 1}},
		{"other owner", store.ListQuery{Owner: "bob"}, []int{5, 3}},
		{"unknown owner", store.ListQuery{Owner: "mallory"}, nil},
		{"one status", store.ListQuery{Statuses: []deployment.Status{validating}}, []int{3, 1}},
		{"two statuses", store.ListQuery{Statuses: []deployment.Status{validating, downloading}}, []int{6, 5, 3, 1}},
		{"owner and statuses", store.ListQuery{Owner: "alice", Statuses: []deployment.Status{validating, downloading}}, []int{6, 1}},
		{"changed before is strict", store.ListQuery{ChangedBefore: t0.Add(4 * time.Hour)}, []int{3, 2, 1}},
		{"reconciler: statuses and changed before", store.ListQuery{
			Statuses: []deployment.Status{validating, downloading}, ChangedBefore: t0.Add(5 * time.Hour),
		}, []int{5, 3, 1}},
		{"owner and changed before", store.ListQuery{Owner: "alice", ChangedBefore: t0.Add(5 * time.Hour)}, []int{2, 1}},
		{"every filter", store.ListQuery{
			Owner: "bob", Statuses: []deployment.Status{downloading}, ChangedBefore: t0.Add(5 * time.Hour),
		}, []int{5}},
		{"status nobody is in", store.ListQuery{Statuses: []deployment.Status{deployment.StatusWebhookFailed}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := s.List(ctx, tc.q)
			if err != nil {
				t.Fatalf("List(%+v): %v", tc.q, err)
			}
			if next != "" {
				t.Errorf("List(%+v): next cursor %q for a complete page, want none", tc.q, next)
			}
			var want []*deployment.Deployment
			for _, n := range tc.want {
				want = append(want, stored[id(n)])
			}
			if diff := cmp.Diff(ids(want), ids(got)); diff != "" {
				t.Fatalf("List(%+v) ids (-want +got):\n%s", tc.q, diff)
			}
			if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
				t.Errorf("List(%+v) records (-want +got):\n%s", tc.q, diff)
			}
		})
	}
}

// testListAfterUpdate checks that List sees what Update wrote, not what
// Create did: status, status change time and creation time.
func testListAfterUpdate(t *testing.T, s Store) {
	ctx := testContext(t)
	for n := 1; n <= 3; n++ {
		d := &deployment.Deployment{
			ID: id(n), Owner: "alice", Status: deployment.StatusValidating,
			StatusChangedAt: t0, CreatedAt: t0.Add(time.Duration(n) * time.Hour),
		}
		mustCreate(ctx, t, s, d)
	}
	updated, err := s.Update(ctx, id(1), func(d *deployment.Deployment) error {
		d.CreatedAt = t0.Add(10 * time.Hour)
		return d.Transition(t0.Add(5*time.Hour), deployment.StatusSelectingGPU)
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}

	tests := []struct {
		name string
		q    store.ListQuery
		want []int
	}{
		{"old status", store.ListQuery{Statuses: []deployment.Status{deployment.StatusValidating}}, []int{3, 2}},
		{"new status", store.ListQuery{Statuses: []deployment.Status{deployment.StatusSelectingGPU}}, []int{1}},
		{"new creation time orders", store.ListQuery{Owner: "alice"}, []int{1, 3, 2}},
		{"changed before the change", store.ListQuery{ChangedBefore: t0.Add(time.Hour)}, []int{3, 2}},
		{"changed before, after the change", store.ListQuery{ChangedBefore: t0.Add(6 * time.Hour)}, []int{1, 3, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := s.List(ctx, tc.q)
			if err != nil {
				t.Fatalf("List(%+v): %v", tc.q, err)
			}
			var want []string
			for _, n := range tc.want {
				want = append(want, id(n))
			}
			if diff := cmp.Diff(want, ids(got), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("List(%+v) ids (-want +got):\n%s", tc.q, diff)
			}
			for _, d := range got {
				if d.ID == updated.ID {
					if diff := cmp.Diff(updated, d, cmpOpts); diff != "" {
						t.Errorf("List returned a stale record (-updated +listed):\n%s", diff)
					}
				}
			}
		})
	}
}

func ids(ds []*deployment.Deployment) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func testListPages(t *testing.T, s Store) {
	ctx := testContext(t)
	const count = 25
	statuses := []deployment.Status{deployment.StatusValidating, deployment.StatusReady, deployment.StatusDownloadingModel}
	var all []*deployment.Deployment
	for i := range count {
		// Ids out of creation order; creation times in groups of three.
		d := &deployment.Deployment{
			ID:              id((i * 7919) % 1000),
			Owner:           []string{"alice", "bob"}[i%2],
			Status:          statuses[i%3],
			CreatedAt:       t0.Add(time.Duration(i/3) * time.Hour),
			StatusChangedAt: t0.Add(time.Duration(i) * 10 * time.Minute),
		}
		mustCreate(ctx, t, s, d)
		all = append(all, d)
	}
	// The model: filter, then newest first and ids descending.
	expect := func(q store.ListQuery) []string {
		var out []*deployment.Deployment
		for _, d := range all {
			if (q.Owner == "" || d.Owner == q.Owner) &&
				(len(q.Statuses) == 0 || slices.Contains(q.Statuses, d.Status)) &&
				(q.ChangedBefore.IsZero() || d.StatusChangedAt.Before(q.ChangedBefore)) {
				out = append(out, d)
			}
		}
		slices.SortFunc(out, func(a, b *deployment.Deployment) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(b.ID, a.ID)
		})
		return ids(out)
	}

	reconciler := store.ListQuery{
		Statuses:      []deployment.Status{deployment.StatusValidating, deployment.StatusDownloadingModel},
		ChangedBefore: t0.Add(3 * time.Hour),
	}
	tests := []struct {
		name      string
		q         store.ListQuery
		wantCount int
	}{
		{"limit 1", store.ListQuery{Limit: 1}, count},
		{"limit 5 divides the count", store.ListQuery{Limit: 5}, count},
		{"limit 7", store.ListQuery{Limit: 7}, count},
		{"limit above the count", store.ListQuery{Limit: 100}, count},
		{"default limit", store.ListQuery{}, count},
		{"owner, limit 3", store.ListQuery{Owner: "bob", Limit: 3}, 12},
		{"reconciler, limit 2", withLimit(reconciler, 2), 12},
		{"reconciler, limit 5", withLimit(reconciler, 5), 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := expect(tc.q)
			if len(want) != tc.wantCount {
				t.Fatalf("fixture: the model selects %d deployments, want %d", len(want), tc.wantCount)
			}
			limit := tc.q.Limit
			if limit == 0 {
				limit = 100
			}
			wantPages := max(1, (len(want)+limit-1)/limit)

			var got []string
			q := tc.q
			for page := 1; ; page++ {
				if page > wantPages {
					t.Fatalf("more than %d pages; so far %v", wantPages, got)
				}
				ds, next, err := s.List(ctx, q)
				if err != nil {
					t.Fatalf("List page %d: %v", page, err)
				}
				if page < wantPages && len(ds) != limit {
					t.Errorf("page %d holds %d, want a full page of %d", page, len(ds), limit)
				}
				if len(ds) > limit {
					t.Errorf("page %d holds %d, above the limit %d", page, len(ds), limit)
				}
				got = append(got, ids(ds)...)
				if next == "" {
					if page != wantPages {
						t.Errorf("%d pages, want %d", page, wantPages)
					}
					break
				}
				q.Cursor = next
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ids over all pages (-want +got):\n%s", diff)
			}
		})
	}
}

func withLimit(q store.ListQuery, n int) store.ListQuery {
	q.Limit = n
	return q
}

func testListBadCursor(t *testing.T, s Store) {
	ctx := testContext(t)
	mustCreate(ctx, t, s, Filled(t, id(1), "owner-a", base))
	for _, c := range []string{"!!! not a cursor !!!", "AAAA"} {
		if ds, _, err := s.List(ctx, store.ListQuery{Cursor: c}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("List with cursor %q: err = %v (%d records), want ErrBadCursor", c, err, len(ds))
		}
	}
}

func testPing(t *testing.T, s Store) {
	if err := s.Ping(testContext(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testIdempotency(t *testing.T, s Store) {
	ctx := testContext(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	claim := func(owner, key, hash string, createdAt time.Time) store.Idempotency {
		return store.Idempotency{
			Owner: owner, Key: key, RequestHash: hash, DeploymentID: id(len(hash)),
			CreatedAt: createdAt, ExpiresAt: createdAt.Add(24 * time.Hour),
		}
	}
	first := claim("alice", "key-1", "hash-1", now)
	retry := claim("alice", "key-1", "hash-22", now.Add(time.Second))
	expired := claim("carol", "key-1", "hash-333", now.Add(-25*time.Hour))
	fresh := claim("carol", "key-1", "hash-4444", now)

	type step struct {
		name    string
		release bool // release (rec.Owner, rec.Key) instead of claiming rec
		rec     store.Idempotency
		want    *store.Idempotency // the existing claim Claim should return
	}
	steps := []step{
		{name: "first claim", rec: first},
		{name: "same key again returns the claim", rec: retry, want: &first},
		{name: "another owner's key is separate", rec: claim("bob", "key-1", "hash-b", now)},
		{name: "another key is separate", rec: claim("alice", "key-2", "hash-c", now)},
		{name: "the claim is still there", rec: retry, want: &first},
		{name: "release", release: true, rec: first},
		{name: "claim after release", rec: retry},
		{name: "the new claim holds", rec: first, want: &retry},
		{name: "expired claim is stored", rec: expired},
		{name: "expired claim is replaced", rec: fresh},
		{name: "the replacement holds", rec: expired, want: &fresh},
		{name: "release of an unknown key", release: true, rec: claim("dave", "nothing", "", now)},
	}
	for _, st := range steps {
		if st.release {
			if err := s.ReleaseIdempotency(ctx, st.rec.Owner, st.rec.Key); err != nil {
				t.Fatalf("%s: ReleaseIdempotency: %v", st.name, err)
			}
			continue
		}
		got, err := s.ClaimIdempotency(ctx, st.rec)
		if err != nil {
			t.Fatalf("%s: ClaimIdempotency: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Fatalf("%s: ClaimIdempotency returned (-want +got):\n%s", st.name, diff)
		}
	}
}

// testConcurrentClaims races claims of one key, free or held by an expired
// claim: exactly one wins, and every other is told about the winner's claim.
func testConcurrentClaims(t *testing.T, s Store) {
	ctx := testContext(t)
	const n = 10
	now := time.Now().UTC().Truncate(time.Microsecond)
	tests := []struct {
		name    string
		key     string
		expired bool // the key holds an expired claim when the race starts
	}{
		{"free key", "free-key", false},
		{"expired claim", "expired-key", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.expired {
				old := store.Idempotency{
					Owner: "alice", Key: tc.key, RequestHash: "old", DeploymentID: id(999),
					CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-24 * time.Hour),
				}
				if got, err := s.ClaimIdempotency(ctx, old); err != nil || got != nil {
					t.Fatalf("claim of a free key: %+v, %v", got, err)
				}
			}
			recs := make([]store.Idempotency, n)
			got := make([]*store.Idempotency, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				recs[i] = store.Idempotency{
					Owner: "alice", Key: tc.key, RequestHash: fmt.Sprintf("hash-%d", i), DeploymentID: id(i),
					CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
				}
				wg.Go(func() { got[i], errs[i] = s.ClaimIdempotency(ctx, recs[i]) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("concurrent claims: %v", err)
			}
			winner := -1
			for i, g := range got {
				if g == nil {
					if winner >= 0 {
						t.Fatalf("claims %d and %d both won", winner, i)
					}
					winner = i
				}
			}
			if winner < 0 {
				t.Fatalf("no claim won: %+v", got)
			}
			for i, g := range got {
				if i == winner {
					continue
				}
				if diff := cmp.Diff(&recs[winner], g); diff != "" {
					t.Errorf("claim %d was told (-winner +got):\n%s", i, diff)
				}
			}
		})
	}
}

func testClose(t *testing.T, s Store) {
	ctx := testContext(t)
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if err := s.Ping(ctx); err == nil {
		t.Errorf("Ping after Close: no error")
	}
	if _, err := s.Get(ctx, id(1)); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Close: err = %v, want a non-NotFound error", err)
	}
}
