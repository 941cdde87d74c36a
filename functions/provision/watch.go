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

// UnhealthyPolls is how many consecutive polls with unhealthy workers (and
// none ready) count as a crash loop.
const UnhealthyPolls = 3

// watch polls the endpoint's workers until one is ready, so that a silent
// container still reaches ready, and fails the deployment on a crash loop,
// a lasting stock-out or the overall deadline. The container's callbacks
// move the status too; watch stops as soon as the deployment is past it.
func (s *Steps) watch(ctx context.Context, t queue.Task) error {
	d, err := s.Store.Get(ctx, t.DeploymentID)
	if err != nil {
		return err
	}
	if !watching(d.Status) {
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
	sum := summarise(workers)
	// The inference worker is ready when it says so (its warm-up inference
	// succeeded), not when a worker is merely up; RunPod's vLLM worker
	// loads the model before it takes jobs, so an idle one is ready
	// (deployment.ProvesReady).
	ownWord := planOf(d).Worker == serving.Inference
	// Its word is its ready report or its answer to a health check: once
	// a worker has been up for a poll without a report arriving (lost to
	// an outage of ours, say), ask it, outside the transaction.
	healthy, asked := false, false
	if ownWord && sum.ready != "" && d.Watch.WorkerUp && d.Progress.Phase != deployment.StatusReady &&
		now.Sub(d.Watch.HealthAskedAt) >= s.healthEvery() {
		healthy, asked = s.askHealth(ctx, key, d), true
	}
	var failMsg string
	d, err = s.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		if !watching(d.Status) {
			return errStop
		}
		w := &d.Watch
		w.Polls++
		if sum.text != w.LastSeen {
			d.Log(now, deployment.LevelInfo, "Workers: %s", sum.text)
		}
		w.LastSeen = sum.text
		if asked {
			w.HealthAskedAt = now
		}
		switch {
		case ownWord && d.Progress.Phase == deployment.StatusReady:
			// The worker reported ready before its endpoint was recorded.
			return d.WorkerReady(now, deployment.SignReported, "")
		case healthy:
			return d.WorkerReady(now, deployment.SignHealth, sum.ready)
		case sum.ready != "" && deployment.ProvesReady(deployment.SignWorkerUp, ownWord):
			return d.WorkerReady(now, deployment.SignWorkerUp, fmt.Sprintf("%s is %s", sum.ready, sum.readyStatus))
		case sum.ready != "":
			w.UnhealthyPolls = 0
			w.WorkerUp = true
		case sum.unhealthy > 0:
			w.UnhealthyPolls++
		default:
			w.UnhealthyPolls = 0
		}
		if sum.throttledOnly {
			if w.ThrottledSince.IsZero() {
				w.ThrottledSince = now
			}
		} else {
			w.ThrottledSince = time.Time{}
		}
		switch {
		case w.UnhealthyPolls >= UnhealthyPolls:
			failMsg = fmt.Sprintf("Inference workers are crash-looping (unhealthy on %d consecutive checks); check that the image can serve %s", w.UnhealthyPolls, d.ModelID)
		case !w.ThrottledSince.IsZero() && now.Sub(w.ThrottledSince) >= s.CapacityDeadline:
			failMsg = fmt.Sprintf("No GPU capacity in pools %s for %s; try another gpu_tier or try again later", strings.Join(d.GPUPools, ", "), s.CapacityDeadline)
		case now.Sub(w.StartedAt) >= s.ReadyDeadline && w.WorkerUp && ownWord:
			failMsg = fmt.Sprintf("The inference worker is up but neither reported its model ready nor answered a health check within %s of the endpoint's creation; check that it can reach the callback URL (PUBLIC_BASE_URL)", s.ReadyDeadline)
		case now.Sub(w.StartedAt) >= s.ReadyDeadline:
			failMsg = fmt.Sprintf("Model not loaded within %s of the endpoint's creation", s.ReadyDeadline)
		}
		if failMsg != "" {
			return d.Fail(now, failMsg)
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	if err != nil {
		return err
	}
	if !watching(d.Status) {
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

func watching(st deployment.Status) bool {
	return st == deployment.StatusDownloadingModel || st == deployment.StatusLoadingModel
}

type workerSummary struct {
	text          string
	ready         string // id of a worker that is idle or running
	readyStatus   runpod.WorkerStatus
	unhealthy     int
	throttledOnly bool
}

func summarise(workers []runpod.Worker) workerSummary {
	var s workerSummary
	for _, w := range workers {
		if w.Status.Ready() {
			s.ready, s.readyStatus = w.ID, w.Status
			break
		}
	}
	counts := runpod.CountByStatus(workers)
	s.unhealthy = counts[runpod.WorkerUnhealthy]
	s.throttledOnly = len(workers) > 0 && counts[runpod.WorkerThrottled] == len(workers)
	if len(workers) == 0 {
		s.text = "none yet"
		return s
	}
	var parts []string
	for st, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(string(st))))
	}
	sort.Strings(parts)
	s.text = strings.Join(parts, ", ")
	return s
}
