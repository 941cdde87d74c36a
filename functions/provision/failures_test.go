package provision_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

func TestHappyPathWithCallbacks(t *testing.T) {
	e := newEnv(t, options{})
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.expectReady(id)
	if d.ModelID != "openai-community/gpt2" || d.Revision == "" || d.ModelVRAMGB <= 0 || d.GPUAllocated == "" {
		t.Errorf("model %q revision %q vram %d gpu %q", d.ModelID, d.Revision, d.ModelVRAMGB, d.GPUAllocated)
	}
	eps := e.endpointsOf(id)
	if img := eps[0].Image; img != "runpod/worker-v1-vllm:stable" {
		t.Errorf("image %q, want the text-generation image", img)
	}
	if eps[0].Env[workerenv.ModelName] != d.ModelID || eps[0].Env[workerenv.ModelRevision] != d.Revision {
		t.Errorf("endpoint env names %q@%q", eps[0].Env[workerenv.ModelName], eps[0].Env[workerenv.ModelRevision])
	}
}

// Hub failures: the exact message a user reads in d.Error.

func TestHubRepoNotFound(t *testing.T) {
	e := newEnv(t, options{})
	id := e.start("nobody-here/no-such-model", createOpts{})
	e.expectFailed(id, `Hugging Face model "nobody-here/no-such-model" does not exist or is private: if it is private, pass an hf_token that can read it`)
}

func TestHubRepoNotFoundWithToken(t *testing.T) {
	e := newEnv(t, options{})
	e.hub.SetToken("hf_valid_token")
	id := e.start("nobody-here/no-such-model", createOpts{hfToken: "hf_valid_token"})
	e.expectFailed(id, `Hugging Face model "nobody-here/no-such-model" was not found (or it is private and the hf_token cannot read it)`)
}

func TestHubPrivateWithoutToken(t *testing.T) {
	e := newEnv(t, options{})
	e.hub.SetPrivate("openai-community/gpt2", true)
	id := e.start("openai-community/gpt2", createOpts{})
	e.expectFailed(id, `Hugging Face model "openai-community/gpt2" does not exist or is private: if it is private, pass an hf_token that can read it`)
}

func TestHubPrivateWithGrantedToken(t *testing.T) {
	e := newEnv(t, options{})
	e.hub.SetPrivate("openai-community/gpt2", true)
	e.hub.SetToken("hf_reader", "openai-community/gpt2")
	id := e.start("openai-community/gpt2", createOpts{hfToken: "hf_reader"})
	e.expectReady(id)
	if got := e.endpointsOf(id); len(got) == 1 && got[0].Env[workerenv.HFToken] != "hf_reader" {
		t.Errorf("endpoint env HF_TOKEN not passed to the container")
	}
}

func TestHubGatedWithoutToken(t *testing.T) {
	e := newEnv(t, options{})
	id := e.start("meta-llama/Llama-3.1-8B-Instruct", createOpts{})
	e.expectFailed(id, fmt.Sprintf(`Hugging Face model "meta-llama/Llama-3.1-8B-Instruct" is gated: pass an hf_token of an account that has been granted access (request it at %s/meta-llama/Llama-3.1-8B-Instruct)`, e.hub.URL))
}

func TestHubGatedTokenWithoutAccess(t *testing.T) {
	e := newEnv(t, options{})
	e.hub.SetToken("hf_no_grants") // a valid token, granted nothing
	id := e.start("meta-llama/Llama-3.1-8B-Instruct", createOpts{hfToken: "hf_no_grants"})
	e.expectFailed(id, fmt.Sprintf(`Hugging Face model "meta-llama/Llama-3.1-8B-Instruct" is gated and the hf_token's account has not been granted access: request access at %s/meta-llama/Llama-3.1-8B-Instruct, then try again`, e.hub.URL))
}

func TestHubInvalidToken(t *testing.T) {
	e := newEnv(t, options{})
	id := e.start("openai-community/gpt2", createOpts{hfToken: "hf_revoked"})
	e.expectFailed(id, "the Hugging Face Hub rejected the hf_token (invalid, revoked or expired)")
}

func TestHubDisabled(t *testing.T) {
	e := newEnv(t, options{})
	e.hub.SetDisabled("openai-community/gpt2", true)
	id := e.start("openai-community/gpt2", createOpts{})
	e.expectFailed(id, `Hugging Face model "openai-community/gpt2" has been disabled on the Hub and cannot be downloaded`)
}

func TestHubRateLimitedPastRetryBudget(t *testing.T) {
	e := newEnv(t, options{})
	// Exactly as many 429s as the budget allows attempts: one more attempt
	// would succeed, so an off-by-one shows as ready.
	e.hub.RateLimitNext(provision.MaxRetries+1, 0)
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.expectFailed(id, fmt.Sprintf("the Hugging Face Hub is rate limiting requests (anonymous requests have the lowest limits: an hf_token raises them); gave up after %d attempts", provision.MaxRetries+1))
	if n := countLogs(d, "retrying in"); n != provision.MaxRetries {
		t.Errorf("%d retry log lines, want %d", n, provision.MaxRetries)
	}
	if n := e.hub.Requests(); n != provision.MaxRetries+1 {
		t.Errorf("the Hub got %d requests, want %d", n, provision.MaxRetries+1)
	}
}

