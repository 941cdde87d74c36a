// Package reconcile is the Reconcile function: level-triggered repair of the
// edge-triggered provisioning chain. Run on a schedule, it re-enqueues the
// deployments whose next task was lost, fails those past the overall
// deadline (tearing their endpoints down), and deletes RunPod endpoints that
// no live deployment owns.
package reconcile

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/provision"
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
	Now  func() time.Time
	Log  *slog.Logger
}

// Report says what a run did.
type Report struct {
	Scanned        int `json:"scanned"`
	Resumed        int `json:"resumed"`
	Failed         int `json:"failed"`
	OrphansDeleted int `json:"orphans_deleted"`
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
			if d.Status != deployment.StatusDeleted && d.Status != deployment.StatusFailed && len(d.RunPodKey) > 0 {
				if k, err := r.Sealer.Open(ctx, d.RunPodKey, deployment.AssociatedData(d.ID, deployment.FieldRunPodKey)); err == nil {
					keys[sha256.Sum256([]byte(k.Reveal()))] = keyRef{key: k}
				}
			}
			if !d.NeedsWork() || now.Sub(d.UpdatedAt) < r.StuckAfter {
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
			if err := queue.EnqueueAll(ctx, r.Queue, queue.Resumed(d, now, kick)); err != nil {
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
	n, err := r.deleteOrphans(ctx, keys, live)
	rep.OrphansDeleted = n
	errs = append(errs, err)
	return rep, errors.Join(errs...)
}

type keyRef struct{ key secret.Secret }

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

// deleteOrphans deletes endpoints marked with a deployment id whose
// deployment does not exist or no longer owns them.
func (r *Reconciler) deleteOrphans(ctx context.Context, keys map[[32]byte]keyRef, live map[string]*deployment.Deployment) (int, error) {
	if r.RunPod == nil {
		return 0, nil
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
			id := ep.Env[provision.EnvDeploymentID]
			if id == "" {
				continue // not ours
			}
			d, ok := live[id]
			if !ok {
				var err error
				d, err = r.Store.Get(ctx, id)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					errs = append(errs, err)
					continue
				}
			}
			owned := d != nil && d.Status != deployment.StatusDeleted && d.Status != deployment.StatusFailed &&
				(d.RunPodEndpointID == ep.ID || (d.RunPodEndpointID == "" && d.Status == deployment.StatusCreatingEndpoint))
			if owned {
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
	return n, errors.Join(errs...)
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
