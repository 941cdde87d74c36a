// Package config reads the service's configuration from the environment,
// once. Every variable is declared once, in the tags of its Config field
// (name, default, documentation, checks); Vars lists them for the terraform
// consistency test (deployment sets exactly the Cloud ones), the local
// commands and the documentation's table (Table, which a test keeps equal
// to the docs).
package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Backend selects the runtime.
type Backend string

// Backends.
const (
	// BackendEmbedded: bbolt file, in-process queue and change feed.
	BackendEmbedded Backend = "embedded"
	// BackendGCP: Firestore, Cloud Tasks, Eventarc (or their local emulators).
	BackendGCP Backend = "gcp"
)

// Config is the whole configuration. Every field read from the
// environment declares its variable in its tags, once: env (the name),
// default, help (the documentation's table), and how the value is checked:
// min and max (numbers and durations), oneof (the values accepted), url
// (an absolute http(s) URL when set), want (what the error says is
// wanted), trimslash (a trailing "/" dropped), lower (read in lower
// case); cloud marks the variables a
// Cloud Run deployment sets, and defaultdoc what the table says of an
// empty default. Load reads them (Vars lists them); the other fields are
// derived.
type Config struct {
	Backend Backend `env:"BACKEND" default:"embedded" cloud:"true" oneof:"embedded gcp" want:"embedded or gcp" help:"embedded (bbolt + in-process queue) or gcp (Firestore + Cloud Tasks)"`
	Host    string  `env:"HOST" default:"127.0.0.1" help:"address the local server listens on"`
	Port    int     `env:"PORT" default:"8080" min:"0" max:"65535" want:"a port number" help:"port the server listens on"`
	DataDir string  `env:"DATA_DIR" default:".data" help:"embedded runtime: where the bbolt file and the local keyset live"`

	APIKeys      string `env:"API_KEYS" help:"plain API keys, comma-separated, one owner each (local runs)"`
	APIKeyHashes string `env:"API_KEY_HASHES" cloud:"true" help:"owner:sha256hex entries, comma-separated (scripts/mintkey prints them)"`
	// DefaultKeyUsed is set when neither APIKeys nor APIKeyHashes was given
	// and the test key (DefaultAPIKey) is accepted.
	DefaultKeyUsed bool

	RateLimitPerMinute int `env:"RATE_LIMIT_PER_MINUTE" default:"100" cloud:"true" min:"1" want:"a positive integer" help:"requests a minute per API key"`
	// AuthFailuresPerMinute is how many failed authentications of one kind
	// (API key, callback secret) one client address may make a minute
	// before its further failures get 429s.
	AuthFailuresPerMinute int `env:"AUTH_FAILURES_PER_MINUTE" default:"20" min:"1" want:"a positive integer" help:"failed authentications a minute per client address, API keys and callback secrets counted apart; further failures then get 429 with Retry-After (valid credentials never do)"`
	// ForwardedHops says where the client's address is in X-Forwarded-For
	// (BACKEND=gcp; see httpx.ClientAddr). The embedded runtime uses the
	// connection's address.
	ForwardedHops int `env:"FORWARDED_HOPS" default:"0" cloud:"true" min:"0" max:"10" want:"an integer from 0 to 10" help:"BACKEND=gcp: entries Google's proxies append to X-Forwarded-For after the client's address (0 direct to Cloud Run, 1 behind the load balancer or API Gateway; Terraform sets it)"`
	// BehindGateway: the function is invoked by API Gateway, which replaces
	// the caller's Authorization header with its own Google ID token (that
	// Cloud Run verified before the request arrived) and moves the caller's
	// header to X-Forwarded-Authorization: the API key is read from there.
	BehindGateway bool `env:"BEHIND_GATEWAY" default:"0" cloud:"true" oneof:"0 1" want:"0 or 1" help:"1: the function is invoked by API Gateway, which puts its own ID token in Authorization; the caller's API key is read from X-Forwarded-Authorization instead (Terraform sets it when the gateway is the base URL)"`

	Simulate bool `env:"SIMULATE" help:"1: make run and make dev start the built-in RunPod and Hugging Face simulators (no network); webhooks then go only to loopback and private addresses (see WEBHOOK_ALLOW_PUBLIC); a deployed function refuses it"`
	// SimulateBootDelay is how long a simulated RunPod worker takes to
	// load its model (make bench sets 0: simulators that answer at once).
	SimulateBootDelay   time.Duration `env:"SIMULATE_BOOT_DELAY" default:"1s" min:"0s" want:"a duration such as 1s, or 0s" help:"with SIMULATE=1: how long a simulated worker takes to load its model (0s: at once, as make bench uses)"`
	WebhookAllowPrivate bool          `env:"WEBHOOK_ALLOW_PRIVATE" help:"1: allow webhooks to loopback and private addresses, and plain http (local runs only)"`
	// WebhookAllowPublic is WEBHOOK_ALLOW_PUBLIC as given (lower case);
	// WebhookPrivateOnly is what it means.
	WebhookAllowPublic string `env:"WEBHOOK_ALLOW_PUBLIC" lower:"true" oneof:"1 true yes on 0 false no off" want:"1 or 0" defaultdoc:"(unset: 0 with SIMULATE=1, else 1)" help:"0: webhooks go only to loopback and private addresses (given as addresses, or localhost; no other name is resolved), plain http too; 1: public hosts too (with SIMULATE=1, the opt-in)"`
	// WebhookPrivateOnly: webhooks go only to loopback and private
	// addresses (WEBHOOK_ALLOW_PUBLIC=0; SIMULATE=1's default, so that an
	// offline run sends nothing off the machine). It implies
	// WebhookAllowPrivate.
	WebhookPrivateOnly bool
	WebhookSigningKey  string `env:"WEBHOOK_SIGNING_KEY" cloud:"true" help:"master key for the per-owner webhook signing secrets (embedded: generated under DATA_DIR when empty)"`

	RunPodAPIURL string `env:"RUNPOD_API_URL" default:"https://api.runpod.io/v2" url:"true" trimslash:"true" help:"RunPod REST v2 base URL"`
	HFAPIURL     string `env:"HF_API_URL" default:"https://huggingface.co" url:"true" trimslash:"true" help:"Hugging Face Hub base URL"`

	// PublicBaseURL is where clients and inference containers reach the
	// API (the internal callback is PublicBaseURL + /internal/...).
	PublicBaseURL string `env:"PUBLIC_BASE_URL" cloud:"true" url:"true" trimslash:"true" help:"base URL that clients and inference containers use (default http://HOST:PORT)"`
	// PublicBaseURLDefaulted is set when PUBLIC_BASE_URL was not given.
	PublicBaseURLDefaulted bool

	Images Images

	// Google Cloud.
	ProjectID           string `env:"GCP_PROJECT_ID" cloud:"true" help:"Google Cloud project (GOOGLE_CLOUD_PROJECT is accepted too)"`
	Location            string `env:"GCP_LOCATION" default:"europe-west1" cloud:"true" help:"region of the Cloud Tasks queue"`
	TasksQueue          string `env:"TASKS_QUEUE" default:"provision" cloud:"true" help:"Cloud Tasks queue id"`
	ProvisionTaskURL    string `env:"PROVISION_TASK_URL" cloud:"true" url:"true" help:"URL of the ProvisionTask function (Cloud Tasks target)"`
	TasksServiceAccount string `env:"TASKS_SERVICE_ACCOUNT" cloud:"true" help:"service account whose OIDC token Cloud Tasks attaches"`
	KMSKeyURI           string `env:"KMS_KEY_URI" cloud:"true" help:"gcp-kms://... key for envelope encryption of user secrets"`
	// The local emulators (make dev, tests): the Firestore and Cloud Tasks
	// clients then talk to them without credentials, and BACKEND=gcp may
	// use a local keyset and a generated webhook signing key.
	FirestoreEmulatorHost  string `env:"FIRESTORE_EMULATOR_HOST" help:"host:port of the Firestore emulator (make dev, tests; never in the cloud): no credentials, and BACKEND=gcp may then use a local keyset"`
	CloudTasksEmulatorHost string `env:"CLOUD_TASKS_EMULATOR_HOST" help:"host:port of the Cloud Tasks emulator (make dev, tests; never in the cloud)"`

	// Timing of the provisioning chain.
	PollInterval     time.Duration `env:"POLL_INTERVAL" default:"10s" min:"1ns" want:"a positive duration such as 10s" help:"how often the watch step polls RunPod workers"`
	CapacityDeadline time.Duration `env:"CAPACITY_DEADLINE" default:"15m" min:"1ns" want:"a positive duration such as 10s" help:"fail when no worker got a GPU for this long"`
	ReadyDeadline    time.Duration `env:"READY_DEADLINE" default:"45m" min:"1ns" want:"a positive duration such as 10s" help:"fail when the model is not loaded this long after the endpoint exists"`
	HubWait          time.Duration `env:"HUB_WAIT" default:"2m" min:"1ns" want:"a positive duration such as 10s" help:"fail when the Hugging Face Hub stays unreachable (or keeps failing) this long while validating; each retry is logged at WARN with its cause"`
	LateCreateWindow time.Duration `env:"LATE_CREATE_WINDOW" default:"2m" min:"1ns" want:"a positive duration such as 10s" help:"how long after a create got no answer RunPod may still make the endpoint: no second create, teardowns look again"`

	// Limits and spend.
	DefaultTTL    time.Duration `env:"DEFAULT_TTL" default:"0s" cloud:"true" min:"0s" want:"0s (no default) or a duration of at least 1m such as 72h" help:"time limit of every deployment whose owner sets none (e.g. 72h; 0s: none): a forgotten endpoint is deleted then (see Costs and limits)"`
	SpendInterval time.Duration `env:"SPEND_REFRESH_INTERVAL" default:"5m" min:"1m" want:"a duration of at least 1m such as 5m" help:"how often the spend of every live endpoint is read from RunPod's billing API with its owner's key (one call per endpoint each time, give or take a tenth; at least 1m: each read spends the owner's RunPod rate limit, and RunPod's billing API reports in buckets of an hour at the finest)"`

	LogLevel string `env:"LOG_LEVEL" default:"info" oneof:"debug info warn error" want:"debug, info, warn or error" help:"debug, info, warn or error"`

	Local Local
}

