package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
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
	found, err := s.RunPod.FindEndpoints(ctx, key, workerenv.DeploymentID, d.ID)
	if err != nil {
		// Cancelled is not an answer: without the lookup, an endpoint an
		// interrupted create_endpoint run made could be missed.
		if ctx.Err() != nil {
			return fmt.Errorf("find endpoints: %w", err)
		}
		if ok, after := runpod.Retryable(err); ok {
			return s.retryCleanup(ctx, t, after, "Could not look for RunPod endpoints to delete (%s)", runpodMessage(err))
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
			if ctx.Err() != nil {
				return fmt.Errorf("delete endpoint %s: %w", id, err)
			}
			if ok, after := runpod.Retryable(err); ok {
				return s.retryCleanup(ctx, t, after, "Could not delete RunPod endpoint %s (%s)", id, runpodMessage(err))
			}
			return s.note(ctx, d.ID, deployment.LevelError, "Could not delete RunPod endpoint %s (%s); delete it in the RunPod console", id, runpodMessage(err))
		}
	}
	now := s.now()
	var lookAgain time.Time
	_, err = s.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		if d.EndpointDeleted || d.EndpointChanges != seen {
			// Done already, or the record learnt of an endpoint this run
			// may not have seen: the teardown that owes names runs.
			return store.ErrNoChange
		}
		for _, id := range ids {
			d.Log(now, deployment.LevelInfo, "RunPod endpoint %s deleted", id)
		}
		if d.CreateUncertainUntil.After(now) {
			// A create without an answer may still land: not done until
			// a look after the window finds nothing more.
			lookAgain = d.CreateUncertainUntil
			d.Log(now, deployment.LevelInfo, "RunPod may still make the endpoint of a create that got no answer; looking again at %s", lookAgain.Format(time.RFC3339))
			return nil
		}
		d.EndpointDeleted = true
		if len(ids) == 0 {
			d.Log(now, deployment.LevelInfo, "No RunPod endpoint to delete")
		}
		return nil
	})
	if errors.Is(err, store.ErrNoChange) {
		return nil
	}
	if err != nil || lookAgain.IsZero() {
		return err
	}
	return s.again(ctx, t, lookAgain.Add(time.Second).Sub(now))
}

// retryCleanup runs a scale or teardown step again after a transient
// RunPod failure, for as long as it takes: an endpoint left running or
// left at one warm worker costs the user money, so these steps never give
// up (unlike the queue, whose retry budget is about a minute in the
// embedded runtime). The wait doubles from RetryBase up to MaxRetryBackoff,
// never less than RunPod's Retry-After; each retry is in the deployment's
// log. The step itself returns early once the work is moot (the endpoint
// deleted, scaled, or the deployment moved on).
func (s *Steps) retryCleanup(ctx context.Context, t queue.Task, retryAfter time.Duration, format string, args ...any) error {
	now := s.now()
	var delay time.Duration
	_, err := s.Store.Update(ctx, t.DeploymentID, func(d *deployment.Deployment) error {
		d.Retries++
		delay = backoff(s.RetryBase, d.Retries, retryAfter)
		d.Log(now, deployment.LevelWarn, format+"; retrying in %s (attempt %d)", append(args, delay.Round(time.Millisecond), d.Retries+1)...)
		return nil
	})
	if err != nil {
		return err
	}
	return s.again(ctx, t, delay)
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
