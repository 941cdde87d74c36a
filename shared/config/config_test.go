package config

import (
	"os"
	"path/filepath"
	"runtime"
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
		t.Errorf("without keys the seed's key must be accepted, flagged: %+v", c)
	}
	if c.PublicBaseURL != "http://127.0.0.1:8080" || !c.PublicBaseURLDefaulted {
		t.Errorf("PublicBaseURL = %q", c.PublicBaseURL)
	}
	if c.PollInterval != 10*time.Second {
		t.Errorf("PollInterval = %s", c.PollInterval)
	}
}

func TestGoogleCloudProjectAccepted(t *testing.T) {
	c, err := Load(env(map[string]string{"BACKEND": "gcp", "GOOGLE_CLOUD_PROJECT": "visgate", "PROVISION_TASK_URL": "https://p.example"}))
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
		{map[string]string{"RUNPOD_API_URL": "ftp://x"}, "RUNPOD_API_URL"},
		{map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{map[string]string{"BACKEND": "gcp"}, "GCP_PROJECT_ID"},
		{map[string]string{"BACKEND": "gcp", "GCP_PROJECT_ID": "p"}, "PROVISION_TASK_URL"},
	} {
		_, err := Load(env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v) = %v, want an error naming %s", tc.env, err, tc.want)
		}
	}
}

// TestREADMEListsEveryVariable keeps the README's configuration table true.
func TestREADMEListsEveryVariable(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Vars {
		if !strings.Contains(string(b), "`"+v.Name+"`") {
			t.Errorf("README.md does not document %s", v.Name)
		}
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
