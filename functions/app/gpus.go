package app

import (
	"context"

	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// gpuTypes is what runpodOffers needs of the RunPod client.
type gpuTypes interface {
	GPUTypes(ctx context.Context, key secret.Secret) ([]runpod.GPUType, error)
}

// runpodOffers adapts RunPod's GPU catalogue (GET /v2/catalog/gpus) to the
// offers the GPU catalogue refreshes itself with.
func runpodOffers(rp gpuTypes) gpu.Source {
	return func(ctx context.Context, key secret.Secret) ([]gpu.Offer, error) {
		types, err := rp.GPUTypes(ctx, key)
		if err != nil {
			return nil, err
		}
		offers := make([]gpu.Offer, 0, len(types))
		for _, t := range types {
			offers = append(offers, gpu.Offer{ID: t.ID, Name: t.Name, Pool: t.Pool, MemoryGB: t.MemoryGB, PricePerHour: t.PricePerHour})
		}
		return offers, nil
	}
}
