package provision_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

// With INFERENCE_IMAGE set, the families the inference worker serves reach
// ready on that image, with the task under the Hub's own name, the library,
// the estimate's file selection, the GPU and the estimate in the env; text
// generation stays on the vLLM image.
func TestInferenceWorkerFamilies(t *testing.T) {
	tests := []struct {
		model, task, library, weight string
	}{
		{"black-forest-labs/FLUX.1-schnell", "text-to-image", "diffusers", "transformer/diffusion_pytorch_model-00001-of-00003.safetensors"},
		{"stabilityai/sdxl-turbo", "text-to-image", "diffusers", "unet/diffusion_pytorch_model.fp16.safetensors"},
		{"openai/whisper-large-v3", "automatic-speech-recognition", "transformers", "model.safetensors"},
		{"google-bert/bert-base-uncased", "fill-mask", "transformers", "model.safetensors"},
		{"sentence-transformers/all-MiniLM-L6-v2", "sentence-similarity", "sentence-transformers", "model.safetensors"},
	}
	e := newEnv(t, options{})
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			id := e.start(tt.model, createOpts{})
			d := e.expectReady(id)
			ep := e.endpointsOf(id)[0]
			if ep.Image != "visgate/inference:test" {
				t.Errorf("image %q, want the INFERENCE_IMAGE", ep.Image)
			}
			want := map[string]string{
				workerenv.Task: tt.task, workerenv.Library: tt.library,
				workerenv.GPU: d.GPUAllocated, workerenv.VRAMGB: strconv.Itoa(d.ModelVRAMGB),
				workerenv.ModelName: tt.model, workerenv.ModelRevision: d.Revision,
			}
			for k, v := range want {
				if ep.Env[k] != v || v == "" {
					t.Errorf("env %s = %q, want %q", k, ep.Env[k], v)
				}
			}
			var files []string
			if err := json.Unmarshal([]byte(ep.Env[workerenv.Files]), &files); err != nil {
				t.Fatalf("%s = %q: %v", workerenv.Files, ep.Env[workerenv.Files], err)
			}
			if !slices.Equal(files, d.Files) || !slices.Contains(files, tt.weight) {
				t.Errorf("%s = %v (deployment: %v), want it to hold %s", workerenv.Files, files, d.Files, tt.weight)
			}
			if d.Worker != "inference" || d.Task != tt.task || d.LibraryName != tt.library {
				t.Errorf("worker %q task %q library %q", d.Worker, d.Task, d.LibraryName)
			}
		})
	}
	t.Run("text generation stays on vLLM", func(t *testing.T) {
		id := e.start("openai-community/gpt2", createOpts{})
		e.expectReady(id)
		ep := e.endpointsOf(id)[0]
		if ep.Image != "runpod/worker-v1-vllm:stable" || ep.Env[workerenv.Task] != "" || ep.Env[workerenv.Files] != "" {
			t.Errorf("image %q, task %q, files %q", ep.Image, ep.Env[workerenv.Task], ep.Env[workerenv.Files])
		}
	})
}

// Each image runs only on hosts with the CUDA it was built for: RunPod's
// vLLM worker at the default release on exactly 13.0, our inference worker
// (torch with CUDA 13 libraries) on 13.0 or newer. A custom text-generation
// image is not restricted.
func TestImagesNeedTheirCuda(t *testing.T) {
	e := newEnv(t, options{steps: func(s *provision.Steps) { s.Images.TextGeneration = config.DefaultVLLMImage }})
	llm := e.start("openai-community/gpt2", createOpts{})
	e.expectReady(llm)
	if ep := e.endpointsOf(llm)[0]; ep.Image != config.DefaultVLLMImage || !slices.Equal(ep.AllowedCudaVersions, []string{"13.0"}) || ep.MinCudaVersion != "" {
		t.Errorf("vLLM endpoint: image %q, allowedCudaVersions %v, minCudaVersion %q", ep.Image, ep.AllowedCudaVersions, ep.MinCudaVersion)
	}
	img := e.start("stabilityai/sdxl-turbo", createOpts{})
	e.expectReady(img)
	if ep := e.endpointsOf(img)[0]; len(ep.AllowedCudaVersions) != 0 || ep.MinCudaVersion != "13.0" {
		t.Errorf("inference worker endpoint: allowedCudaVersions %v, minCudaVersion %q; want none and 13.0", ep.AllowedCudaVersions, ep.MinCudaVersion)
	}

	custom := newEnv(t, options{})
	own := custom.start("openai-community/gpt2", createOpts{})
	custom.expectReady(own)
	if ep := custom.endpointsOf(own)[0]; len(ep.AllowedCudaVersions) != 0 || ep.MinCudaVersion != "" {
		t.Errorf("custom vLLM image %q: allowedCudaVersions %v, minCudaVersion %q; want none", ep.Image, ep.AllowedCudaVersions, ep.MinCudaVersion)
	}
}

