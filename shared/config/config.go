// Package config reads the service's configuration from the environment.
// Every variable the service reads is named here (Vars), so the terraform
// consistency test can check that deployment sets exactly these. Load reads
// only names in Vars (another is a programming error: it panics, so a typo
// cannot read ""), and a test checks that it reads every one of them.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
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

// Config is the whole configuration.
type Config struct {
	Backend Backend
	Host    string
	Port    int
	DataDir string

	APIKeys      string // plain keys, comma-separated (local runs)
	APIKeyHashes string // owner:sha256hex, comma-separated
	// DefaultKeyUsed is set when neither APIKeys nor APIKeyHashes was given
	// and the test key (DefaultAPIKey) is accepted.
	DefaultKeyUsed bool

	RateLimitPerMinute int
	// AuthFailuresPerMinute is how many failed authentications of one kind
	// (API key, callback secret) one client address may make a minute
	// before its further failures get 429s.
	AuthFailuresPerMinute int
	// ForwardedHops says where the client's address is in X-Forwarded-For
	// (BACKEND=gcp; see httpx.ClientAddr). The embedded runtime uses the
	// connection's address.
	ForwardedHops int
	// BehindGateway: the function is invoked by API Gateway, which replaces
	// the caller's Authorization header with its own Google ID token (that
	// Cloud Run verified before the request arrived) and moves the caller's
	// header to X-Forwarded-Authorization: the API key is read from there.
	BehindGateway bool

	Simulate bool
	// SimulateBootDelay is how long a simulated RunPod worker takes to
	// load its model (make bench sets 0: simulators that answer at once).
	SimulateBootDelay   time.Duration
	WebhookAllowPrivate bool
	// WebhookPrivateOnly: webhooks go only to loopback and private
	// addresses (WEBHOOK_ALLOW_PUBLIC=0; SIMULATE=1's default, so that an
	// offline run sends nothing off the machine). It implies
	// WebhookAllowPrivate.
	WebhookPrivateOnly bool
	WebhookSigningKey  string // master key the per-owner signing secrets derive from

	RunPodAPIURL string
	HFAPIURL     string

	// PublicBaseURL is where clients and inference containers reach the
	// API (the internal callback is PublicBaseURL + /internal/...).
	PublicBaseURL string
	// PublicBaseURLDefaulted is set when PUBLIC_BASE_URL was not given.
	PublicBaseURLDefaulted bool

	Images Images

	// Google Cloud.
	ProjectID           string
	Location            string
	TasksQueue          string // queue id
	ProvisionTaskURL    string
	TasksServiceAccount string
	KMSKeyURI           string
	// The local emulators (make dev, tests): the Firestore and Cloud Tasks
	// clients then talk to them without credentials, and BACKEND=gcp may
	// use a local keyset and a generated webhook signing key.
	FirestoreEmulatorHost  string
	CloudTasksEmulatorHost string

	// Timing of the provisioning chain.
	PollInterval     time.Duration
	CapacityDeadline time.Duration // workers throttled this long: no capacity
	ReadyDeadline    time.Duration // endpoint created this long ago and not ready: fail
	HubWait          time.Duration // Hugging Face Hub unreachable or failing this long: fail
	LateCreateWindow time.Duration // a create without an answer may still land this long

	// Limits and spend.
	DefaultTTL    time.Duration // time limit of a deployment whose owner set none (0: none)
	SpendInterval time.Duration // how often the spend of every live endpoint is read

	LogLevel string
}

// Images are the inference images: RunPod's vLLM worker for text
// generation, the orchestrator's own worker (inference/) for every other
// family it serves.
type Images struct {
	TextGeneration string
	Inference      string
}

// DefaultVLLMImage is RunPod's vLLM worker at a current release: tags are
// vX.Y.Z since v2.8.0, and v2.25.2 (2026-08-20, vLLM 0.27.1) is the newest
// release on the runpod-workers/worker-vllm releases page and Docker Hub's
// runpod/worker-v1-vllm tags as of 2026-12-01.
const DefaultVLLMImage = "runpod/worker-v1-vllm:v2.25.2"

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