func TestHubRateLimitedThenRecovers(t *testing.T) {
	e := newEnv(t, options{})
	e.hub.RateLimitNext(provision.MaxRetries, 0)
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.expectReady(id)
	if d.Retries != 0 {
		t.Errorf("retries %d after the status moved on, want 0", d.Retries)
	}
}

func TestHubOutagePastRetryBudget(t *testing.T) {
	e := newEnv(t, options{})
	// The client retries a 5xx once itself, so each attempt takes two.
	e.hub.FailNext(2*(provision.MaxRetries+1), http.StatusServiceUnavailable)
	id := e.start("openai-community/gpt2", createOpts{})
	e.expectFailed(id, fmt.Sprintf(`the Hugging Face Hub is temporarily unavailable (HTTP 503) while checking model "openai-community/gpt2"; gave up after %d attempts`, provision.MaxRetries+1))
}

func TestRequestedTierTooSmall(t *testing.T) {
	e := newEnv(t, options{})
	e.hub.SetToken("hf_llama", "meta-llama/Llama-3.1-70B-Instruct")
	id := e.start("meta-llama/Llama-3.1-70B-Instruct", createOpts{tier: "A40", hfToken: "hf_llama"})
	d := e.settle(id)
	if d.Status != deployment.StatusFailed {
		t.Fatalf("status %s, want failed\n%s", d.Status, logText(d))
	}
	if d.ModelVRAMGB <= 48 {
		t.Fatalf("model_vram_gb %d: a 70B model must need more than an A40's 48 GB", d.ModelVRAMGB)
	}
	want := fmt.Sprintf("meta-llama/Llama-3.1-70B-Instruct: gpu_tier A40 has 48 GB of VRAM; the model needs about %d GB", d.ModelVRAMGB)
	if d.Error != want {
		t.Errorf("error:\n got %q\nwant %q", d.Error, want)
	}
	if c := e.rp.Calls(); c[runpodsim.OpCreateEndpoint]+c[runpodsim.OpListEndpoints] != 0 {
		t.Errorf("RunPod was called for a deployment that failed before create_endpoint: %v", c)
	}
	if !d.Webhook.Delivered || d.Webhook.Event != deployment.EventFailed {
		t.Errorf("webhook %+v", d.Webhook)
	}
}

// RunPod failures.

func TestRunPodBadKey(t *testing.T) {
	e := newEnv(t, options{})
	id := e.start("openai-community/gpt2", createOpts{key: "rpa_unknown_key"})
	d := e.expectFailed(id, "RunPod rejected the API key (401): invalid API key")
	// Nothing can exist on an account the key cannot use: the deployment
	// owes no teardown (one would fail on the same key forever).
	if d.NeedsWork() || hasLog(d, "Could not look for RunPod endpoints") {
		t.Errorf("a deployment refused at its first create still owes work\n%s", logText(d))
	}
}

func TestRunPodInsufficientBalance(t *testing.T) {
	e := newEnv(t, options{})
	e.rp.AddAccount(runpodKey, 0)
	id := e.start("openai-community/gpt2", createOpts{})
	e.expectFailed(id, "the RunPod account balance is insufficient (402): insufficient balance: add funds to your account to create serverless endpoints")
}

func TestRunPodContractViolation(t *testing.T) {
	e := newEnv(t, options{})
	e.rp.FailNextCreate(http.StatusUnprocessableEntity, "workers.max must be at most 100")
	id := e.start("openai-community/gpt2", createOpts{})
	e.expectFailed(id, "RunPod rejected the request as invalid (422): workers.max must be at most 100 (workers.max must be at most 100)")
	if n := e.rp.Calls()[runpodsim.OpCreateEndpoint]; n != 1 {
		t.Errorf("%d creates, want 1 (a 422 is not retried)", n)
	}
}

func TestRunPodRateLimitAndOutageRetried(t *testing.T) {
	e := newEnv(t, options{})
	// Two 429s and two 503s, whatever the calls they hit, then RunPod works.
	e.rp.FailNext(2, http.StatusTooManyRequests, 0)
	e.rp.FailNext(2, http.StatusBadGateway, 0)
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.expectReady(id)
	if n := countLogs(d, "retrying in"); n != 4 {
		t.Errorf("%d retry log lines, want 4\n%s", n, logText(d))
	}
	if n := e.rp.Calls()[runpodsim.OpCreateEndpoint]; n != 1 {
		t.Errorf("%d creates, want 1", n)
	}
}

