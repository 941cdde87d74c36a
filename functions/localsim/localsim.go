// Package localsim runs the Hugging Face Hub and RunPod simulators for the
// local commands: `make run` (functions/local) and `make dev` (functions/dev)
// with SIMULATE=1. The deployed functions never link it: they reach the real
// services at HF_API_URL and RUNPOD_API_URL, and refuse SIMULATE.
package localsim

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
)

// Images of the simulated families, when none is configured.
const (
	ImageDiffusion = "visgate/simulated-diffusers"
	ImageDefault   = "visgate/simulated-transformers"
)

// MaxPollInterval caps POLL_INTERVAL in a simulated run, so a deployment is
// ready in seconds.
const MaxPollInterval = time.Second

// Simulators are a running Hub simulator (any token accepted) and RunPod
// simulator (any key accepted), on loopback.
type Simulators struct {
	Hub    *hubsim.Server
	RunPod *runpodsim.Server
}

// Enabled reports whether getenv asks for the simulators (SIMULATE=1, true,
// yes or on).
func Enabled(getenv func(string) string) bool {
	switch strings.ToLower(strings.TrimSpace(getenv("SIMULATE"))) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// Start starts both simulators, the workers booting in SIMULATE_BOOT_DELAY
// (read with getenv).
func Start(log *slog.Logger, getenv func(string) string) (*Simulators, error) {
	boot, err := bootDelay(getenv)
	if err != nil {
		return nil, err
	}
	hub := hubsim.New()
	hub.SetAcceptAnyToken(true)
	// The container's three callbacks take 0.3 of the boot each, as with the
	// simulator's defaults (1 s, 300 ms).
	rp := runpodsim.New(runpodsim.WithAnyKey(), runpodsim.WithCallbackClient(&http.Client{Timeout: 10 * time.Second}),
		runpodsim.WithBootDelay(boot), runpodsim.WithCallbackInterval(boot*3/10))
	log.Debug("simulators listening", "hub", hub.URL, "runpod", rp.URL)
	return &Simulators{Hub: hub, RunPod: rp}, nil
}

// bootDelay is SIMULATE_BOOT_DELAY, or its default.
func bootDelay(getenv func(string) string) (time.Duration, error) {
	v := strings.TrimSpace(getenv("SIMULATE_BOOT_DELAY"))
	if v == "" {
		for _, cv := range config.Vars {
			if cv.Name == "SIMULATE_BOOT_DELAY" {
				v = cv.Default
			}
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("config: SIMULATE_BOOT_DELAY=%q: want a duration such as 1s, or 0s", v)
	}
	return d, nil
}

// Close stops both simulators.
func (s *Simulators) Close() {
	s.Hub.Close()
	s.RunPod.Close()
}

// Overrides are the variables that point a run at the simulators: the two
// base URLs, a poll interval of at most MaxPollInterval, an image for every
// family that has none (the simulator runs any image), and loopback webhooks
// allowed (what SIMULATE implies, for processes that do not see SIMULATE).
func (s *Simulators) Overrides(getenv func(string) string) map[string]string {
	o := map[string]string{"HF_API_URL": s.Hub.URL, "RUNPOD_API_URL": s.RunPod.URL, "WEBHOOK_ALLOW_PRIVATE": "1"}
	switch v := strings.TrimSpace(getenv("POLL_INTERVAL")); {
	case v == "":
		o["POLL_INTERVAL"] = MaxPollInterval.String()
	default:
		if d, err := time.ParseDuration(v); err == nil && d > MaxPollInterval {
			o["POLL_INTERVAL"] = MaxPollInterval.String()
		} // an invalid value stays, for config.Load to report
	}
	for name, img := range map[string]string{"IMAGE_DIFFUSION": ImageDiffusion, "IMAGE_DEFAULT": ImageDefault} {
		if strings.TrimSpace(getenv(name)) == "" {
			o[name] = img
		}
	}
	return o
}

// Getenv is getenv with the overrides applied.
func (s *Simulators) Getenv(getenv func(string) string) func(string) string {
	o := s.Overrides(getenv)
	return func(k string) string {
		if v, ok := o[k]; ok {
			return v
		}
		return getenv(k)
	}
}
