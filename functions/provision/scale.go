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

// scale sets the endpoint's scaling to what the user asked for, once the
// model is ready (while provisioning it kept one warm worker).
func (s *Steps) scale(ctx context.Context, t queue.Task) error {
	d, err := s.Store.Get(ctx, t.DeploymentID)
	if err != nil {
		return err
	}
	if d.Scaled || d.RunPodEndpointID == "" || (d.Status != deployment.StatusReady && d.Status != deployment.StatusWebhookFailed) {
		return nil
	}
	key, err := s.open(ctx, d.RunPodKey, d.ID, deployment.FieldRunPodKey)
	if err != nil {
		return err
	}
	sc, seen := d.Scaling, d.ScalingChanges
	if err := s.RunPod.UpdateScaling(ctx, key, d.RunPodEndpointID, sc.MinWorkers, sc.MaxWorkers, sc.IdleTimeoutSeconds); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("update scaling: %w", err)
		}
		if ok, after := runpod.Retryable(err); ok {
			return s.retryCleanup(ctx, t, after, "Could not set the endpoint's scaling (%s)", runpodMessage(err))
		}
		return s.note(ctx, d.ID, deployment.LevelWarn, "Could not set the endpoint's scaling (%s); it keeps one warm worker, which costs money: set it in the RunPod console or delete the deployment", runpodMessage(err))
	}
	now := s.now()
	_, err = s.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		if d.Scaled || d.ScalingChanges != seen || (d.Status != deployment.StatusReady && d.Status != deployment.StatusWebhookFailed) {
			// Done by a duplicate, moot (deleted meanwhile), or the owner
			// changed the scaling meanwhile: its own run applies it.
			return store.ErrNoChange
		}
		d.Scaled = true
		if sc.MinWorkers == 0 {
			d.Log(now, deployment.LevelInfo, "Endpoint scales between 0 and %d workers (idle timeout %ds): it costs nothing while unused", sc.MaxWorkers, sc.IdleTimeoutSeconds)
		} else {
			d.Log(now, deployment.LevelInfo, "Endpoint scales between %d and %d workers (idle timeout %ds)", sc.MinWorkers, sc.MaxWorkers, sc.IdleTimeoutSeconds)
		}
		return nil
	})
	if errors.Is(err, store.ErrNoChange) {
		return nil
	}
	return err
}
