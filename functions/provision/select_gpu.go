package provision

import (
	"context"
	"fmt"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/queue"
)

// selectGPU picks the pools for the estimate and the requested tier.
func (s *Steps) selectGPU(ctx context.Context, t queue.Task) error {
	d, err := s.Store.Get(ctx, t.DeploymentID)
	if err != nil {
		return err
	}
	if d.Status != deployment.StatusSelectingGPU {
		return nil
	}
	cat := s.GPUs
	if s.LiveGPUs != nil {
		key, err := s.open(ctx, d.RunPodKey, d.ID, deployment.FieldRunPodKey)
		if err != nil {
			return err
		}
		cat = s.LiveGPUs.Get(ctx, key)
	}
	choice, err := cat.Choose(d.ModelVRAMGB, d.GPUTier)
	if err != nil {
		return s.fail(ctx, d.ID, deployment.StatusSelectingGPU, fmt.Sprintf("%s: %v", d.ModelID, err))
	}
	now := s.now()
	_, err = s.advance(ctx, d.ID, deployment.StatusSelectingGPU, func(d *deployment.Deployment) error {
		d.GPUPools = choice.Pools
		d.EstimatedReadySeconds = EstimateReadySeconds(d.DownloadBytes, d.ModelVRAMGB, choice.Primary.ID)
		d.GPUExcludedTypes = choice.ExcludedTypes
		d.GPUAllocated = choice.Card
		d.Price = PriceOf(cat, choice.Pools)
		d.Log(now, deployment.LevelInfo, "Selected GPU: %s", choice.Card)
		if d.Price != nil && d.Price.PerHourUSD > 0 {
			d.Log(now, deployment.LevelInfo, "Price of one worker: $%.2f an hour ($%.6f a second); one warm worker runs while the model loads",
				d.Price.PerHourUSD, deployment.PricePerSecond(d.Price.PerHourUSD))
		}
		if len(choice.Pools) > 1 {
			d.Log(now, deployment.LevelInfo, "GPU pools, preferred first: %v", choice.Pools)
		}
		if err := d.Transition(now, deployment.StatusCreatingEndpoint); err != nil {
			return err
		}
		d.Log(now, deployment.LevelInfo, "Creating RunPod endpoint")
		return nil
	})
	return err
}

// PriceOf is the price of one worker of pools (the first preferred) in cat.
func PriceOf(cat *gpu.Catalog, pools []string) *deployment.Price {
	if len(pools) == 0 {
		return nil
	}
	first, fallback := cat.Prices(pools)
	return deployment.NewPrice(pools[0], first, fallback, cat.ReadAt())
}
