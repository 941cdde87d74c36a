package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// maxScaleWrites bounds the writes of one scale run that keeps finding the
// owner's scaling changed after its write: the run of the newest change
// writes too.
const maxScaleWrites = 5

// scale sets the endpoint's scaling to what the user asked for, once the
// model is ready (while provisioning it kept one warm worker).
//
// Runs for one deployment may overlap (the owner PATCHes twice quickly),
// and RunPod may apply an older run's write after a newer one's. So the
// last writer re-reads: a run whose write returned after the owner's
// scaling changed writes the current scaling again before it ends. Once
// every write has returned, RunPod holds the newest scaling.
func (s *Steps) scale(ctx context.Context, t queue.Task) error {
	d, err := s.Store.Get(ctx, t.DeploymentID)
	if err != nil {
		return err
	}
	if d.Scaled || !scalable(d) {
		return nil
	}
	key, err := s.open(ctx, d.RunPodKey, d.ID, deployment.FieldRunPodKey)
	if err != nil {
		return err
	}
	for range maxScaleWrites {
		sc, seen, endpointID := d.Scaling, d.ScalingChanges, d.RunPodEndpointID
		if err := s.RunPod.UpdateScaling(ctx, key, endpointID, sc.MinWorkers, sc.MaxWorkers, sc.IdleTimeoutSeconds); err != nil {
			return s.scaleFailed(ctx, t, sc, err)
		}
		now := s.now()
		rewrite := false
		d, err = s.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
			if !scalable(d) || d.RunPodEndpointID != endpointID {
				return store.ErrNoChange // moot: deleted or failed meanwhile
			}
			if d.ScalingChanges != seen {
				// The owner changed the scaling while this write was in
				// flight: RunPod may have applied it after the newer
				// run's write, so write the current scaling again.
				rewrite = true
				return store.ErrNoChange
			}
			if d.Scaled {
				return store.ErrNoChange // a duplicate recorded it
			}
			d.Scaled = true
			if sc.MinWorkers == 0 {
				d.Log(now, deployment.LevelInfo, "Endpoint scales between 0 and %d workers (idle timeout %ds): it costs nothing while unused", sc.MaxWorkers, sc.IdleTimeoutSeconds)
			} else {
				d.Log(now, deployment.LevelInfo, "Endpoint scales between %d and %d workers (idle timeout %ds)", sc.MinWorkers, sc.MaxWorkers, sc.IdleTimeoutSeconds)
			}
			return nil
		})
		if err != nil && !errors.Is(err, store.ErrNoChange) {
			return err
		}
		if !rewrite {
			return nil
		}
	}
	return nil // still changing: the newest change's own run writes it
}

// scalable reports whether d's endpoint takes the owner's scaling: d is
// ready (its webhook maybe failed) and has an endpoint.
func scalable(d *deployment.Deployment) bool {
	return d.RunPodEndpointID != "" && !d.EndpointDeleted &&
		(d.Status == deployment.StatusReady || d.Status == deployment.StatusWebhookFailed)
}

// scaleFailed handles a failed write of scaling sc: a transient failure is
// retried for as long as it takes; otherwise the deployment's log says what
// is true of it now. A deployment deleted (or failed) meanwhile gets no
// line: its teardown owns the endpoint, and RunPod's 404 is that teardown's.
func (s *Steps) scaleFailed(ctx context.Context, t queue.Task, sc deployment.Scaling, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("update scaling: %w", err)
	}
	d, gerr := s.Store.Get(ctx, t.DeploymentID)
	if gerr != nil {
		return gerr
	}
	if !scalable(d) {
		return nil
	}
	if ok, after := runpod.Retryable(err); ok {
		return s.retryCleanup(ctx, t, after, "Could not set the endpoint's scaling (%s)", runpodMessage(err))
	}
	if runpod.IsNotFound(err) {
		return s.note(ctx, d.ID, deployment.LevelError, "Could not set the endpoint's scaling: RunPod endpoint %s no longer exists", d.RunPodEndpointID)
	}
	return s.note(ctx, d.ID, deployment.LevelWarn, "Could not set the endpoint's scaling to %d..%d workers (%s); it keeps the scaling it had: check it in the RunPod console, or delete the deployment",
		sc.MinWorkers, sc.MaxWorkers, runpodMessage(err))
}
