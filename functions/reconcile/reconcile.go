// Package reconcile is the Reconcile function: level-triggered repair of the
// edge-triggered provisioning chain. Run on a schedule, it re-enqueues the
// deployments whose next task was lost, fails those past the overall
// deadline (tearing their endpoints down), deletes RunPod endpoints that
// no live deployment owns, and mends endpoints' scaling. (The spend of live
// endpoints is read by the spend step they owe, not here.)
package reconcile

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/seal"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// RunPod is what reconcile needs of RunPod.
type RunPod interface {
	ListEndpoints(ctx context.Context, key secret.Secret) ([]runpod.Endpoint, error)
	DeleteEndpoint(ctx context.Context, key secret.Secret, id string) error
}

// Reconciler repairs the chain.
type Reconciler struct {
	Store  store.Store
	Queue  queue.Queue
	Sealer seal.Sealer
	RunPod RunPod
	// StuckAfter is how long a deployment that needs work may go without
	// any write before its next task counts as lost.
	StuckAfter time.Duration
	// Deadline is the longest a deployment may provision in all.
	Deadline time.Duration
	// Scan bounds the deployments one run reads.
	Scan int
	// OrphanHorizon is how long after a deployment was deleted or failed
	// its RunPod account is still swept for orphans (an endpoint a create
	// without an answer made late): DefaultOrphanHorizon when zero.
	OrphanHorizon time.Duration
	Now           func() time.Time
	Log           *slog.Logger
}

// DefaultOrphanHorizon is the OrphanHorizon when none is set.
const DefaultOrphanHorizon = 7 * 24 * time.Hour

// Report says what a run did.
type Report struct {
	Scanned        int `json:"scanned"`
	Resumed        int `json:"resumed"`
	Failed         int `json:"failed"`
	OrphansDeleted int `json:"orphans_deleted"`
	// ScalingMended counts the endpoints whose scaling on RunPod was not
	// the record's: their scale step is owed again.
	ScalingMended int `json:"scaling_mended"`
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// Run makes one pass.
func (r *Reconciler) Run(ctx context.Context) (Report, error) {
	var rep Report
	now := r.now()
	kick := int(now.Unix())
	keys := map[[32]byte]keyRef{}
	live := map[string]*deployment.Deployment{}
	q := store.ListQuery{ChangedBefore: now, Limit: 100}
	scan := r.Scan
	if scan <= 0 {
		scan = 5000
	}
	var errs []error
	for rep.Scanned < scan {
		page, next, err := r.Store.List(ctx, q)
		if err != nil {
			return rep, fmt.Errorf("reconcile: list: %w", err)
		}
		for _, d := range page {
			rep.Scanned++
			live[d.ID] = d
			if len(d.RunPodKey) > 0 && r.sweeps(d, now) {
				if k, err := r.Sealer.Open(ctx, d.RunPodKey, deployment.AssociatedData(d.ID, deployment.FieldRunPodKey)); err == nil {
					keys[sha256.Sum256([]byte(k.Reveal()))] = keyRef{key: k}
				}
			}
			// Stuck: owed work was due StuckAfter ago and made no progress
			// since, each piece judged on its own (deployment.Overdue).
			// Work due later (an expiry, the next spend read) has its task
			// waiting in the queue.
			late := d.Overdue(now, r.StuckAfter)
			if len(late) == 0 {
				continue
			}
			if d.Status.Provisioning() && now.Sub(d.CreatedAt) > r.Deadline {
				if err := r.fail(ctx, d, now); err != nil {
					errs = append(errs, err)
				} else {
					rep.Failed++
				}
				continue
			}
			// Only the overdue work: the rest (the next spend read, a far
			// expiry) still has its task in the queue, and a copy would run
			// it early (a spend read: one more call with the owner's key).
			if err := queue.EnqueueAll(ctx, r.Queue, queue.ResumedOf(d, late, now, kick)); err != nil {
				errs = append(errs, err)
				continue
			}
			rep.Resumed++
			r.Log.InfoContext(ctx, "reconcile: resumed", "deployment_id", d.ID, "status", string(d.Status))
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	n, mended, err := r.sweepEndpoints(ctx, keys, live)
	rep.OrphansDeleted, rep.ScalingMended = n, mended
	errs = append(errs, err)
	return rep, errors.Join(errs...)
}

type keyRef struct{ key secret.Secret }

// sweeps reports whether d's RunPod account is swept for orphans: while d
// lives, and for OrphanHorizon after it was deleted or failed.
func (r *Reconciler) sweeps(d *deployment.Deployment, now time.Time) bool {
	if d.Status != deployment.StatusDeleted && d.Status != deployment.StatusFailed {
		return true
	}
	horizon := r.OrphanHorizon
	if horizon <= 0 {
		horizon = DefaultOrphanHorizon
	}
	return now.Sub(d.StatusChangedAt) < horizon
}

func (r *Reconciler) fail(ctx context.Context, d *deployment.Deployment, now time.Time) error {
	msg := fmt.Sprintf("Provisioning did not finish within %s", r.Deadline)
	_, err := r.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		if !d.Status.Provisioning() {
			return store.ErrNoChange
		}
		return d.Fail(now, msg)
	})
	if err != nil && !errors.Is(err, store.ErrNoChange) {
		return fmt.Errorf("reconcile: fail %s: %w", d.ID, err)
	}
	return nil // the failure owes its webhook and teardown: the change feed enqueues them
}

// sweepEndpoints deletes endpoints marked with a deployment id whose
// deployment does not exist or no longer owns them, and mends the scaling
// of the others: an endpoint whose scaling is not its record's owes a scale
// run again (a write RunPod applied late, or a change in the console).
func (r *Reconciler) sweepEndpoints(ctx context.Context, keys map[[32]byte]keyRef, live map[string]*deployment.Deployment) (orphans, mended int, _ error) {
	if r.RunPod == nil {
		return 0, 0, nil
	}
	n := 0
	var errs []error
	for _, k := range keys {
		eps, err := r.RunPod.ListEndpoints(ctx, k.key)
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile: list endpoints: %w", err))
			continue
		}
		for _, ep := range eps {
			id := ep.Env[deployment.EndpointMarker]
			if id == "" {
				continue // not ours
			}
			if d, ok := live[id]; ok && owns(d, ep.ID) {
				ok, err := r.mendScaling(ctx, id, ep)
				if err != nil {
					errs = append(errs, err)
				} else if ok {
					mended++
				}
				continue
			}
			// The scan is older than the list of endpoints: a deployment
			// may have made this one since. Only its current record can
			// say that it is an orphan.
			d, err := r.Store.Get(ctx, id)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			if d != nil && owns(d, ep.ID) {
				continue
			}
			if err := r.RunPod.DeleteEndpoint(ctx, k.key, ep.ID); err != nil {
				errs = append(errs, fmt.Errorf("reconcile: delete orphan %s: %w", ep.ID, err))
				continue
			}
			n++
			r.Log.InfoContext(ctx, "reconcile: deleted orphan endpoint", "endpoint_id", ep.ID, "deployment_id", id)
		}
	}
	return n, mended, errors.Join(errs...)
}