// Every endpoint's workers get a start-up allowance (RUNPOD_INIT_TIMEOUT)
// sized from the download the estimate expects: FLUX.1-schnell's does not
// fit in RunPod's default 7 minutes.
func TestEndpointsCarryAnInitTimeout(t *testing.T) {
	e := newEnv(t, options{})
	for _, tc := range []struct {
		model   string
		atLeast int // seconds
	}{
		{"openai-community/gpt2", 900},
		{"stabilityai/sdxl-turbo", 900},
		{"black-forest-labs/FLUX.1-schnell", 1800},
	} {
		id := e.start(tc.model, createOpts{})
		d := e.expectReady(id)
		ep := e.endpointsOf(id)[0]
		got, err := strconv.Atoi(ep.Env[workerenv.InitTimeout])
		if err != nil {
			t.Errorf("%s: %s = %q, not whole seconds", tc.model, workerenv.InitTimeout, ep.Env[workerenv.InitTimeout])
			continue
		}
		if want := provision.InitTimeoutSeconds(d.DownloadBytes, d.ModelVRAMGB); got != want || got < tc.atLeast {
			t.Errorf("%s (download %d bytes): %s = %d, want %d (at least %d)", tc.model, d.DownloadBytes, workerenv.InitTimeout, got, want, tc.atLeast)
		}
	}
}

// The inference worker's endpoints carry the job's wall-clock limit: the
// worker's (VISGATE_JOB_TIMEOUT) and RunPod's execution timeout a minute
// above it; vLLM's keep RunPod's default.
func TestInferenceEndpointsCarryAJobTimeout(t *testing.T) {
	e := newEnv(t, options{})
	for _, tc := range []struct {
		model     string
		env       string
		timeoutMs int
	}{
		{"stabilityai/sdxl-turbo", "600", 660000},
		{"openai-community/gpt2", "", 300000}, // RunPod's default
	} {
		id := e.start(tc.model, createOpts{})
		e.expectReady(id)
		ep := e.endpointsOf(id)[0]
		if got := ep.Env[workerenv.JobTimeout]; got != tc.env {
			t.Errorf("%s: %s = %q, want %q", tc.model, workerenv.JobTimeout, got, tc.env)
		}
		if ep.TimeoutMs != tc.timeoutMs {
			t.Errorf("%s: executionTimeoutMs = %d, want %d", tc.model, ep.TimeoutMs, tc.timeoutMs)
		}
	}
	if provision.JobTimeoutSeconds("fill-mask") != 120 || provision.JobTimeoutSeconds("automatic-speech-recognition") != 600 {
		t.Errorf("JobTimeoutSeconds: fill-mask %d, speech %d; want 120 and 600",
			provision.JobTimeoutSeconds("fill-mask"), provision.JobTimeoutSeconds("automatic-speech-recognition"))
	}
}

// A family neither worker serves fails in validate: no GPU chosen, no
// endpoint created, a sentence that names the family.
func TestUnservedFamilyFailsInValidate(t *testing.T) {
	e := newEnv(t, options{})
	e.hub.AddModel(hubsim.Model{ID: "acme/voice", PipelineTag: "text-to-speech", LibraryName: "transformers",
		Files: []hubsim.File{{Name: "config.json", Size: 2, Content: []byte("{}")}, {Name: "model.safetensors", Size: 1 << 30}}})
	id := e.start("acme/voice", createOpts{})
	d := e.expectFailed(id, "Hugging Face model acme/voice is a text-to-speech model for transformers, a family no inference worker serves; served are "+
		"text generation (RunPod's vLLM worker); text-to-image (diffusers), automatic-speech-recognition (transformers), "+
		"sentence-similarity (sentence-transformers), feature-extraction (sentence-transformers or transformers), and fill-mask, "+
		"text-classification, token-classification and image-classification (transformers) on the orchestrator's inference worker")
	if n := e.rp.Calls()[runpodsim.OpCreateEndpoint]; n != 0 {
		t.Errorf("%d createEndpoint calls, want none", n)
	}
	if d.GPUAllocated != "" || hasLog(d, "Selecting GPU") {
		t.Errorf("a GPU was chosen for an unserved model\n%s", logText(d))
	}
}

