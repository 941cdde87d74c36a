package provision

import (
	"testing"
)

// RUNPOD_INIT_TIMEOUT fits the download at a slow rate, and never falls
// to RunPod's default of 7 minutes.
func TestInitTimeoutSeconds(t *testing.T) {
	const gb = 1 << 30
	for _, tc := range []struct {
		name     string
		download int64
		vram     int
		want     int
	}{
		{"nothing to download", 0, 0, 900},
		{"SDXL-Turbo", 7 * gb, 8, 600 + 301 + 32},
		{"FLUX.1-schnell", 34 * gb, 36, 600 + 1461 + 144},
		{"Llama-3.1-70B", 141 * gb, 159, 600 + 6056 + 636},
	} {
		got := InitTimeoutSeconds(tc.download, tc.vram)
		if got != tc.want {
			t.Errorf("%s: InitTimeoutSeconds(%d GiB, %d GB) = %d, want %d", tc.name, tc.download/gb, tc.vram, got, tc.want)
		}
		// What matters: the download alone at 25 MB/s fits, with room.
		if slow := int(tc.download / 25e6); got < slow+600 || got <= 420 {
			t.Errorf("%s: %d s leaves no room for a %d s download", tc.name, got, slow)
		}
	}
}

func TestEstimateReadySeconds(t *testing.T) {
	const gb = 1 << 30
	for _, tc := range []struct {
		download int64
		vram     int
		pool     string
		want     int
	}{
		{7 * gb, 8, "AMPERE_16", 90 + 71 + 16},            // SDXL-Turbo on an A4000
		{16 * gb, 19, "ADA_24", 90 + 163 + 29},            // Llama-3.1-8B on a 4090-class card
		{141 * gb, 159, "BLACKWELL_180", 90 + 1443 + 159}, // Llama-3.1-70B on a B200
		{0, 0, "", 90},
	} {
		if got := EstimateReadySeconds(tc.download, tc.vram, tc.pool); got != tc.want {
			t.Errorf("EstimateReadySeconds(%d GiB, %d GB, %s) = %d, want %d", tc.download/gb, tc.vram, tc.pool, got, tc.want)
		}
	}
	// The same model loads faster on a newer GPU.
	if a, h := EstimateReadySeconds(16*gb, 19, "AMPERE_24"), EstimateReadySeconds(16*gb, 19, "HOPPER_141"); h >= a {
		t.Errorf("Hopper %d s not faster than Ampere %d s", h, a)
	}
}