// mendScaling compares endpoint ep's scaling with its deployment's current
// record and, when they differ on a deployment whose scaling was applied,
// owes the scale step again (deployment.ScalingDrifted).
func (r *Reconciler) mendScaling(ctx context.Context, id string, ep runpod.Endpoint) (bool, error) {
	now := r.now()
	_, err := r.Store.Update(ctx, id, func(d *deployment.Deployment) error {
		if d.RunPodEndpointID != ep.ID || !d.ScalingDrifted(now, ep.WorkersMin, ep.WorkersMax, ep.IdleTimeout) {
			return store.ErrNoChange
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNoChange), errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reconcile: mend the scaling of %s: %w", id, err)
	}
	r.Log.WarnContext(ctx, "reconcile: endpoint scaling differed from the record; scaling again", "deployment_id", id, "endpoint_id", ep.ID)
	return true, nil
}

// owns reports whether d may hold RunPod endpoint epID: it is alive, and
// the endpoint is its recorded one or it is still creating one.
func owns(d *deployment.Deployment, epID string) bool {
	return d.Status != deployment.StatusDeleted && d.Status != deployment.StatusFailed &&
		(d.RunPodEndpointID == epID || (d.RunPodEndpointID == "" && d.Status == deployment.StatusCreatingEndpoint))
}

// Handler is the Reconcile HTTP function (called by Cloud Scheduler).
func (r *Reconciler) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost && req.Method != http.MethodGet {
			httpx.WriteError(w, httpx.MethodNotAllowed("POST", "GET"))
			return
		}
		rep, err := r.Run(req.Context())
		if err != nil {
			r.Log.ErrorContext(req.Context(), "reconcile", "error", err.Error(), "report", rep)
			httpx.WriteJSON(w, http.StatusInternalServerError, map[string]any{"report": rep, "error": "reconcile finished with errors; see the log"})
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"report": rep})
	})
}
