package provision

import (
	"testing"
)

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
