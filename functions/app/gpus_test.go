package app

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

type fakeGPUTypes []runpod.GPUType

func (f fakeGPUTypes) GPUTypes(context.Context, secret.Secret) ([]runpod.GPUType, error) {
	return f, nil
}

func TestRunPodOffersAdaptTheCatalogue(t *testing.T) {
	src := runpodOffers(fakeGPUTypes{
		{ID: "NVIDIA A40", Name: "A40", Pool: "AMPERE_48", Manufacturer: "NVIDIA", MemoryGB: 48, PricePerHour: 1.22},
		{ID: "AMD MI300X", Name: "MI300X", Manufacturer: "AMD", MemoryGB: 192},
	})
	got, err := src(t.Context(), secret.New("k"))
	if err != nil {
		t.Fatal(err)
	}
	want := []gpu.Offer{
		{ID: "NVIDIA A40", Name: "A40", Pool: "AMPERE_48", MemoryGB: 48, PricePerHour: 1.22},
		{ID: "AMD MI300X", Name: "MI300X", MemoryGB: 192},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("offers (-want +got):\n%s", diff)
	}
}
