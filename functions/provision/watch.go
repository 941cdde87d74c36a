package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/serving"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

// watch polls the endpoint's workers until one is ready, so that a silent
// container still reaches ready, and fails the deployment on a crash loop,
// a lasting stock-out or the overall deadline (deployment.ApplyPoll, the
// rule; the container's reports follow deployment.ApplyReport). Watch
// stops as soon as the deployment is past it.
func (s *Steps) watch(ctx context.Context, t queue.Task) error {
	d, err := s.Store.Get(ctx, t.DeploymentID)
	if err != nil {
		return err
	}
	if !d.Status.Watched() {
		return nil
	}
	from := d.Status
	if d.RunPodEndpointID == "" {
		// A container's callback moved the status on before the
		// create_endpoint run that made its endpoint recorded it: that run
		// records it and watching goes on; the deadline still holds.
		started := d.Watch.StartedAt
		if started.IsZero() {
			started = d.StatusChangedAt
		}
		if s.now().Sub(started) >= s.ReadyDeadline {
			return s.fail(ctx, d.ID, from, fmt.Sprintf("Model not loaded within %s of the endpoint's creation", s.ReadyDeadline))
		}
		return s.again(ctx, t, s.PollInterval)
	}
	key, err := s.open(ctx, d.RunPodKey, d.ID, deployment.FieldRunPodKey)
	if err != nil {
		return err
	}
	workers, err := s.RunPod.Workers(ctx, key, d.RunPodEndpointID)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("list workers: %w", err) // cancelled: not RunPod's answer
		}
		if ok, after := runpod.Retryable(err); ok {
			if s.now().Sub(d.Watch.StartedAt) > s.ReadyDeadline {
				return s.fail(ctx, d.ID, from, fmt.Sprintf("Model not loaded within %s of the endpoint's creation (RunPod: %s)", s.ReadyDeadline, runpodMessage(err)))
			}
			return s.again(ctx, t, max(after, s.PollInterval))
		}
		if runpod.IsNotFound(err) {
			return s.fail(ctx, d.ID, from, fmt.Sprintf("RunPod endpoint %s no longer exists", d.RunPodEndpointID))
		}
		return s.fail(ctx, d.ID, from, runpodMessage(err))
	}
	now := s.now()
	// The inference worker is ready when it says so (its warm-up inference
	// succeeded), not when a worker is merely up; RunPod's vLLM worker
	// loads the model before it takes jobs, so an idle one is ready
	// (deployment.ProvesReady).
	poll := summarise(workers)
	poll.OwnWord = planOf(d).Worker == serving.Inference
	// Its word is its ready report or its answer to a health check: ask
	// it outside the transaction.
	if d.HealthCheckDue(now, poll, s.healthEvery()) {
		poll.Healthy, poll.Asked = s.askHealth(ctx, key, d), true
	}
	limits := deployment.WatchLimits{Ready: s.ReadyDeadline, Capacity: s.CapacityDeadline}
	d, err = s.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		if !d.Status.Watched() {
			return errStop
		}
		return d.ApplyPoll(now, poll, limits)
	})
	if errors.Is(err, errStop) {
		return nil
	}
	if err != nil {
		return err
	}
	if !d.Status.Watched() {
		return nil // ready or failed: what that owes is the change feed's
	}
	return s.again(ctx, t, s.PollInterval)
}

var errStop = errors.New("provision: deployment moved on")

// healthWait is how long a health check waits for the worker's answer.
const healthWait = 5 * time.Second

// healthEvery is how often the watch asks an inference worker that is up
// without having reported ready: every three polls.
func (s *Steps) healthEvery() time.Duration { return 3 * s.PollInterval }

// askHealth runs the health check on d's endpoint (workerenv.HealthCheck)
// and reports whether the worker answered that its model is ready. Any
// failure is only a "not yet": the report, or the next check, may still
// come, and the deadlines still hold.
func (s *Steps) askHealth(ctx context.Context, key secret.Secret, d *deployment.Deployment) bool {
	if d.EndpointURL == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, healthWait+5*time.Second)
	defer cancel()
	res, err := s.RunPod.RunSync(ctx, key, d.EndpointURL, map[string]any{workerenv.HealthCheck: true}, healthWait)
	if err != nil {
		s.logger().InfoContext(ctx, "health check not answered", "deployment_id", d.ID, "error", runpodMessage(err))
		return false
	}
	if res.Status == runpod.JobInQueue || res.Status == runpod.JobInProgress {
		// Not answered in time: a job left queued would make RunPod start
		// another worker for it. The next check asks again.
		if err := s.RunPod.CancelJob(ctx, key, d.EndpointURL, res.ID); err != nil {
			s.logger().InfoContext(ctx, "health check not cancelled", "deployment_id", d.ID, "error", runpodMessage(err))
		}
		return false
	}
	if res.Status != runpod.JobCompleted {
		return false
	}
	var out map[string]any
	return json.Unmarshal(res.Output, &out) == nil && out[workerenv.HealthCheck] == workerenv.HealthReady
}

// summarise is what a poll saw of workers.
func summarise(workers []runpod.Worker) deployment.Poll {
	var p deployment.Poll
	for _, w := range workers {
		if w.Status.Ready() {
			p.ReadyWorker, p.ReadyStatus = w.ID, string(w.Status)
			break
		}
	}
	counts := runpod.CountByStatus(workers)
	p.Unhealthy = counts[runpod.WorkerUnhealthy]
	p.ThrottledOnly = len(workers) > 0 && counts[runpod.WorkerThrottled] == len(workers)
	if len(workers) == 0 {
		p.Summary = "none yet"
		return p
	}
	var parts []string
	for st, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(string(st))))
	}
	sort.Strings(parts)
	p.Summary = strings.Join(parts, ", ")
	return p
}