// Var describes one environment variable.
type Var struct {
	Name, Default, Help string
	// Cloud marks variables a Cloud Run deployment sets.
	Cloud bool
}

// Vars lists every variable Load reads.
var Vars = []Var{
	{"BACKEND", "embedded", "embedded (bbolt + in-process queue) or gcp (Firestore + Cloud Tasks)", true},
	{"HOST", "127.0.0.1", "address the local server listens on", false},
	{"PORT", "8080", "port the server listens on", false},
	{"DATA_DIR", ".data", "embedded runtime: where the bbolt file and the local keyset live", false},
	{"API_KEYS", "", "plain API keys, comma-separated, one owner each (local runs)", false},
	{"API_KEY_HASHES", "", "owner:sha256hex entries, comma-separated (scripts/mintkey prints them)", true},
	{"RATE_LIMIT_PER_MINUTE", "100", "requests a minute per API key", true},
	{"AUTH_FAILURES_PER_MINUTE", "20", "failed authentications a minute per client address (API keys and callback secrets apart) before further failures get 429; valid credentials never do", false},
	{"FORWARDED_HOPS", "0", "BACKEND=gcp: entries Google's proxies append to X-Forwarded-For after the client's address (0 direct to Cloud Run, 1 behind the load balancer or API Gateway)", true},
	{"BEHIND_GATEWAY", "0", "1: the function is invoked by API Gateway with its own ID token in Authorization; the caller's API key is read from X-Forwarded-Authorization (where the gateway moves the caller's Authorization header). 0: from Authorization", true},
	{"SIMULATE", "", "1: make run and make dev start the built-in RunPod and Hugging Face simulators (no network); webhooks then go only to loopback and private addresses (see WEBHOOK_ALLOW_PUBLIC); a deployed function refuses it", false},
	{"SIMULATE_BOOT_DELAY", "1s", "with SIMULATE=1: how long a simulated worker takes to load its model (0s: at once)", false},
	{"WEBHOOK_ALLOW_PRIVATE", "", "1: allow webhooks to loopback and private addresses, and plain http (local runs only)", false},
	{"WEBHOOK_ALLOW_PUBLIC", "", "0: webhooks go only to loopback and private addresses (named by address or as localhost, never resolved); 1: public ones too. Unset: 0 with SIMULATE=1, else 1", false},
	{"WEBHOOK_SIGNING_KEY", "", "master key for the per-owner webhook signing secrets (embedded: generated under DATA_DIR when empty)", true},
	{"RUNPOD_API_URL", "https://api.runpod.io/v2", "RunPod REST v2 base URL", false},
	{"HF_API_URL", "https://huggingface.co", "Hugging Face Hub base URL", false},
	{"PUBLIC_BASE_URL", "", "base URL that clients and inference containers use (default http://HOST:PORT)", true},
	{"IMAGE_TEXT_GENERATION", DefaultVLLMImage, "inference image for text-generation models (RunPod's vLLM worker)", false},
	{"INFERENCE_IMAGE", "", "the orchestrator's inference worker image (inference/): text-to-image, speech recognition, embeddings, classification", true},
	{"GCP_PROJECT_ID", "", "Google Cloud project (GOOGLE_CLOUD_PROJECT is accepted too)", true},
	{"GCP_LOCATION", "europe-west1", "region of the Cloud Tasks queue", true},
	{"TASKS_QUEUE", "provision", "Cloud Tasks queue id", true},
	{"PROVISION_TASK_URL", "", "URL of the ProvisionTask function (Cloud Tasks target)", true},
	{"TASKS_SERVICE_ACCOUNT", "", "service account whose OIDC token Cloud Tasks attaches", true},
	{"KMS_KEY_URI", "", "gcp-kms://... key for envelope encryption of user secrets", true},
	{"FIRESTORE_EMULATOR_HOST", "", "host:port of the Firestore emulator (make dev, tests; never in the cloud)", false},
	{"CLOUD_TASKS_EMULATOR_HOST", "", "host:port of the Cloud Tasks emulator (make dev, tests; never in the cloud)", false},
	{"POLL_INTERVAL", "10s", "how often the watch step polls RunPod workers", false},
	{"CAPACITY_DEADLINE", "15m", "fail when no worker got a GPU for this long", false},
	{"READY_DEADLINE", "45m", "fail when the model is not loaded this long after the endpoint exists", false},
	{"HUB_WAIT", "2m", "fail when the Hugging Face Hub stays unreachable (or keeps failing) this long while validating", false},
	{"LATE_CREATE_WINDOW", "2m", "how long after a create got no answer RunPod may still make the endpoint: no second create, teardowns look again", false},
	{"DEFAULT_TTL", "0s", "time limit of every deployment whose owner sets none (e.g. 72h; 0s: none): a forgotten endpoint is deleted then", true},
	{"SPEND_REFRESH_INTERVAL", "5m", "how often the spend of every live endpoint is read from RunPod's billing API (at least 1m outside tests)", false},
	{"LOG_LEVEL", "info", "debug, info, warn or error", false},
}

