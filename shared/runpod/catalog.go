package runpod

import (
	"context"
	"fmt"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// GPUType is one GPU type of RunPod's catalogue.
type GPUType struct {
	ID           string // "NVIDIA A40": the id pods take and excludedTypes lists
	Name         string // "A40"
	Pool         string // serverless pool id ("AMPERE_48"); empty if in no serverless pool
	Manufacturer string // NVIDIA, AMD or UNKNOWN
	MemoryGB     int
	// PricePerHour is the serverless list price per GPU per hour (USD); 0 when
	// the type is in no serverless pool available to the caller.
	PricePerHour float64
}

type wireGPUType struct {
	ID           string  `json:"id"`
	Name         string  `json:"name"`
	Pool         *string `json:"pool"`
	Manufacturer string  `json:"manufacturer"`
	Memory       int     `json:"memory"`
	Price        struct {
		Serverless *float64 `json:"serverless"`
	} `json:"price"`
}

type listGPUTypesResponse struct {
	GPUs []wireGPUType `json:"gpus"`
}

// GPUTypes lists RunPod's GPU types with their pools and serverless prices
// (GET /v2/catalog/gpus).
func (c *Client) GPUTypes(ctx context.Context, key secret.Secret) ([]GPUType, error) {
	var w listGPUTypesResponse
	if err := c.do(ctx, key, "GET", "/catalog/gpus", nil, &w); err != nil {
		return nil, fmt.Errorf("listing RunPod GPU types: %w", err)
	}
	out := make([]GPUType, 0, len(w.GPUs))
	for _, g := range w.GPUs {
		t := GPUType{ID: g.ID, Name: g.Name, Pool: str(g.Pool), Manufacturer: g.Manufacturer, MemoryGB: g.Memory}
		if g.Price.Serverless != nil {
			t.PricePerHour = *g.Price.Serverless
		}
		out = append(out, t)
	}
	return out, nil
}
