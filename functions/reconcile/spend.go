package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// DefaultSpendReads bounds the spend reads of one pass when SpendReads is
// zero: one RunPod billing call each.
const DefaultSpendReads = 200

// spendStale reports whether the pass should refresh d's spend: d is live
// with an endpoint, has no max_spend_usd (the spend step reads those, on
// its own schedule), and its figure is older than SpendInterval.
func (r *Reconciler) spendStale(d *deployment.Deployment, now time.Time) bool {
	return r.SpendInterval > 0 && d.Live() && d.RunPodEndpointID != "" && !d.EndpointDeleted &&
		d.Limits.MaxSpendUSD == 0 && now.Sub(d.Spend.ReadAt) >= r.SpendInterval
}

// refreshSpends reads what each endpoint of ds has cost from RunPod's
// billing API and records it with the time read (off the request path: GET
// shows the figure, never asks RunPod). A failed read is recorded as such
// and the previous figure kept.
func (r *Reconciler) refreshSpends(ctx context.Context, ds []*deployment.Deployment) (int, error) {
	n := 0
	var errs []error
	for _, d := range ds {
		key, err := r.Sealer.Open(ctx, d.RunPodKey, deployment.AssociatedData(d.ID, deployment.FieldRunPodKey))
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile: open the key of %s: %w", d.ID, err))
			continue
		}
		since := d.Watch.StartedAt
		if since.IsZero() {
			since = d.CreatedAt
		}
		spent, rerr := r.RunPod.EndpointSpend(ctx, key, d.RunPodEndpointID, since)
		if rerr != nil && ctx.Err() != nil {
			return n, errors.Join(append(errs, rerr)...)
		}
		read := r.now()
		endpointID := d.RunPodEndpointID
		_, err = r.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
			if d.RunPodEndpointID != endpointID || !d.Live() || d.Limits.MaxSpendUSD > 0 {
				return store.ErrNoChange // changed since the scan: the next pass, or the step, reads it
			}
			if rerr != nil {
				d.Spend.LastError = spendError(rerr)
				return nil
			}
			d.Spend.USD, d.Spend.ReadAt, d.Spend.LastError = spent.TotalUSD, read, ""
			d.Spend.Since = since.UTC().Truncate(runpod.BillingBucket)
			d.Spend.BucketSeconds = int(runpod.BillingBucket / time.Second)
			return nil
		})
		if err != nil && !errors.Is(err, store.ErrNoChange) {
			errs = append(errs, fmt.Errorf("reconcile: record the spend of %s: %w", d.ID, err))
			continue
		}
		if rerr == nil {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// spendError is what the owner is told of a failed read: RunPod's own
// answer, or that RunPod could not be reached (never a transport detail).
func spendError(err error) string {
	var re *runpod.Error
	if errors.As(err, &re) {
		return re.Error()
	}
	return "Could not reach RunPod"
}
