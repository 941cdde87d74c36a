package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend != BackendEmbedded || c.Addr() != "127.0.0.1:8080" || c.DataDir != ".data" || c.RateLimitPerMinute != 100 {
		t.Errorf("defaults: %+v", c)
	}
	if !c.DefaultKeyUsed || c.APIKeys != DefaultAPIKey {
		t.Errorf("without keys the test key must be accepted, flagged: %+v", c)
	}
	if c.PublicBaseURL != "http://127.0.0.1:8080" || !c.PublicBaseURLDefaulted {
		t.Errorf("PublicBaseURL = %q", c.PublicBaseURL)
	}
	if c.PollInterval != 10*time.Second {
		t.Errorf("PollInterval = %s", c.PollInterval)
	}
	if c.SimulateBootDelay != time.Second {
		t.Errorf("SimulateBootDelay = %s", c.SimulateBootDelay)
	}
}

func TestBehindGateway(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  bool
	}{{"", false}, {"0", false}, {"1", true}} {
		c, err := Load(env(map[string]string{"BEHIND_GATEWAY": tc.value}))
		if err != nil {
			t.Fatalf("BEHIND_GATEWAY=%q: %v", tc.value, err)
		}
		if c.BehindGateway != tc.want {
			t.Errorf("BEHIND_GATEWAY=%q: BehindGateway = %v, want %v", tc.value, c.BehindGateway, tc.want)
		}
	}
}

