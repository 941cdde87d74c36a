package provision

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

type fakeTypes struct {
	calls int
	types []runpod.GPUType
	err   error
}

func (f *fakeTypes) GPUTypes(context.Context, secret.Secret) ([]runpod.GPUType, error) {
	f.calls++
	return f.types, f.err
}

func TestGPUCatalogRefresh(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	live := &fakeTypes{types: []runpod.GPUType{{ID: "NVIDIA A40", Name: "A40", Pool: "AMPERE_48", MemoryGB: 48, PricePerHour: 0.99}}}
	c := &GPUCatalog{Base: gpu.Default(), RunPod: live, Now: func() time.Time { return now }}
	price := func(cat *gpu.Catalog) float64 {
		p, _ := cat.Pool("AMPERE_48")
		return p.PricePerHour
	}
	base := price(gpu.Default())
	if got := price(c.Get(context.Background(), secret.New("k"))); got != 0.99 {
		t.Errorf("refreshed price = %v, want the live 0.99 (embedded %v)", got, base)
	}
	c.Get(context.Background(), secret.New("k"))
	if live.calls != 1 {
		t.Errorf("read RunPod %d times within the TTL", live.calls)
	}
	now = now.Add(CatalogTTL + time.Second)
	live.err = errors.New("RunPod down")
	if got := price(c.Get(context.Background(), secret.New("k"))); got != 0.99 || live.calls != 2 {
		t.Errorf("after a failed refresh: price %v, calls %d; want the last good catalogue", got, live.calls)
	}
	if got := price((&GPUCatalog{Base: gpu.Default()}).Get(context.Background(), secret.Secret{})); got != base {
		t.Errorf("without RunPod = %v, want the embedded %v", got, base)
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
