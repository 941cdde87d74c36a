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
)

// DefaultSpendInterval is how often the spend of a deployment with
// max_spend_usd is read from RunPod's billing API.
const DefaultSpendInterval = 5 * time.Minute

func (s *Steps) spendInterval() time.Duration {
	if s.SpendInterval > 0 {
		return s.SpendInterval
	}
	return DefaultSpendInterval
}

// expire deletes a live deployment whose expires_at has passed. A run
// before its time (a task delayed at most queue.MaxDelay) schedules itself
// again for the rest if it is the task owed for the current expiry (its Seq
// is Limits.Changes); any other early copy (a resume's, or an earlier
// expiry's) ends, so one chain waits. A run once the time has passed acts,
// whichever copy it is: the commit checks the record again.
func (s *Steps) expire(ctx context.Context, t queue.Task) error {
	d, err := s.Store.Get(ctx, t.DeploymentID)
	if err != nil {
		return err
	}
	if !d.Live() || d.Limits.ExpiresAt.IsZero() {
		return nil
	}
	now := s.now()
	if wait := d.Limits.ExpiresAt.Sub(now); wait > 0 {
		if t.Seq != d.Limits.Changes {
			return nil
		}
		return s.again(ctx, t, min(wait, queue.MaxDelay))
	}
	_, err = s.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		if !d.Live() || d.Limits.ExpiresAt.IsZero() || d.Limits.ExpiresAt.After(now) {
			return store.ErrNoChange
		}
		what := "expires_at " + d.Limits.ExpiresAt.UTC().Format(time.RFC3339) + " passed"
		if d.Limits.ExpiryDefaulted {
			what = "the service's default time limit (expires_at " + d.Limits.ExpiresAt.UTC().Format(time.RFC3339) + ") passed"
		}
		return d.LimitReached(now, deployment.ReasonExpired, what)
	})
	if errors.Is(err, store.ErrNoChange) {
		return nil
	}
	return err
}

// readSpend reads what the endpoint of a deployment with max_spend_usd has
// cost (RunPod's billing API, off the request path), records it with the
// time it was read, and deletes the deployment once the spend reached the
// limit, in the same commit. Copies of a due read race to commit: the first
// counts the read (Spend.Reads), the others find it counted. The read after it is owed at NextReadAt (the
// change feed enqueues it): never more often than SpendInterval. A failed
// read is recorded and retried at the next interval: the figure shown keeps
// its own read time.
func (s *Steps) readSpend(ctx context.Context, t queue.Task) error {
	d, err := s.Store.Get(ctx, t.DeploymentID)
	if err != nil {
		return err
	}
	if !d.SpendDue() {
		return nil
	}
	now := s.now()
	if wait := d.Spend.NextReadAt.Sub(now); wait > time.Second {
		if t.Seq != d.Spend.Reads {
			return nil // a duplicate of a read already recorded, or a resume's early copy
		}
		return s.again(ctx, t, min(wait, queue.MaxDelay))
	}
	seen := d.Spend.Reads
	key, err := s.open(ctx, d.RunPodKey, d.ID, deployment.FieldRunPodKey)
	if err != nil {
		return err
	}
	endpointID, since := d.RunPodEndpointID, d.Watch.StartedAt
	if since.IsZero() {
		since = d.CreatedAt
	}
	spent, rerr := s.RunPod.EndpointSpend(ctx, key, endpointID, since)
	if rerr != nil && ctx.Err() != nil {
		return fmt.Errorf("read spend: %w", rerr)
	}
	read := s.now()
	_, err = s.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		if !d.SpendDue() || d.Spend.Reads != seen || d.RunPodEndpointID != endpointID {
			return store.ErrNoChange // another copy recorded this read, or the record moved on
		}
		sp := &d.Spend
		sp.Reads++
		sp.NextReadAt = read.Add(s.spendInterval())
		if rerr != nil {
			msg := runpodMessage(rerr)
			if sp.LastError != msg {
				d.Log(read, deployment.LevelWarn, "Could not read the endpoint's spend from RunPod (%s); trying again every %s", msg, s.spendInterval())
			}
			sp.LastError = msg
			return nil
		}
		sp.USD, sp.ReadAt, sp.LastError = spent.TotalUSD, read, ""
		sp.Since, sp.BucketSeconds = since.UTC().Truncate(runpod.BillingBucket), int(runpod.BillingBucket/time.Second)
		if max := d.Limits.MaxSpendUSD; max > 0 && spent.TotalUSD >= max {
			return d.LimitReached(read, deployment.ReasonMaxSpend, deployment.SpendSummary(spent.TotalUSD, max))
		}
		return nil
	})
	if errors.Is(err, store.ErrNoChange) {
		return nil
	}
	return err
}