func TestInferenceImageUnsetFailsInValidate(t *testing.T) {
	e := newEnv(t, options{steps: func(s *provision.Steps) { s.Images.Inference = "" }})
	id := e.start("stabilityai/sdxl-turbo", createOpts{})
	e.expectFailed(id, "No inference image is configured for text-to-image models; the operator sets INFERENCE_IMAGE")
	if n := e.rp.Calls()[runpodsim.OpCreateEndpoint]; n != 0 {
		t.Errorf("%d createEndpoint calls, want none", n)
	}
}

// noJobs is a RunPod whose endpoints take no jobs: a health check stays in
// the queue, as with a worker that is up but still loading.
type noJobs struct {
	provision.RunPod
	mu               sync.Mutex
	asked, cancelled int
}

func (n *noJobs) CancelJob(context.Context, secret.Secret, string, string) error {
	n.mu.Lock()
	n.cancelled++
	n.mu.Unlock()
	return nil
}

func (n *noJobs) RunSync(context.Context, secret.Secret, string, any, time.Duration) (*runpod.JobResult, error) {
	n.mu.Lock()
	n.asked++
	n.mu.Unlock()
	return &runpod.JobResult{ID: "job1", Status: runpod.JobInQueue}, nil
}

// For the inference worker's families ready means its warm-up succeeded:
// an idle worker that neither reports nor answers a health check is not
// ready, and the failure says where to look.
func TestInferenceWorkerReadyOnlyFromItsReport(t *testing.T) {
	deaf := &noJobs{}
	e := newEnv(t, options{
		rpOpts: []runpodsim.Option{runpodsim.WithSilentContainer()},
		// Long enough for a loaded machine's watch to see the worker idle
		// and then ask it (two polls): the deadline is what fails it.
		steps:      func(s *provision.Steps) { s.ReadyDeadline = 2 * time.Second },
		wrapRunPod: func(rp provision.RunPod) provision.RunPod { deaf.RunPod = rp; return deaf },
	})
	id := e.start("stabilityai/sdxl-turbo", createOpts{})
	d := e.expectFailed(id, "The inference worker is up but neither reported its model ready nor answered a health check within 2s of the endpoint's creation; check that it can reach the callback URL (PUBLIC_BASE_URL)")
	if !strings.Contains(logText(d), "1 idle") {
		t.Errorf("the worker was never seen idle\n%s", logText(d))
	}
	if d.ReadyAt != (time.Time{}) || slices.ContainsFunc(d.Logs, func(l deployment.LogEntry) bool { return strings.Contains(l.Message, "Model loaded") }) {
		t.Errorf("an idle worker made the deployment ready\n%s", logText(d))
	}
	deaf.mu.Lock()
	defer deaf.mu.Unlock()
	if deaf.asked == 0 || deaf.cancelled != deaf.asked {
		t.Errorf("%d health checks, %d cancelled: want some, each unanswered one cancelled (a queued job starts a worker)", deaf.asked, deaf.cancelled)
	}
}

// TestLostReadyReportIsAnsweredByTheWorker (issue 23, item 1): the inference
// worker's ready report never arrives (the orchestrator was down while the
// worker tried); the worker is up, idle, healthy and serves jobs, so the
// watch's health check finds it ready instead of failing it at the
// deadline and tearing its endpoint down.
func TestLostReadyReportIsAnsweredByTheWorker(t *testing.T) {
	e := newEnv(t, options{rpOpts: []runpodsim.Option{runpodsim.WithSilentContainer()}})
	id := e.start("stabilityai/sdxl-turbo", createOpts{})
	d := e.expectReady(id)
	if !hasLog(d, "answered a health check") {
		t.Errorf("no log line says how readiness was known\n%s", logText(d))
	}
	if !d.Webhook.Delivered || len(e.endpointsOf(id)) != 1 {
		t.Errorf("webhook %+v, %d endpoints: want the ready webhook and the endpoint kept", d.Webhook, len(e.endpointsOf(id)))
	}
}

// A ready report that came before create_endpoint recorded the endpoint is
// kept (the callback stores it in Progress) and honoured by watch once the
// endpoint is known.
func TestInferenceWorkerReadyBeforeTheEndpointWasRecorded(t *testing.T) {
	e := newEnv(t, options{rpOpts: []runpodsim.Option{runpodsim.WithSilentContainer()}})
	id := e.start("stabilityai/sdxl-turbo", createOpts{})
	if _, err := e.store.Update(context.Background(), id, func(d *deployment.Deployment) error {
		d.Progress = deployment.Progress{Phase: deployment.StatusReady, BytesDone: 10, BytesTotal: 10}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	d := e.expectReady(id)
	if !hasLog(d, "had reported it before its endpoint was recorded") {
		t.Errorf("no log line for the early report\n%s", logText(d))
	}
}
