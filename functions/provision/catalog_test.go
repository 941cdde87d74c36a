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