// Images are the inference images: RunPod's vLLM worker for text
// generation, the orchestrator's own worker (inference/) for every other
// family it serves.
//
// IMAGE_TEXT_GENERATION's default is RunPod's vLLM worker at a current
// release: tags are vX.Y.Z since v2.8.0, and v2.25.2 (2026-08-20, vLLM
// 0.27.1) is the newest release on the runpod-workers/worker-vllm releases
// page and Docker Hub's runpod/worker-v1-vllm tags as of 2026-12-01.
type Images struct {
	TextGeneration string `env:"IMAGE_TEXT_GENERATION" default:"runpod/worker-v1-vllm:v2.25.2" help:"inference image for text-generation models (RunPod's vLLM worker)"`
	Inference      string `env:"INFERENCE_IMAGE" cloud:"true" help:"the orchestrator's inference worker image (inference/): text-to-image, speech recognition, embeddings, classification; without it those models fail in validate. Terraform sets the image it builds; SIMULATE=1 defaults it to visgate/inference-worker:local"`
}

// Local is what only the local commands read, with SIMULATE=1 (make run,
// make dev; functions/localsim): the inference worker's local environment,
// which `make inference-env` and `make inference-image` print. The
// deployed functions never use it.
type Local struct {
	TinyModels    string `env:"VISGATE_TINY_MODELS" help:"with SIMULATE=1: a folder of Hub repositories (owner/name/) the Hub simulator serves beside its own, such as the worker's tiny real models"`
	InferenceVenv string `env:"VISGATE_INFERENCE_VENV" help:"with SIMULATE=1: the inference worker's Python environment; the RunPod simulator then runs real workers (local processes) for the models VISGATE_TINY_MODELS holds"`
	BuiltImage    string `env:"VISGATE_INFERENCE_IMAGE" help:"with SIMULATE=1: the worker's built image (make inference-image); the real workers then run in containers of it (buildah, as root)"`
	RunPodVolume  string `env:"VISGATE_RUNPOD_VOLUME" help:"with VISGATE_INFERENCE_IMAGE: a host folder mounted at /runpod-volume in the worker containers, as a RunPod network volume is"`
}

