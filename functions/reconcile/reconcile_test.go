package reconcile

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/seal"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/store/bolt"
)

type recQueue struct {
	mu    sync.Mutex
	tasks []string
}

func (q *recQueue) Enqueue(_ context.Context, t queue.Task) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tasks = append(q.tasks, t.DeploymentID+"/"+string(t.Step))
	return nil
}

func (q *recQueue) got() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := append([]string(nil), q.tasks...)
	sort.Strings(out)
	return out
}

const key = "rpa_reconcile_key"

// openStore opens a bbolt store and a local sealer in a temporary directory,
// both closed with the test.
func openStore(t *testing.T) (*bolt.Store, seal.Sealer) {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, err := seal.LocalKeyset(filepath.Join(dir, "keyset.json"))
	if err != nil {
		t.Fatal(err)
	}
	return st, sealer
}

// newSim starts a RunPod simulator that is closed with the test.
func newSim(t *testing.T, opts ...runpodsim.Option) *runpodsim.Server {
	t.Helper()
	sim := runpodsim.New(opts...)
	t.Cleanup(sim.Close)
	return sim
}

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	st, sealer := openStore(t)
	sim := newSim(t, runpodsim.WithSilentContainer())
	sim.AddAccount(key, 100)
	rp := runpod.NewClient(sim.URL, nil)
	q := &recQueue{}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	mkEndpoint := func(depID string) string {
		ep, err := rp.CreateEndpoint(ctx, secret.New(key), runpod.EndpointSpec{Name: "x", Image: "img",
			Env: map[string]string{deployment.EndpointMarker: depID}, Pools: []string{"AMPERE_48"}, WorkersMax: 1, IdleTimeout: 5})
		if err != nil {
			t.Fatal(err)
		}
		return ep.ID
	}
	mk := func(id string, st0 deployment.Status, created, updated time.Time, endpoint string) {
		sealed, err := sealer.Seal(ctx, secret.New(key), deployment.AssociatedData(id, deployment.FieldRunPodKey))
		if err != nil {
			t.Fatal(err)
		}
		d := &deployment.Deployment{
			ID:              id,
			Owner:           "o",
			Status:          st0,
			StatusChangedAt: updated,
			CreatedAt:       created,
			UpdatedAt:       updated,
			RunPodKey:       sealed,
			Webhook:         deployment.Webhook{Delivered: true},
			Watch:           deployment.Watch{StartedAt: created},
			Request:         deployment.Request{Scaling: deployment.Scaling{MinWorkers: 0, MaxWorkers: 1, IdleTimeoutSeconds: 5}},
			Model:           deployment.Model{ModelID: "m"},
			Endpoint:        deployment.Endpoint{RunPodEndpointID: endpoint},
			Runs:            deployment.Runs{Scaled: true},
		}
		if err := st.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	live := mkEndpoint("dep_2026_00000001")
	mk("dep_2026_00000001", deployment.StatusReady, now.Add(-time.Hour), now.Add(-time.Hour), live)
	orphan := mkEndpoint("dep_2026_0000dead") // no such deployment
	mk("dep_2026_00000002", deployment.StatusValidating, now.Add(-20*time.Minute), now.Add(-20*time.Minute), "")
	mk("dep_2026_00000003", deployment.StatusValidating, now.Add(-time.Minute), now.Add(-30*time.Second), "") // busy, not stuck
	overdue := mkEndpoint("dep_2026_00000004")
	mk("dep_2026_00000004", deployment.StatusDownloadingModel, now.Add(-3*time.Hour), now.Add(-2*time.Hour), overdue)

	r := &Reconciler{Store: st, Queue: q, Sealer: sealer, RunPod: rp,
		StuckAfter: 5 * time.Minute, Deadline: time.Hour, Now: func() time.Time { return now }, Log: log}
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Report{Scanned: 4, Resumed: 2, Failed: 1, OrphansDeleted: 1}, rep); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	// The stuck deployment is resumed, and so is the live one's first spend
	// read, owed since its write an hour ago; the overdue one is failed,
	// and what that owes (its teardown) is the change feed's to enqueue.
	if diff := cmp.Diff([]string{"dep_2026_00000001/spend", "dep_2026_00000002/validate"}, q.got()); diff != "" {
		t.Errorf("enqueued (-want +got):\n%s", diff)
	}
	d, _ := st.Get(ctx, "dep_2026_00000004")
	if d.Status != deployment.StatusFailed || d.Error != "Provisioning did not finish within 1h0m0s" {
		t.Errorf("overdue deployment: %s %q", d.Status, d.Error)
	}
	if diff := cmp.Diff([]deployment.Owed{{Step: deployment.StepTeardown}}, d.Owes()); diff != "" {
		t.Errorf("the overdue deployment owes (-want +got):\n%s", diff)
	}
	var ids []string
	for _, ep := range sim.Endpoints(key) {
		ids = append(ids, ep.ID)
	}
	sort.Strings(ids)
	want := []string{live, overdue} // the overdue one is torn down by its teardown task
	sort.Strings(want)
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("endpoints left (-want +got):\n%s\norphan was %s", diff, orphan)
	}
}
