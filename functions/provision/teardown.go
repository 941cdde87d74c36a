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
	if !d.MayHaveEndpoint() {
		return nil
	}
	seen := d.EndpointChanges
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
		if d.EndpointDeleted || d.EndpointChanges != seen {
			// Done already, or the record learnt of an endpoint this run
			// may not have seen: the teardown that owes names runs.
			return store.ErrNoChange
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
	if errors.Is(err, store.ErrNoChange) {
		return nil
	}
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
