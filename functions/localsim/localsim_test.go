package localsim

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/config"
)

func load(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestApplyAndEnv: Apply points the loaded configuration at the
// simulators, and a process given Env without SIMULATE (make dev's
// function processes) loads the same configuration.
func TestApplyAndEnv(t *testing.T) {
	s := Start(slog.New(slog.DiscardHandler), load(t, map[string]string{"SIMULATE": "1", "SIMULATE_BOOT_DELAY": "0s"}))
	t.Cleanup(s.Close)
	type seen struct {
		HF, RunPod, Image         string
		Poll                      time.Duration
		AllowPrivate, PrivateOnly bool
	}
	of := func(c *config.Config) seen {
		return seen{c.HFAPIURL, c.RunPodAPIURL, c.Images.Inference, c.PollInterval, c.WebhookAllowPrivate, c.WebhookPrivateOnly}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want seen
	}{
		{"defaults", nil, seen{s.Hub.URL, s.RunPod.URL, ImageInference, MaxPollInterval, true, true}},
		{"faster poll, own image and public webhooks kept", map[string]string{"POLL_INTERVAL": "200ms", "INFERENCE_IMAGE": "me/worker", "WEBHOOK_ALLOW_PUBLIC": "1"},
			seen{s.Hub.URL, s.RunPod.URL, "me/worker", 200 * time.Millisecond, true, false}},
		{"slow poll capped", map[string]string{"POLL_INTERVAL": "10s"}, seen{s.Hub.URL, s.RunPod.URL, ImageInference, MaxPollInterval, true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"SIMULATE": "1"}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg := load(t, env)
			s.Apply(cfg)
			if diff := cmp.Diff(tc.want, of(cfg)); diff != "" {
				t.Errorf("applied (-want +got):\n%s", diff)
			}
			delete(env, "SIMULATE")
			for k, v := range Env(cfg) {
				env[k] = v
			}
			if diff := cmp.Diff(tc.want, of(load(t, env))); diff != "" {
				t.Errorf("a process given Env without SIMULATE (-want +got):\n%s", diff)
			}
		})
	}
}
