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

// DefaultSpendTimeout bounds one billing read of a pass when SpendTimeout
// is zero.
const DefaultSpendTimeout = 5 * time.Second

// spendGiveUp is how many reads in a row that time out end a pass's reads:
// a billing API that hangs is tried again by the next pass.
const spendGiveUp = 3

// refreshSpends reads what each endpoint of ds has cost from RunPod's
// billing API and records it with the time read (off the request path: GET
// shows the figure, never asks RunPod), by deployment.RecordSpend, the rule
// the spend step follows too. A failed read is recorded as such and the
// previous figure kept. Each read waits at most SpendTimeout; after a few
// in a row that time out, the pass leaves the rest to the next one.
func (r *Reconciler) refreshSpends(ctx context.Context, ds []*deployment.Deployment) (int, error) {
	timeout := r.SpendTimeout
	if timeout <= 0 {
		timeout = DefaultSpendTimeout
	}
	n, timedOut := 0, 0
	var errs []error
	for i, d := range ds {
		if timedOut >= spendGiveUp {
			r.Log.WarnContext(ctx, "reconcile: RunPod's billing API does not answer; the next pass reads the remaining spends", "left", len(ds)-i)
			break
		}
		key, err := r.Sealer.Open(ctx, d.RunPodKey, deployment.AssociatedData(d.ID, deployment.FieldRunPodKey))
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile: open the key of %s: %w", d.ID, err))
			continue
		}
		since := d.Watch.StartedAt
		if since.IsZero() {
			since = d.CreatedAt
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		spent, rerr := r.RunPod.EndpointSpend(rctx, key, d.RunPodEndpointID, since)
		cancel()
		if rerr != nil && ctx.Err() != nil {
			return n, errors.Join(append(errs, rerr)...)
		}
		if errors.Is(rerr, context.DeadlineExceeded) {
			timedOut++
		} else {
			timedOut = 0
		}
		read := r.now()
		sr := deployment.SpendRead{USD: spent.TotalUSD, Since: since.UTC().Truncate(runpod.BillingBucket), BucketSeconds: int(runpod.BillingBucket / time.Second)}
		if rerr != nil {
			sr.Err = runpod.Message(rerr)
		}
		endpointID := d.RunPodEndpointID
		_, err = r.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
			if d.RunPodEndpointID != endpointID || !d.Live() || d.Limits.MaxSpendUSD > 0 {
				return store.ErrNoChange // changed since the scan: the next pass, or the step, reads it
			}
			return d.RecordSpend(read, sr)
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
