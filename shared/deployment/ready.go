package deployment

import (
	"fmt"
	"strings"
	"time"
)

// ReadySign is evidence that a deployment's model is loaded.
type ReadySign string

// The signs of readiness.
const (
	// SignWorkerUp: RunPod shows a worker idle or running. RunPod's vLLM
	// worker loads the model before it takes jobs, so for it that is proof;
	// for the orchestrator's inference worker it is not (it may still be
	// downloading or warming up).
	SignWorkerUp ReadySign = "worker_up"
	// SignReported: the inference worker reported ready (after its warm-up
	// inference), and the report reached the orchestrator.
	SignReported ReadySign = "reported"
	// SignHealth: the inference worker answered the orchestrator's health
	// check, which it can only do once it takes jobs, after its warm-up.
	// Readiness never hangs on one report getting through.
	SignHealth ReadySign = "health"
)

// ProvesReady reports whether sign shows the model loaded for a worker
// that readies by its own word (the inference worker: ownWord) or by being
// up (RunPod's vLLM worker).
func ProvesReady(sign ReadySign, ownWord bool) bool {
	return !ownWord || sign == SignReported || sign == SignHealth
}

// WorkerReady moves a provisioning deployment to ready on sign, with the
// log line that says how it was known (worker names the worker seen up,
// and how). It returns a *TransitionError when d cannot become ready.
func (d *Deployment) WorkerReady(now time.Time, sign ReadySign, worker string) error {
	if err := d.Transition(now, StatusReady); err != nil {
		return err
	}
	switch sign {
	case SignWorkerUp:
		d.Log(now, LevelInfo, "Model loaded: worker %s", worker)
	case SignHealth:
		d.Log(now, LevelInfo, "Model ready: the inference worker answered a health check (its ready report did not arrive)")
	case SignReported:
		d.Log(now, LevelInfo, "Model ready: the inference container had reported it before its endpoint was recorded")
	}
	return nil
}

// UnhealthyPolls is how many consecutive polls with unhealthy workers (and
// none ready) count as a crash loop.
const UnhealthyPolls = 3

// Poll is what one look at the endpoint's workers saw (the watch step).
type Poll struct {
	// Summary sums the workers up, e.g. "1 idle, 1 initializing"; "none
	// yet" when there is none.
	Summary string
	// ReadyWorker is the id of a worker idle or running ("" when none),
	// ReadyStatus its status as RunPod names it.
	ReadyWorker, ReadyStatus string
	// Unhealthy counts the unhealthy workers; ThrottledOnly is set when
	// there are workers and every one waits for a GPU.
	Unhealthy     int
	ThrottledOnly bool
	// OwnWord is set for a worker that readies by its own word (the
	// inference worker), not by being up (RunPod's vLLM worker).
	OwnWord bool
	// Asked is set when the watch asked the worker's health at this poll,
	// Healthy when the worker answered that its model is ready.
	Asked, Healthy bool
}

// WatchLimits are how long the watch waits.
type WatchLimits struct {
	// Ready is the longest from the endpoint's creation to the model ready.
	Ready time.Duration
	// Capacity is the longest every worker may wait for a GPU.
	Capacity time.Duration
}

// HealthCheckDue reports whether the watch should ask the worker whether
// its model is ready before applying p: the worker readies by its own word,
// one is up and was up at an earlier poll, no ready report arrived (lost to
// an outage of ours, say), and the last check is every or more ago.
func (d *Deployment) HealthCheckDue(now time.Time, p Poll, every time.Duration) bool {
	return p.OwnWord && p.ReadyWorker != "" && d.Watch.WorkerUp && d.Progress.Phase != StatusReady &&
		now.Sub(d.Watch.HealthAskedAt) >= every
}

// ApplyPoll records poll p, made at now, in d's watch, and moves d on when it
// shows how things stand: to ready on a sign that proves the model loaded
// (a ready report parked before the endpoint was recorded, a health check
// answered, or, for a worker that is not its own word, a worker up); to
// failed on a crash loop, a lasting stock-out or the ready deadline. The
// error is a *TransitionError should the move be refused.
func (d *Deployment) ApplyPoll(now time.Time, p Poll, limits WatchLimits) error {
	w := &d.Watch
	w.Polls++
	if p.Summary != w.LastSeen {
		d.Log(now, LevelInfo, "Workers: %s", p.Summary)
	}
	w.LastSeen = p.Summary
	if p.Asked {
		w.HealthAskedAt = now
	}
	switch {
	case p.OwnWord && d.Progress.Phase == StatusReady:
		// The worker reported ready before its endpoint was recorded.
		return d.WorkerReady(now, SignReported, "")
	case p.Healthy:
		return d.WorkerReady(now, SignHealth, p.ReadyWorker)
	case p.ReadyWorker != "" && ProvesReady(SignWorkerUp, p.OwnWord):
		return d.WorkerReady(now, SignWorkerUp, fmt.Sprintf("%s is %s", p.ReadyWorker, p.ReadyStatus))
	case p.ReadyWorker != "":
		w.UnhealthyPolls = 0
		w.WorkerUp = true
	case p.Unhealthy > 0:
		w.UnhealthyPolls++
	default:
		w.UnhealthyPolls = 0
	}
	if p.ThrottledOnly {
		if w.ThrottledSince.IsZero() {
			w.ThrottledSince = now
		}
	} else {
		w.ThrottledSince = time.Time{}
	}
	var failMsg string
	switch {
	case w.UnhealthyPolls >= UnhealthyPolls:
		failMsg = fmt.Sprintf("Inference workers are crash-looping (unhealthy on %d consecutive checks); check that the image can serve %s", w.UnhealthyPolls, d.ModelID)
	case !w.ThrottledSince.IsZero() && now.Sub(w.ThrottledSince) >= limits.Capacity:
		failMsg = fmt.Sprintf("No GPU capacity in pools %s for %s; try another gpu_tier or try again later", strings.Join(d.GPUPools, ", "), limits.Capacity)
	case now.Sub(w.StartedAt) >= limits.Ready && w.WorkerUp && p.OwnWord:
		failMsg = fmt.Sprintf("The inference worker is up but neither reported its model ready nor answered a health check within %s of the endpoint's creation; check that it can reach the callback URL (PUBLIC_BASE_URL)", limits.Ready)
	case now.Sub(w.StartedAt) >= limits.Ready:
		failMsg = fmt.Sprintf("Model not loaded within %s of the endpoint's creation", limits.Ready)
	}
	if failMsg != "" {
		return d.Fail(now, failMsg)
	}
	return nil
}
