package provision

import (
	"context"
	"fmt"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
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
	sc := d.Scaling
	if err := s.RunPod.UpdateScaling(ctx, key, d.RunPodEndpointID, sc.MinWorkers, sc.MaxWorkers, sc.IdleTimeoutSeconds); err != nil {
		if ok, _ := runpod.Retryable(err); ok || ctx.Err() != nil {
			return fmt.Errorf("update scaling: %w", err)
		}
		return s.note(ctx, d.ID, deployment.LevelWarn, "Could not set the endpoint's scaling (%s); it keeps one warm worker, which costs money: set it in the RunPod console or delete the deployment", runpodMessage(err))
	}
	now := s.now()
	_, err = s.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		d.Scaled = true
		if sc.MinWorkers == 0 {
			d.Log(now, deployment.LevelInfo, "Endpoint scales between 0 and %d workers (idle timeout %ds): it costs nothing while unused", sc.MaxWorkers, sc.IdleTimeoutSeconds)
		} else {
			d.Log(now, deployment.LevelInfo, "Endpoint scales between %d and %d workers (idle timeout %ds)", sc.MinWorkers, sc.MaxWorkers, sc.IdleTimeoutSeconds)
		}
		return nil
	})
	return err
}

// teardown deletes every RunPod endpoint of a failed or deleted deployment:
// the recorded one and any an interrupted create_endpoint run made.
// RunPod errors that may pass are returned, so the queue retries until
// RunPod confirms.
func (s *Steps) teardown(ctx context.Context, t queue.Task) error {
	d, err := s.Store.Get(ctx, t.DeploymentID)
	if err != nil {
		return err
	}
	if (d.Status != deployment.StatusFailed && d.Status != deployment.StatusDeleted) || d.EndpointDeleted {
		return nil
	}
	if !mayHaveEndpoint(d) {
		return nil
	}
	key, err := s.open(ctx, d.RunPodKey, d.ID, deployment.FieldRunPodKey)
	if err != nil {
		return err
	}
	ids := []string{}
	if d.RunPodEndpointID != "" {
		ids = append(ids, d.RunPodEndpointID)
	}
	found, err := s.RunPod.FindEndpoints(ctx, key, EnvDeploymentID, d.ID)
	if err != nil {
		// Cancelled is not an answer: without the lookup, an endpoint an
		// interrupted create_endpoint run made could be missed.
		if ok, _ := runpod.Retryable(err); ok || ctx.Err() != nil {
			return fmt.Errorf("find endpoints: %w", err)
		}
		return s.note(ctx, d.ID, deployment.LevelError, "Could not look for RunPod endpoints to delete (%s); check the RunPod console", runpodMessage(err))
	}
	for _, ep := range found {
		if ep.ID != d.RunPodEndpointID {
			ids = append(ids, ep.ID)
		}
	}
	for _, id := range ids {
		if err := s.RunPod.DeleteEndpoint(ctx, key, id); err != nil {
			if ok, _ := runpod.Retryable(err); ok || ctx.Err() != nil {
				return fmt.Errorf("delete endpoint %s: %w", id, err)
			}
			return s.note(ctx, d.ID, deployment.LevelError, "Could not delete RunPod endpoint %s (%s); delete it in the RunPod console", id, runpodMessage(err))
		}
	}
	now := s.now()
	_, err = s.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		if d.EndpointDeleted {
			return nil
		}
		d.EndpointDeleted = true
		for _, id := range ids {
			d.Log(now, deployment.LevelInfo, "RunPod endpoint %s deleted", id)
		}
		if len(ids) == 0 {
			d.Log(now, deployment.LevelInfo, "No RunPod endpoint to delete")
		}
		return nil
	})
	return err
}

// note adds a log line and ends the task.
func (s *Steps) note(ctx context.Context, id string, level deployment.Level, format string, args ...any) error {
	now := s.now()
	_, err := s.Store.Update(ctx, id, func(d *deployment.Deployment) error {
		d.Log(now, level, format, args...)
		return nil
	})
	return err
}
