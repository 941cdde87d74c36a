package reconcile

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
)

// TestReconcileLeavesWorkDueLater: a deployment whose only owed work is due
// later (an expiry days ahead) is not stuck, however old its last write; once
// the expiry is StuckAfter past, it is resumed.
func TestReconcileLeavesWorkDueLater(t *testing.T) {
	ctx := context.Background()
	st, sealer := openStore(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	old := now.Add(-24 * time.Hour)
	for id, expires := range map[string]time.Time{"dep_2026_0000000a": now.Add(72 * time.Hour), "dep_2026_0000000b": now.Add(-time.Hour)} {
		d := &deployment.Deployment{
			ID:              id,
			Owner:           "o",
			Status:          deployment.StatusReady,
			StatusChangedAt: old,
			CreatedAt:       old,
			UpdatedAt:       old,
			Limits:          deployment.Limits{ExpiresAt: expires},
			Model:           deployment.Model{ModelID: "m"},
			Runs:            deployment.Runs{Scaled: true},
		}
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
		"dep_2026_0000000d": {Status: deployment.StatusReady, Runs: deployment.Runs{Scaled: true}, Limits: deployment.Limits{MaxSpendUSD: 50, ExpiresAt: now.Add(-time.Hour)}},
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
	// Only the lost expire: the next spend read's task waits in the queue.
	if diff := cmp.Diff([]string{"dep_2026_0000000d/expire"}, q.got()); diff != "" {
		t.Errorf("enqueued (-want +got):\n%s", diff)
	}
	if d, _ := st.Get(ctx, "dep_2026_0000000c"); d.Status != deployment.StatusFailed {
		t.Errorf("the stuck download is %s", d.Status)
	}
}