// Load reads the configuration from getenv (os.Getenv when nil).
func Load(getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := func(name string) string {
		i := slices.IndexFunc(Vars, func(v Var) bool { return v.Name == name })
		if i < 0 {
			panic("config: Load reads " + name + ", which Vars does not list")
		}
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return Vars[i].Default
	}
	var errs []error
	c := &Config{
		Backend:             Backend(get("BACKEND")),
		Host:                get("HOST"),
		DataDir:             get("DATA_DIR"),
		APIKeys:             get("API_KEYS"),
		APIKeyHashes:        get("API_KEY_HASHES"),
		Simulate:            truthy(get("SIMULATE")),
		WebhookAllowPrivate: truthy(get("WEBHOOK_ALLOW_PRIVATE")),
		WebhookSigningKey:   get("WEBHOOK_SIGNING_KEY"),
		RunPodAPIURL:        strings.TrimRight(get("RUNPOD_API_URL"), "/"),
		HFAPIURL:            strings.TrimRight(get("HF_API_URL"), "/"),
		PublicBaseURL:       strings.TrimRight(get("PUBLIC_BASE_URL"), "/"),
		Images: Images{
			TextGeneration: get("IMAGE_TEXT_GENERATION"),
			Inference:      get("INFERENCE_IMAGE"),
		},
		ProjectID:           get("GCP_PROJECT_ID"),
		Location:            get("GCP_LOCATION"),
		TasksQueue:          get("TASKS_QUEUE"),
		ProvisionTaskURL:    get("PROVISION_TASK_URL"),
		TasksServiceAccount: get("TASKS_SERVICE_ACCOUNT"),
		KMSKeyURI:           get("KMS_KEY_URI"),
		LogLevel:            get("LOG_LEVEL"),

		FirestoreEmulatorHost:  get("FIRESTORE_EMULATOR_HOST"),
		CloudTasksEmulatorHost: get("CLOUD_TASKS_EMULATOR_HOST"),
	}
	if c.ProjectID == "" {
		// Set by Google's runtimes; an alias, not a variable of ours.
		c.ProjectID = strings.TrimSpace(getenv("GOOGLE_CLOUD_PROJECT"))
	}
	// Offline (SIMULATE=1) a webhook goes to this machine or a private
	// network only, unless the user opts in: the simulators promise no
	// network, and a made-up URL must not reach (or even resolve) a
	// stranger's host.
	switch v := strings.ToLower(get("WEBHOOK_ALLOW_PUBLIC")); v {
	case "":
		c.WebhookPrivateOnly = c.Simulate
	case "1", "true", "yes", "on":
	case "0", "false", "no", "off":
		c.WebhookPrivateOnly = true
	default:
		errs = append(errs, fmt.Errorf("WEBHOOK_ALLOW_PUBLIC=%q: want 1 or 0", v))
	}
	if c.Simulate || c.WebhookPrivateOnly {
		c.WebhookAllowPrivate = true
	}
	switch c.Backend {
	case BackendEmbedded, BackendGCP:
	default:
		errs = append(errs, fmt.Errorf("BACKEND=%q: want embedded or gcp", c.Backend))
	}
	var err error
	if c.Port, err = strconv.Atoi(get("PORT")); err != nil || c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("PORT=%q: want a port number", get("PORT")))
	}
	if c.RateLimitPerMinute, err = strconv.Atoi(get("RATE_LIMIT_PER_MINUTE")); err != nil || c.RateLimitPerMinute < 1 {
		errs = append(errs, fmt.Errorf("RATE_LIMIT_PER_MINUTE=%q: want a positive integer", get("RATE_LIMIT_PER_MINUTE")))
	}
	if c.AuthFailuresPerMinute, err = strconv.Atoi(get("AUTH_FAILURES_PER_MINUTE")); err != nil || c.AuthFailuresPerMinute < 1 {
		errs = append(errs, fmt.Errorf("AUTH_FAILURES_PER_MINUTE=%q: want a positive integer", get("AUTH_FAILURES_PER_MINUTE")))
	}
	if c.ForwardedHops, err = strconv.Atoi(get("FORWARDED_HOPS")); err != nil || c.ForwardedHops < 0 || c.ForwardedHops > 10 {
		errs = append(errs, fmt.Errorf("FORWARDED_HOPS=%q: want an integer from 0 to 10", get("FORWARDED_HOPS")))
	}
	switch v := get("BEHIND_GATEWAY"); v {
	case "0":
	case "1":
		c.BehindGateway = true
	default:
		errs = append(errs, fmt.Errorf("BEHIND_GATEWAY=%q: want 0 or 1", v))
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"POLL_INTERVAL", &c.PollInterval}, {"CAPACITY_DEADLINE", &c.CapacityDeadline}, {"READY_DEADLINE", &c.ReadyDeadline}, {"HUB_WAIT", &c.HubWait}, {"LATE_CREATE_WINDOW", &c.LateCreateWindow}} {
		v, err := time.ParseDuration(get(d.name))
		if err != nil || v <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive duration such as 10s", d.name, get(d.name)))
		}
		*d.dst = v
	}
	if c.DefaultTTL, err = time.ParseDuration(get("DEFAULT_TTL")); err != nil || c.DefaultTTL < 0 || (c.DefaultTTL > 0 && c.DefaultTTL < time.Minute) {
		errs = append(errs, fmt.Errorf("DEFAULT_TTL=%q: want 0s (no default) or a duration of at least 1m such as 72h", get("DEFAULT_TTL")))
	}
	if c.SpendInterval, err = time.ParseDuration(get("SPEND_REFRESH_INTERVAL")); err != nil || c.SpendInterval <= 0 {
		errs = append(errs, fmt.Errorf("SPEND_REFRESH_INTERVAL=%q: want a positive duration such as 5m", get("SPEND_REFRESH_INTERVAL")))
	}
	if c.SimulateBootDelay, err = time.ParseDuration(get("SIMULATE_BOOT_DELAY")); err != nil || c.SimulateBootDelay < 0 {
		errs = append(errs, fmt.Errorf("SIMULATE_BOOT_DELAY=%q: want a duration such as 1s, or 0s", get("SIMULATE_BOOT_DELAY")))
	}
	for _, u := range []struct{ name, v string }{{"RUNPOD_API_URL", c.RunPodAPIURL}, {"HF_API_URL", c.HFAPIURL}, {"PUBLIC_BASE_URL", c.PublicBaseURL}, {"PROVISION_TASK_URL", c.ProvisionTaskURL}} {
		if u.v == "" {
			continue
		}
		if p, err := url.Parse(u.v); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q: want an absolute http(s) URL", u.name, u.v))
		}
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
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel))
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