// DefaultVLLMImage is IMAGE_TEXT_GENERATION's default (see Images).
var DefaultVLLMImage = lookupVar("IMAGE_TEXT_GENERATION").Default

// DefaultVLLMCuda is the CUDA version DefaultVLLMImage needs on the host:
// the release's RunPod hub config sets allowedCudaVersions to 13.0.
const DefaultVLLMCuda = "13.0"

// InferenceMinCuda is the lowest CUDA version a host needs for the
// inference worker's image (inference/): its torch comes from PyPI with the
// CUDA 13 libraries of inference/requirements.lock (nvidia-cuda-runtime
// 13.2), which run on any CUDA 13 driver (r580 or newer) by CUDA's
// minor-version compatibility, and not on a CUDA 12 one. Endpoints of that
// image are created with it as gpu.minCudaVersion; a test ties it to the
// lock.
const InferenceMinCuda = "13.0"

// DefaultAPIKey is the documentation's test key, accepted when no key is configured.
const DefaultAPIKey = "test-api-key-12345"

// Load reads the configuration from getenv (os.Getenv when nil): every
// variable of Vars, each parsed and checked as its field's tags say, then
// the rules between variables.
func Load(getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := &Config{}
	var errs []error
	raw := make(map[string]string, len(Vars))
	for _, v := range Vars {
		s := strings.TrimSpace(getenv(v.Name))
		if s == "" {
			s = v.Default
		}
		raw[v.Name] = s
		if err := v.set(c, s); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ProjectID == "" {
		// Set by Google's runtimes; an alias, not a variable of ours.
		c.ProjectID = strings.TrimSpace(getenv("GOOGLE_CLOUD_PROJECT"))
	}
	// Offline (SIMULATE=1) a webhook goes to this machine or a private
	// network only, unless the user opts in: the simulators promise no
	// network, and a made-up URL must not reach (or even resolve) a
	// stranger's host.
	switch c.WebhookAllowPublic {
	case "":
		c.WebhookPrivateOnly = c.Simulate
	case "0", "false", "no", "off":
		c.WebhookPrivateOnly = true
	}
	if c.Simulate || c.WebhookPrivateOnly {
		c.WebhookAllowPrivate = true
	}
	if c.DefaultTTL > 0 && c.DefaultTTL < time.Minute {
		v := lookupVar("DEFAULT_TTL")
		errs = append(errs, fmt.Errorf("%s=%q: want %s", v.Name, raw[v.Name], v.want))
	}
	if c.PublicBaseURL == "" {
		c.PublicBaseURL = "http://" + hostPort(c.Host, c.Port)
		c.PublicBaseURLDefaulted = true
	}
	if c.APIKeys == "" && c.APIKeyHashes == "" {
		c.APIKeys = DefaultAPIKey
		c.DefaultKeyUsed = true
	}
	if c.Backend == BackendGCP {
		if c.ProjectID == "" {
			errs = append(errs, errors.New("BACKEND=gcp needs GCP_PROJECT_ID (or GOOGLE_CLOUD_PROJECT)"))
		}
		if c.ProvisionTaskURL == "" {
			errs = append(errs, errors.New("BACKEND=gcp needs PROVISION_TASK_URL"))
		}
		// The test key is for local runs: a deployed service never
		// accepts it. Against the emulators (make dev) it still is.
		if c.DefaultKeyUsed && c.FirestoreEmulatorHost == "" {
			errs = append(errs, errors.New("BACKEND=gcp needs API_KEY_HASHES (or API_KEYS): the test key "+DefaultAPIKey+" is accepted only locally"))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return c, nil
}

// Addr is HOST:PORT.
func (c *Config) Addr() string { return hostPort(c.Host, c.Port) }

func hostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

func truthy(s string) bool {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}