func TestRunPodCreateFailsTransientlyThenSucceeds(t *testing.T) {
	e := newEnv(t, options{})
	e.rp.FailNextCreate(http.StatusServiceUnavailable, "try later")
	e.rp.FailNextCreate(http.StatusTooManyRequests, "slow down")
	id := e.start("openai-community/gpt2", createOpts{})
	e.expectReady(id)
	if n := e.rp.Calls()[runpodsim.OpCreateEndpoint]; n != 3 {
		t.Errorf("%d creates, want 3", n)
	}
}

func TestStockOutPastCapacityDeadline(t *testing.T) {
	e := newEnv(t, options{steps: func(s *provision.Steps) { s.CapacityDeadline = 30 * time.Millisecond }})
	e.rp.SetStockOut(runpodsim.AllPools)
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.settle(id)
	want := fmt.Sprintf("No GPU capacity in pools %s for 30ms; try another gpu_tier or try again later", strings.Join(d.GPUPools, ", "))
	e.expectFailed(id, want)
	if d.RunPodEndpointID == "" || !d.EndpointDeleted || !hasLog(d, "RunPod endpoint "+d.RunPodEndpointID+" deleted") {
		t.Errorf("endpoint %q deleted=%v\n%s", d.RunPodEndpointID, d.EndpointDeleted, logText(d))
	}
}

func TestCrashLoop(t *testing.T) {
	e := newEnv(t, options{rpOpts: []runpodsim.Option{runpodsim.WithBootDelay(time.Millisecond)}})
	e.rp.SetCrashLoop(true)
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.expectFailed(id, fmt.Sprintf("Inference workers are crash-looping (unhealthy on %d consecutive checks); check that the image can serve openai-community/gpt2", deployment.UnhealthyPolls))
	if !d.EndpointDeleted {
		t.Errorf("endpoint not marked deleted\n%s", logText(d))
	}
}

func TestSilentContainerReadyThroughPolling(t *testing.T) {
	e := newEnv(t, options{rpOpts: []runpodsim.Option{runpodsim.WithSilentContainer()}})
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.expectReady(id)
	if cbs := e.rp.Callbacks(); len(cbs) != 0 {
		t.Errorf("a silent container made %d callbacks", len(cbs))
	}
	if !hasLog(d, "Model loaded: worker") {
		t.Errorf("ready without the polling log line\n%s", logText(d))
	}
}

func TestReadyDeadline(t *testing.T) {
	e := newEnv(t, options{
		rpOpts: []runpodsim.Option{runpodsim.WithSilentContainer(), runpodsim.WithBootDelay(time.Hour)},
		steps:  func(s *provision.Steps) { s.ReadyDeadline = 40 * time.Millisecond },
	})
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.expectFailed(id, "Model not loaded within 40ms of the endpoint's creation")
	if !d.EndpointDeleted {
		t.Errorf("endpoint not marked deleted\n%s", logText(d))
	}
}

func TestRenamedRepoStoredAsCanonical(t *testing.T) {
	e := newEnv(t, options{})
	id := e.start("bert-base-uncased", createOpts{})
	d := e.expectReady(id)
	if d.ModelID != "google-bert/bert-base-uncased" || d.RequestedModel != "bert-base-uncased" {
		t.Errorf("model_id %q requested %q", d.ModelID, d.RequestedModel)
	}
	if got := e.endpointsOf(id)[0].Env[workerenv.ModelName]; got != "google-bert/bert-base-uncased" {
		t.Errorf("container told to load %q", got)
	}
	if !hasLog(d, "Hugging Face resolved bert-base-uncased to google-bert/bert-base-uncased") {
		t.Errorf("no log of the rename\n%s", logText(d))
	}
}

func TestDiffusersDuplicateWeightsSaneVRAM(t *testing.T) {
	e := newEnv(t, options{})
	const model = "stabilityai/stable-diffusion-xl-base-1.0"
	m, ok := e.hub.Model(model)
	if !ok {
		t.Fatal("fixture missing")
	}
	var all int64
	for _, f := range m.Files {
		all += f.Size
	}
	id := e.start(model, createOpts{})
	d := e.expectReady(id)
	allGB := int(all >> 30)
	// SDXL base is about 3.5 B parameters: 7 GB in fp16, 14 GB in fp32;
	// with overhead a sane estimate lies between, far below the sum of
	// every copy of the weights the repo holds.
	if d.ModelVRAMGB < 7 || d.ModelVRAMGB > 20 || d.ModelVRAMGB*2 > allGB {
		t.Errorf("model_vram_gb %d for SDXL base (repo files total %d GB)", d.ModelVRAMGB, allGB)
	}
	if ep := e.endpointsOf(id)[0]; d.Family != "diffusion" || ep.Image != "visgate/inference:test" || ep.Env["VISGATE_TASK"] != "text-to-image" {
		t.Errorf("family %q image %q task %q", d.Family, ep.Image, ep.Env["VISGATE_TASK"])
	}
}

func countLogs(d *deployment.Deployment, substr string) int {
	n := 0
	for _, l := range d.Logs {
		if strings.Contains(l.Message, substr) {
			n++
		}
	}
	return n
}
