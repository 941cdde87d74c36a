package reconcile

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

// TestReconcileRefreshesSpend: a pass reads the billing of live deployments
// whose figure is stale and records it with the time read; a fresh figure,
// a deployment with max_spend_usd (its step reads it) and a deleted one are
// left alone.
func TestReconcileRefreshesSpend(t *testing.T) {
	ctx := context.Background()
	st, sealer := openStore(t)
	sim := newSim(t, runpodsim.WithBootDelay(time.Millisecond), runpodsim.WithSilentContainer(), runpodsim.WithBillingSpeed(3600))
	sim.AddAccount(key, 100)
	rp := runpod.NewClient(sim.URL, nil)
	ep, err := rp.CreateEndpoint(ctx, secret.New(key), runpod.EndpointSpec{Name: "x", Image: "img", Pools: []string{"AMPERE_48"},
		WorkersMin: 1, WorkersMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "the warm worker bills", func() bool { return sim.Spent(key, ep.ID) > 0 })

	now := time.Now().UTC()
	mk := func(id string, change func(d *deployment.Deployment)) {
		sealed, err := sealer.Seal(ctx, secret.New(key), deployment.AssociatedData(id, deployment.FieldRunPodKey))
		if err != nil {
			t.Fatal(err)
		}
		d := &deployment.Deployment{ID: id, Owner: "o", Status: deployment.StatusReady, StatusChangedAt: now,
			CreatedAt: now.Add(-time.Minute), UpdatedAt: now, RunPodKey: sealed, RunPodEndpointID: ep.ID, ModelID: "m", Scaled: true}
		if change != nil {
			change(d)
		}
		if err := st.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	const (
		stale   = "dep_2026_00000001"
		fresh   = "dep_2026_00000002"
		limited = "dep_2026_00000003"
		deleted = "dep_2026_00000004"
	)
	mk(stale, func(d *deployment.Deployment) { d.Spend.USD, d.Spend.ReadAt = 0, now.Add(-10*time.Minute) })
	mk(fresh, func(d *deployment.Deployment) { d.Spend.USD, d.Spend.ReadAt = 0.01, now.Add(-time.Minute) })
	mk(limited, func(d *deployment.Deployment) { d.Limits.MaxSpendUSD = 100 })
	mk(deleted, func(d *deployment.Deployment) { d.Status, d.EndpointDeleted = deployment.StatusDeleted, true })

	r := &Reconciler{Store: st, Queue: &recQueue{}, Sealer: sealer, RunPod: rp, StuckAfter: time.Hour, Deadline: time.Hour,
		SpendInterval: 5 * time.Minute, Now: func() time.Time { return now.Add(time.Second) },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.SpendsRead != 1 {
		t.Errorf("read %d spends, want 1 (the stale one)", rep.SpendsRead)
	}
	d, _ := st.Get(ctx, stale)
	billed := sim.Spent(key, ep.ID)
	if d.Spend.USD <= 0 || d.Spend.USD > billed || !d.Spend.ReadAt.Equal(now.Add(time.Second)) || d.Spend.BucketSeconds != 3600 {
		t.Errorf("stale spend now %+v (RunPod billed %v so far)", d.Spend, billed)
	}
	if !d.Spend.Since.Equal(d.CreatedAt.Truncate(time.Hour)) {
		t.Errorf("since %v, want the creation's hour %v", d.Spend.Since, d.CreatedAt.Truncate(time.Hour))
	}
	for _, id := range []string{fresh, limited, deleted} {
		d, _ := st.Get(ctx, id)
		if d.Version != 1 {
			t.Errorf("%s was written (version %d): spend %+v", id, d.Version, d.Spend)
		}
	}
}

// TestReconcileLeavesWorkDueLater: a deployment whose only owed work is due
// later (an expiry days ahead) is not stuck, however old its last write; once
// the expiry is StuckAfter past, it is resumed.
func TestReconcileLeavesWorkDueLater(t *testing.T) {
	ctx := context.Background()
	st, sealer := openStore(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	old := now.Add(-24 * time.Hour)
	for id, expires := range map[string]time.Time{"dep_2026_0000000a": now.Add(72 * time.Hour), "dep_2026_0000000b": now.Add(-time.Hour)} {
		d := &deployment.Deployment{ID: id, Owner: "o", Status: deployment.StatusReady, StatusChangedAt: old, CreatedAt: old,
			UpdatedAt: old, ModelID: "m", Scaled: true, Limits: deployment.Limits{ExpiresAt: expires}}
		if err := st.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	q := &recQueue{}
	r := &Reconciler{Store: st, Queue: q, Sealer: sealer, StuckAfter: time.Minute, Deadline: time.Hour,
		Now: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := q.got(); rep.Resumed != 1 || len(got) != 1 || got[0] != "dep_2026_0000000b/expire" {
		t.Errorf("resumed %d: %v; want only the expired one's expire", rep.Resumed, got)
	}
}

// TestReconcileSeesLostWorkBehindSpendReads (issue 23, item 3): a
// deployment with max_spend_usd is written by every spend read; that is no
// progress of its other work. One stuck in downloading_model for two hours
// is failed past the deadline, and a ready one whose expiry passed long ago
// is resumed, however fresh their spend reads.
func TestReconcileSeesLostWorkBehindSpendReads(t *testing.T) {
	ctx := context.Background()
	st, sealer := openStore(t)
	now := time.Now().UTC()
	long := now.Add(-2 * time.Hour)
	for id, d := range map[string]*deployment.Deployment{
		"dep_2026_0000000c": {Status: deployment.StatusDownloadingModel, Limits: deployment.Limits{MaxSpendUSD: 50}},
		"dep_2026_0000000d": {Status: deployment.StatusReady, Scaled: true, Limits: deployment.Limits{MaxSpendUSD: 50, ExpiresAt: now.Add(-time.Hour)}},
	} {
		d.ID, d.Owner, d.ModelID, d.RunPodEndpointID = id, "o", "m", "ep_"+id
		d.StatusChangedAt, d.CreatedAt, d.UpdatedAt, d.Watch.StartedAt = long, long, long, long
		if err := st.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		// The spend step reads every few minutes: its last read just now.
		if _, err := st.Update(ctx, id, func(d *deployment.Deployment) error {
			d.Spend.Reads++
			d.Spend.NextReadAt = now.Add(4 * time.Minute)
			return d.RecordSpend(now, deployment.SpendRead{USD: 0.5, Since: long.Truncate(time.Hour), BucketSeconds: 3600})
		}); err != nil {
			t.Fatal(err)
		}
	}
	q := &recQueue{}
	r := &Reconciler{Store: st, Queue: q, Sealer: sealer, StuckAfter: 5 * time.Minute, Deadline: time.Hour,
		Log: slog.New(slog.DiscardHandler)}
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 || rep.Resumed != 1 {
		t.Errorf("report %+v: want the two-hour download failed and the passed expiry resumed", rep)
	}
	if got := q.got(); len(got) == 0 || !slices.Contains(got, "dep_2026_0000000d/expire") {
		t.Errorf("enqueued %v, want the expire of dep_2026_0000000d", got)
	}
	if d, _ := st.Get(ctx, "dep_2026_0000000c"); d.Status != deployment.StatusFailed {
		t.Errorf("the stuck download is %s", d.Status)
	}
}
