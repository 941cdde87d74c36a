package reconcile

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

// Defect 2 of issue 11: an endpoint RunPod made after its deployment was
// deleted (or failed) is an orphan on an account that no live deployment
// uses any more. The sweep must look at those accounts too.
func TestSweepCoversAccountsOfDeletedAndFailedDeployments(t *testing.T) {
	ctx := context.Background()
	st, sealer := openStore(t)
	sim := newSim(t, runpodsim.WithSilentContainer())
	rp := runpod.NewClient(sim.URL, nil)
	now := time.Now().UTC()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	leaked := map[string]string{} // account key -> endpoint
	for i, c := range []struct {
		id     string
		status deployment.Status
		key    string
		age    time.Duration
	}{
		{"dep_2026_0000de1e", deployment.StatusDeleted, "rpa_deleted_account", time.Hour},
		{"dep_2026_0000fa11", deployment.StatusFailed, "rpa_failed_account", time.Hour},
		{"dep_2026_00000000", deployment.StatusDeleted, "rpa_long_gone_account", 30 * 24 * time.Hour},
	} {
		sim.AddAccount(c.key, 100)
		ep, err := rp.CreateEndpoint(ctx, secret.New(c.key), runpod.EndpointSpec{Name: "late", Image: "img",
			Env: map[string]string{workerenv.DeploymentID: c.id}, Pools: []string{"AMPERE_48"}})
		if err != nil {
			t.Fatal(err)
		}
		leaked[c.key] = ep.ID
		sealed, err := sealer.Seal(ctx, secret.New(c.key), deployment.AssociatedData(c.id, deployment.FieldRunPodKey))
		if err != nil {
			t.Fatal(err)
		}
		at := now.Add(-c.age).Add(time.Duration(i) * time.Millisecond)
		d := &deployment.Deployment{
			ID:              c.id,
			Owner:           "o",
			Status:          c.status,
			StatusChangedAt: at,
			CreatedAt:       at,
			UpdatedAt:       at,
			RunPodKey:       sealed,
			Webhook:         deployment.Webhook{Delivered: true},
			Model:           deployment.Model{ModelID: "m"},
			Endpoint:        deployment.Endpoint{EndpointDeleted: true},
		}
		if err := st.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	r := &Reconciler{Store: st, Queue: &recQueue{}, Sealer: sealer, RunPod: rp,
		StuckAfter: 5 * time.Minute, Deadline: time.Hour, Log: log}
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OrphansDeleted != 2 {
		t.Errorf("%d orphans deleted, want 2", rep.OrphansDeleted)
	}
	for _, k := range []string{"rpa_deleted_account", "rpa_failed_account"} {
		if eps := sim.Endpoints(k); len(eps) != 0 {
			t.Errorf("account of a %s deployment: endpoint %s left", k, eps[0].ID)
		}
	}
	// Accounts only seen on deployments older than the horizon are not listed.
	if eps := sim.Endpoints("rpa_long_gone_account"); len(eps) != 1 {
		t.Errorf("an account past the horizon was swept: %d endpoints", len(eps))
	}
}

// The scan is older than the list of endpoints: a deployment the scan saw
// before it created its endpoint owns the endpoint it has made since.
func TestSweepSparesAnEndpointMadeSinceTheScan(t *testing.T) {
	ctx := context.Background()
	st, sealer := openStore(t)
	sim := newSim(t, runpodsim.WithSilentContainer())
	const key = "rpa_racing_account"
	sim.AddAccount(key, 100)
	rp := runpod.NewClient(sim.URL, nil)
	now := time.Now().UTC()
	const id = "dep_2026_0000abcd"
	sealed, err := sealer.Seal(ctx, secret.New(key), deployment.AssociatedData(id, deployment.FieldRunPodKey))
	if err != nil {
		t.Fatal(err)
	}
	d := &deployment.Deployment{
		ID:              id,
		Owner:           "o",
		Status:          deployment.StatusSelectingGPU,
		StatusChangedAt: now,
		CreatedAt:       now,
		UpdatedAt:       now,
		RunPodKey:       sealed,
		Model:           deployment.Model{ModelID: "m"},
	}
	if err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	// Between the scan and the sweep the chain moves on and creates.
	racing := &raceRunPod{RunPod: rp, before: func() {
		if _, err := st.Update(ctx, id, func(d *deployment.Deployment) error {
			d.Status = deployment.StatusCreatingEndpoint
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := rp.CreateEndpoint(ctx, secret.New(key), runpod.EndpointSpec{Name: "new", Image: "img",
			Env: map[string]string{workerenv.DeploymentID: id}, Pools: []string{"AMPERE_48"}}); err != nil {
			t.Fatal(err)
		}
	}}
	log := slog.New(slog.DiscardHandler)
	r := &Reconciler{Store: st, Queue: &recQueue{}, Sealer: sealer, RunPod: racing,
		StuckAfter: time.Hour, Deadline: time.Hour, Log: log}
	if _, err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(sim.Endpoints(key)); n != 1 {
		t.Errorf("the endpoint a deployment made after the scan was swept: %d left", n)
	}
}

// raceRunPod runs before ahead of the first ListEndpoints.
type raceRunPod struct {
	RunPod
	before func()
	done   bool
}

func (r *raceRunPod) ListEndpoints(ctx context.Context, key secret.Secret) ([]runpod.Endpoint, error) {
	if !r.done {
		r.done = true
		r.before()
	}
	return r.RunPod.ListEndpoints(ctx, key)
}

// Issue 23, item 2: an endpoint whose scaling on RunPod is not its
// record's (a write RunPod applied after a newer one) is mended: the scale
// step is owed again, under a name of its own.
func TestSweepMendsAnEndpointsScaling(t *testing.T) {
	ctx := context.Background()
	st, sealer := openStore(t)
	sim := newSim(t, runpodsim.WithSilentContainer())
	const key = "rpa_scaling_account"
	sim.AddAccount(key, 100)
	rp := runpod.NewClient(sim.URL, nil)
	now := time.Now().UTC()
	const id = "dep_2026_0000cafe"
	ep, err := rp.CreateEndpoint(ctx, secret.New(key), runpod.EndpointSpec{Name: "warm", Image: "img",
		Env: map[string]string{workerenv.DeploymentID: id}, Pools: []string{"AMPERE_48"}, WorkersMin: 1, WorkersMax: 2, IdleTimeout: 5})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := sealer.Seal(ctx, secret.New(key), deployment.AssociatedData(id, deployment.FieldRunPodKey))
	if err != nil {
		t.Fatal(err)
	}
	d := &deployment.Deployment{
		ID:              id,
		Owner:           "o",
		Status:          deployment.StatusReady,
		StatusChangedAt: now,
		CreatedAt:       now,
		UpdatedAt:       now,
		RunPodKey:       sealed,
		Webhook:         deployment.Webhook{Delivered: true},
		Request:         deployment.Request{Scaling: deployment.Scaling{MinWorkers: 0, MaxWorkers: 3, IdleTimeoutSeconds: 5}},
		Model:           deployment.Model{ModelID: "m"},
		Endpoint:        deployment.Endpoint{RunPodEndpointID: ep.ID},
		Runs:            deployment.Runs{Scaled: true, ScalingChanges: 2},
	}
	if err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{Store: st, Queue: &recQueue{}, Sealer: sealer, RunPod: rp,
		StuckAfter: time.Hour, Deadline: time.Hour, Log: slog.New(slog.DiscardHandler)}
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ScalingMended != 1 || got.Scaled || got.ScalingChanges != 3 {
		t.Errorf("report %+v, scaled %v, scaling changes %d: want the scale owed again (3)", rep, got.Scaled, got.ScalingChanges)
	}
	// A second pass over an endpoint that matches changes nothing.
	if _, err := rp.GetEndpoint(ctx, secret.New(key), ep.ID); err != nil {
		t.Fatal(err)
	}
	if err := rp.UpdateScaling(ctx, secret.New(key), ep.ID, 0, 3, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, id, func(d *deployment.Deployment) error { d.Scaled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if rep, err = r.Run(ctx); err != nil || rep.ScalingMended != 0 {
		t.Errorf("second pass: report %+v, %v; want nothing mended", rep, err)
	}
}
