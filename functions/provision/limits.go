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

// DefaultSpendInterval is how often the spend of a live endpoint is read
// from RunPod's billing API.
const DefaultSpendInterval = 5 * time.Minute

func (s *Steps) spendInterval() time.Duration {
	if s.SpendInterval > 0 {
		return s.SpendInterval
	}
	return DefaultSpendInterval
}

// expire deletes a live deployment whose expires_at has passed. A run
// before its time (a task is delayed at most queue.MaxDelay) schedules the
// next hop of the wait, whichever copy it is (the task owed for the
// expiry, a resume's after a restart, with a Seq of its own, or an earlier
// expiry's): the hop is named from the current expiry and the stretch of
// the wait it ends (expireHop), so copies that wake in the same stretch
// schedule one task, and no copy ends the wait for the others. A run once
// the time has passed acts, whichever copy it is: the commit checks the
// record again.
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
		hop := expireHop(d, wait)
		if t.Seq == hop.Seq && t.Run >= hop.Run {
			// This stretch's hop (or a later run of it) came early: its
			// next run takes a name of its own. Names only grow along a
			// chain, so a run never finds its successor's name taken.
			hop.Run = t.Run + expireHops
		}
		if err := s.Queue.Enqueue(ctx, hop); err != nil {
			return fmt.Errorf("enqueue %s: %w", hop.Name(), err)
		}
		return nil
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

// DefaultSpendTimeout bounds one read of RunPod's billing API: a billing
// API that hangs must not hold a queue worker that the chain needs.
const DefaultSpendTimeout = 5 * time.Second

// DefaultSpendReaders is how many spend reads of one process may wait on
// RunPod's billing API at once: the reads' own budget, apart from the
// chain's.
const DefaultSpendReaders = 1

func (s *Steps) spendTimeout() time.Duration {
	if s.SpendTimeout > 0 {
		return s.SpendTimeout
	}
	return DefaultSpendTimeout
}

// spendSlot takes one of the spend reads' slots without waiting, and
// reports whether it got one; release gives it back.
func (s *Steps) spendSlot() (release func(), ok bool) {
	s.spendOnce.Do(func() {
		n := s.SpendReaders
		if n <= 0 {
			n = DefaultSpendReaders
		}
		s.spendSlots = make(chan struct{}, n)
	})
	select {
	case s.spendSlots <- struct{}{}:
		return func() { <-s.spendSlots }, true
	default:
		return nil, false
	}
}

// expireHops numbers the hops of an expiry's wait from the end: the hop
// that ends k whole queue.MaxDelay stretches before the expiry is run
// expireHops-k of the expire task (never 0, the owed task's own name).
const expireHops = 1 << 20

// expireHop is the next hop of the wait for d's expiry, wait ahead: due
// when the wait has whole MaxDelay stretches left (or at the expiry), and
// named from the expiry (Seq Limits.Changes) and the stretches left.
func expireHop(d *deployment.Deployment, wait time.Duration) queue.Task {
	left := (wait - 1) / queue.MaxDelay // whole stretches after this hop
	return queue.Task{DeploymentID: d.ID, Step: deployment.StepExpire, Seq: d.Limits.Changes,
		Run: max(1, expireHops-int(left)), Delay: wait - left*queue.MaxDelay}
}

// readSpend reads what a live deployment's endpoint has cost (RunPod's
// billing API, off the request path: GET shows the figure, never asks
// RunPod), records it with the time it was read, and, when the owner set
// max_spend_usd, deletes the deployment once the spend reached it, in the
// same commit (deployment.RecordSpend). It is the one reader of RunPod's
// billing: one timeout, one budget, one wording of a failed read. Copies of a due read race to commit: the first
// counts the read (Spend.Reads), the others find it counted. The read after
// it is owed at NextReadAt (the change feed enqueues it): never more often
// than SpendInterval. A failed read is recorded and retried at the next
// interval: the figure shown keeps its own read time.
//
// A read waits at most SpendTimeout for RunPod, and at most SpendReaders
// reads wait at once: a read that finds them all taken runs again once one
// may be free, so a hanging billing API holds one queue worker, not all.
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
	release, ok := s.spendSlot()
	if !ok {
		return s.again(ctx, t, s.spendTimeout())
	}
	defer release()
	seen := d.Spend.Reads
	key, err := s.open(ctx, d.RunPodKey, d.ID, deployment.FieldRunPodKey)
	if err != nil {
		return err
	}
	endpointID, since := d.RunPodEndpointID, d.Watch.StartedAt
	if since.IsZero() {
		since = d.CreatedAt
	}
	rctx, cancel := context.WithTimeout(ctx, s.spendTimeout())
	spent, rerr := s.RunPod.EndpointSpend(rctx, key, endpointID, since)
	cancel()
	if rerr != nil && ctx.Err() != nil {
		return fmt.Errorf("read spend: %w", rerr)
	}
	read := s.now()
	r := deployment.SpendRead{USD: spent.TotalUSD, Since: since.UTC().Truncate(runpod.BillingBucket), BucketSeconds: int(runpod.BillingBucket / time.Second)}
	if rerr != nil {
		r.Err = runpodMessage(rerr)
	}
	_, err = s.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		if !d.SpendDue() || d.Spend.Reads != seen || d.RunPodEndpointID != endpointID {
			return store.ErrNoChange // another copy recorded this read, or the record moved on
		}
		d.Spend.Reads++
		d.Spend.NextReadAt = d.NextSpendRead(read, s.spendInterval())
		return d.RecordSpend(read, r)
	})
	if errors.Is(err, store.ErrNoChange) {
		return nil
	}
	return err
}
