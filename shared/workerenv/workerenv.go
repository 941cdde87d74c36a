// Package workerenv names the environment variables the orchestrator sets
// on the RunPod endpoints it makes, which the inference container reads: the
// provision chain writes them, the RunPod simulator's workers read them as
// the real container does, and inference/ is their Python reader.
package workerenv

import "github.com/visgate/deployment-orchestrator/shared/deployment"

// Every container.
const (
	// DeploymentID is the deployment's id, also the marker a teardown and
	// the reconciler find the deployment's endpoints by.
	DeploymentID = deployment.EndpointMarker
	// CallbackURL and CallbackSecret are where and with what secret the
	// container reports progress (POST /internal/deployment-ready/{id}).
	CallbackURL    = "VISGATE_CALLBACK_URL"
	CallbackSecret = "VISGATE_CALLBACK_SECRET"
	ModelName      = "MODEL_NAME"
	ModelRevision  = "MODEL_REVISION"
	HFToken        = "HF_TOKEN"
	// InitTimeout is RunPod's own: seconds a worker may take to start
	// before RunPod marks it unhealthy (7 minutes when unset).
	InitTimeout = "RUNPOD_INIT_TIMEOUT"
)

// The orchestrator's inference worker (INFERENCE_IMAGE) only: its task,
// library and files, and the GPU it was placed on.
const (
	Task    = "VISGATE_TASK"
	Library = "VISGATE_LIBRARY"
	Files   = "VISGATE_FILES"
	GPU     = "VISGATE_GPU"
	VRAMGB  = "VISGATE_VRAM_GB"
	// AllowCPU ("1") lets the worker serve from the CPU although GPU names
	// a card: set by the GPU-free local simulation only, never on RunPod,
	// where a worker without CUDA reports failed instead.
	AllowCPU = "VISGATE_ALLOW_CPU"
	// JobTimeout is a job's wall-clock limit in seconds: the worker stops a
	// job's computation past it and fails the job with a sentence; the
	// endpoint's execution timeout is set a little above it.
	JobTimeout = "VISGATE_JOB_TIMEOUT"
)

// The health check: the job input with which the orchestrator asks the
// inference worker whether its model is loaded, {"visgate_health": true},
// and the answer's value, {"visgate_health": "ready"}. The worker takes jobs
// only once its warm-up inference succeeded, so an answer shows the model
// ready even when the worker's ready report was lost.
const (
	HealthCheck = "visgate_health"
	HealthReady = "ready"
)
