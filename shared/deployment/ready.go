package deployment

import "time"

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