func TestSimulateBootDelayTakesZero(t *testing.T) {
	c, err := Load(env(map[string]string{"SIMULATE": "1", "SIMULATE_BOOT_DELAY": "0s"}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Simulate || c.SimulateBootDelay != 0 {
		t.Errorf("Simulate %v, SimulateBootDelay %s", c.Simulate, c.SimulateBootDelay)
	}
}

const testHashes = "alice:3f2a8f0c1b9e4d7a6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d"

// TestCloudRefusesTheTestKey: a deployed service never accepts the README's
// test key; only a run against the emulators (make dev) falls back to it.
func TestCloudRefusesTheTestKey(t *testing.T) {
	base := map[string]string{"BACKEND": "gcp", "GCP_PROJECT_ID": "p", "PROVISION_TASK_URL": "https://p.example"}
	_, err := Load(env(base))
	if err == nil || !strings.Contains(err.Error(), "API_KEY_HASHES") || !strings.Contains(err.Error(), DefaultAPIKey) ||
		strings.Contains(err.Error(), "seed") {
		t.Fatalf("BACKEND=gcp without keys: err = %v, want a configuration error naming API_KEY_HASHES and the test key", err)
	}
	withKeys := map[string]string{"API_KEY_HASHES": testHashes}
	for k, v := range base {
		withKeys[k] = v
	}
	c, err := Load(env(withKeys))
	if err != nil || c.DefaultKeyUsed || strings.Contains(c.APIKeys, DefaultAPIKey) {
		t.Fatalf("BACKEND=gcp with API_KEY_HASHES: %v, %+v", err, c)
	}
	emulated := map[string]string{"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8200"}
	for k, v := range base {
		emulated[k] = v
	}
	if c, err := Load(env(emulated)); err != nil || !c.DefaultKeyUsed {
		t.Fatalf("against the emulators the test key stays: %v", err)
	}
}

func TestGoogleCloudProjectAccepted(t *testing.T) {
	c, err := Load(env(map[string]string{"BACKEND": "gcp", "GOOGLE_CLOUD_PROJECT": "visgate", "PROVISION_TASK_URL": "https://p.example", "API_KEY_HASHES": testHashes}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ProjectID != "visgate" {
		t.Errorf("ProjectID = %q", c.ProjectID)
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PORT": "eighty"}, "PORT"},
		{map[string]string{"BACKEND": "aws"}, "BACKEND"},
		{map[string]string{"RATE_LIMIT_PER_MINUTE": "0"}, "RATE_LIMIT_PER_MINUTE"},
		{map[string]string{"POLL_INTERVAL": "soon"}, "POLL_INTERVAL"},
		{map[string]string{"SIMULATE_BOOT_DELAY": "-1s"}, "SIMULATE_BOOT_DELAY"},
		{map[string]string{"SIMULATE_BOOT_DELAY": "fast"}, "SIMULATE_BOOT_DELAY"},
		{map[string]string{"RUNPOD_API_URL": "ftp://x"}, "RUNPOD_API_URL"},
		{map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{map[string]string{"BEHIND_GATEWAY": "yes"}, "BEHIND_GATEWAY"},
		{map[string]string{"BACKEND": "gcp"}, "GCP_PROJECT_ID"},
		{map[string]string{"BACKEND": "gcp", "GCP_PROJECT_ID": "p"}, "PROVISION_TASK_URL"},
		{map[string]string{"BACKEND": "gcp", "GCP_PROJECT_ID": "p", "PROVISION_TASK_URL": "https://p.example"}, "API_KEY_HASHES"},
	} {
		_, err := Load(env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v) = %v, want an error naming %s", tc.env, err, tc.want)
		}
	}
}

var update = flag.Bool("update", false, "rewrite the documentation's table of variables from the tags")

// TestDocsTableIsGenerated: the documentation's table of variables (the
// Markdown table headed "| variable | default | meaning |", in README.md or
// a page of docs/) is Table(), generated from Config's tags. go test
// ./shared/config -run TestDocsTableIsGenerated -update rewrites it.
func TestDocsTableIsGenerated(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	pages, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	pages = append([]string{filepath.Join(root, "README.md")}, pages...)
	const header = "| variable | default | meaning |\n"
	want := Table()
	found := 0
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(b)
		i := strings.Index(doc, header)
		if i < 0 {
			continue
		}
		found++
		end := i
		for end < len(doc) && doc[end] == '|' {
			nl := strings.IndexByte(doc[end:], '\n')
			if nl < 0 {
				end = len(doc)
				break
			}
			end += nl + 1
		}
		if got := doc[i:end]; got != want {
			if *update {
				if err := os.WriteFile(p, []byte(doc[:i]+want+doc[end:]), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("rewrote the table in %s", p)
				continue
			}
			t.Errorf("%s: the table of variables is not the one Config's tags give (go test ./shared/config -run TestDocsTableIsGenerated -update rewrites it)\n got:\n%s\nwant:\n%s", p, got, want)
		}
	}
	if found != 1 {
		t.Errorf("%d documentation pages hold the table of variables, want 1", found)
	}
}

func TestSimulateAllowsPrivateWebhooks(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"WEBHOOK_ALLOW_PRIVATE": "1"}, true},
		{map[string]string{"SIMULATE": "1"}, true},
		{map[string]string{"SIMULATE": "0"}, false},
	} {
		c, err := Load(env(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		if c.WebhookAllowPrivate != tc.want {
			t.Errorf("%v: WebhookAllowPrivate = %v, want %v", tc.env, c.WebhookAllowPrivate, tc.want)
		}
	}
}

// TestSimulateKeepsWebhooksLocal: with the simulators on, webhooks go only
// to loopback and private addresses unless WEBHOOK_ALLOW_PUBLIC=1 opts in;
// without them, only WEBHOOK_ALLOW_PUBLIC=0 restricts them so.
func TestSimulateKeepsWebhooksLocal(t *testing.T) {
	for _, tc := range []struct {
		env                   map[string]string
		allowPrivate, private bool
	}{
		{nil, false, false},
		{map[string]string{"SIMULATE": "1"}, true, true},
		{map[string]string{"SIMULATE": "1", "WEBHOOK_ALLOW_PRIVATE": "1"}, true, true},
		{map[string]string{"SIMULATE": "1", "WEBHOOK_ALLOW_PUBLIC": "1"}, true, false},
		{map[string]string{"SIMULATE": "1", "WEBHOOK_ALLOW_PUBLIC": "yes"}, true, false},
		{map[string]string{"WEBHOOK_ALLOW_PRIVATE": "1"}, true, false},
		{map[string]string{"WEBHOOK_ALLOW_PUBLIC": "0"}, true, true},
		{map[string]string{"WEBHOOK_ALLOW_PUBLIC": "1"}, false, false},
	} {
		c, err := Load(env(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		if c.WebhookAllowPrivate != tc.allowPrivate || c.WebhookPrivateOnly != tc.private {
			t.Errorf("%v: WebhookAllowPrivate %v, WebhookPrivateOnly %v; want %v, %v", tc.env, c.WebhookAllowPrivate, c.WebhookPrivateOnly, tc.allowPrivate, tc.private)
		}
	}
	if _, err := Load(env(map[string]string{"WEBHOOK_ALLOW_PUBLIC": "maybe"})); err == nil || !strings.Contains(err.Error(), "WEBHOOK_ALLOW_PUBLIC") {
		t.Errorf("WEBHOOK_ALLOW_PUBLIC=maybe: %v, want an error naming it", err)
	}
}

// TestLoadReadsEveryVar: the table and what Load reads are one list. Load
// panics on a name the table lacks; this checks the other direction, for
// a configuration that takes every branch Load has (the Google Cloud one).
func TestLoadReadsEveryVar(t *testing.T) {
	asked := map[string]bool{}
	set := map[string]string{"BACKEND": "gcp", "GCP_PROJECT_ID": "p", "PROVISION_TASK_URL": "https://p.example", "API_KEY_HASHES": testHashes}
	if _, err := Load(func(k string) string { asked[k] = true; return set[k] }); err != nil {
		t.Fatal(err)
	}
	for _, v := range Vars {
		if !asked[v.Name] {
			t.Errorf("Vars lists %s, which Load never reads", v.Name)
		}
	}
}

func TestEmulatorHosts(t *testing.T) {
	c, err := Load(env(map[string]string{"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8911", "CLOUD_TASKS_EMULATOR_HOST": " 127.0.0.1:8123 "}))
	if err != nil {
		t.Fatal(err)
	}
	if c.FirestoreEmulatorHost != "127.0.0.1:8911" || c.CloudTasksEmulatorHost != "127.0.0.1:8123" {
		t.Errorf("emulator hosts %q %q", c.FirestoreEmulatorHost, c.CloudTasksEmulatorHost)
	}
}

// InferenceMinCuda follows the CUDA libraries the worker's lock installs:
// the same major version (a CUDA 13 build needs a CUDA 13 driver), and a
// floor no higher than the runtime's minor (minor-version compatibility).
func TestInferenceMinCudaMatchesTheLock(t *testing.T) {
	lock, err := os.ReadFile(filepath.Join("..", "..", "inference", "requirements.lock"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^nvidia-cuda-runtime(?:-cu\d+)?==(\d+)\.(\d+)\.`).FindSubmatch(lock)
	if m == nil {
		t.Fatal("inference/requirements.lock pins no nvidia-cuda-runtime: which CUDA does its torch use?")
	}
	var floorMajor, floorMinor int
	if _, err := fmt.Sscanf(InferenceMinCuda, "%d.%d", &floorMajor, &floorMinor); err != nil {
		t.Fatalf("InferenceMinCuda %q is not major.minor", InferenceMinCuda)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	if floorMajor != major || floorMinor > minor {
		t.Errorf("InferenceMinCuda = %s, but the lock's CUDA runtime is %d.%d", InferenceMinCuda, major, minor)
	}
}

func TestLocalEnvironment(t *testing.T) {
	c, err := Load(env(map[string]string{"VISGATE_TINY_MODELS": "/t", "VISGATE_INFERENCE_VENV": " /v ", "VISGATE_INFERENCE_IMAGE": "w:1", "VISGATE_RUNPOD_VOLUME": "/vol"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Local{TinyModels: "/t", InferenceVenv: "/v", BuiltImage: "w:1", RunPodVolume: "/vol"}); c.Local != want {
		t.Errorf("Local = %+v, want %+v", c.Local, want)
	}
}

// TestCheckedTags: the checks the tags declare hold at their bounds.
func TestCheckedTags(t *testing.T) {
	for _, tc := range []struct {
		env map[string]string
		ok  bool
	}{
		{map[string]string{"PORT": "65535"}, true},
		{map[string]string{"PORT": "65536"}, false},
		{map[string]string{"PORT": "-1"}, false},
		{map[string]string{"FORWARDED_HOPS": "10"}, true},
		{map[string]string{"FORWARDED_HOPS": "11"}, false},
		{map[string]string{"POLL_INTERVAL": "1ms"}, true},
		{map[string]string{"POLL_INTERVAL": "0s"}, false},
		{map[string]string{"DEFAULT_TTL": "1m"}, true},
		{map[string]string{"DEFAULT_TTL": "30s"}, false},
		{map[string]string{"DEFAULT_TTL": "-1h"}, false},
		{map[string]string{"SPEND_REFRESH_INTERVAL": "1m"}, true},
		{map[string]string{"SPEND_REFRESH_INTERVAL": "59s"}, false},
		{map[string]string{"WEBHOOK_ALLOW_PUBLIC": "OFF"}, true},
		{map[string]string{"LOG_LEVEL": "INFO"}, false},
		{map[string]string{"PROVISION_TASK_URL": "https://p.example/"}, true},
		{map[string]string{"HF_API_URL": "huggingface.co"}, false},
	} {
		_, err := Load(env(tc.env))
		if (err == nil) != tc.ok {
			t.Errorf("Load(%v) = %v, want ok %v", tc.env, err, tc.ok)
		}
	}
	c, err := Load(env(map[string]string{"RUNPOD_API_URL": "http://127.0.0.1:1/v2/", "PROVISION_TASK_URL": "http://127.0.0.1:2/"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RunPodAPIURL != "http://127.0.0.1:1/v2" || c.ProvisionTaskURL != "http://127.0.0.1:2/" {
		t.Errorf("trailing slashes: %q %q", c.RunPodAPIURL, c.ProvisionTaskURL)
	}
	if DefaultVLLMImage != "runpod/worker-v1-vllm:v2.25.2" {
		t.Errorf("DefaultVLLMImage = %q", DefaultVLLMImage)
	}
}
