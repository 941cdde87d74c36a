package localsim

import (
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOverrides(t *testing.T) {
	s, err := Start(slog.New(slog.DiscardHandler), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for _, tc := range []struct {
		name string
		env  map[string]string
		want map[string]string
	}{
		{"defaults", nil, map[string]string{"POLL_INTERVAL": "1s", "INFERENCE_IMAGE": ImageInference}},
		{"faster poll, own image and public webhooks kept", map[string]string{"POLL_INTERVAL": "200ms", "INFERENCE_IMAGE": "me/worker", "WEBHOOK_ALLOW_PUBLIC": "1"}, map[string]string{}},
		{"slow poll capped", map[string]string{"POLL_INTERVAL": "10s"}, map[string]string{"POLL_INTERVAL": "1s", "INFERENCE_IMAGE": ImageInference}},
		{"invalid poll left for config", map[string]string{"POLL_INTERVAL": "soon"}, map[string]string{"INFERENCE_IMAGE": ImageInference}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.want["HF_API_URL"], tc.want["RUNPOD_API_URL"], tc.want["WEBHOOK_ALLOW_PRIVATE"] = s.Hub.URL, s.RunPod.URL, "1"
			if tc.env["WEBHOOK_ALLOW_PUBLIC"] == "" {
				tc.want["WEBHOOK_ALLOW_PUBLIC"] = "0" // what SIMULATE implies
			}
			got := s.Overrides(func(k string) string { return tc.env[k] })
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("overrides (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := Start(slog.New(slog.DiscardHandler), func(string) string { return "soon" }); err == nil {
		t.Error("Start with SIMULATE_BOOT_DELAY=soon: no error")
	}
	if !Enabled(func(string) string { return "yes" }) || Enabled(func(string) string { return "" }) {
		t.Error("Enabled")
	}
}
