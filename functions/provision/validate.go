package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/serving"
)

// validate looks the model up on the Hub (canonical id, revision, access)
// and estimates its VRAM.
func (s *Steps) validate(ctx context.Context, t queue.Task) error {
	d, err := s.Store.Get(ctx, t.DeploymentID)
	if err != nil {
		return err
	}
	if d.Status != deployment.StatusValidating {
		return nil
	}
	token, err := s.open(ctx, d.HFToken, d.ID, deployment.FieldHFToken)
	if err != nil {
		return err
	}
	ins, err := s.Hub.Inspect(ctx, d.ModelID, token)
	if err != nil {
		var he *huggingface.Error
		if !errors.As(err, &he) {
			return s.fail(ctx, d.ID, deployment.StatusValidating, "Could not validate the model on the Hugging Face Hub")
		}
		if he.Retryable {
			return s.retryLater(ctx, t, deployment.StatusValidating, he.RetryAfter, he.Error())
		}
		return s.fail(ctx, d.ID, deployment.StatusValidating, he.Error())
	}
	// Which worker serves it, from what the Hub says (never from the id):
	// a family nobody serves fails here, before any GPU is paid for.
	plan, err := serving.For(ins.ModelID, ins.PipelineTag, ins.LibraryName)
	if err != nil {
		return s.fail(ctx, d.ID, deployment.StatusValidating, err.Error())
	}
	if _, err := s.image(plan); err != nil {
		return s.fail(ctx, d.ID, deployment.StatusValidating, err.Error())
	}
	now := s.now()
	d, err = s.advance(ctx, d.ID, deployment.StatusValidating, func(d *deployment.Deployment) error {
		if ins.ModelID != d.ModelID {
			d.Log(now, deployment.LevelInfo, "Hugging Face resolved %s to %s", d.ModelID, ins.ModelID)
		}
		d.ModelID = ins.ModelID
		d.Revision = ins.Revision
		d.PipelineTag = ins.PipelineTag
		d.LibraryName = ins.LibraryName
		d.Family = string(ins.Family)
		d.Worker = string(plan.Worker)
		d.Task = plan.Task
		d.Files = ins.Estimate.Files
		d.ModelVRAMGB = ins.Estimate.VRAMGB
		d.DownloadBytes = ins.Estimate.DownloadBytes
		d.EstimatedReadySeconds = EstimateReadySeconds(ins.Estimate.DownloadBytes, ins.Estimate.VRAMGB, "")
		d.Log(now, deployment.LevelInfo, "HF model validated: %s at revision %s (%s, needs about %d GB of VRAM)",
			ins.ModelID, short(ins.Revision), familyLabel(ins), ins.Estimate.VRAMGB)
		if err := d.Transition(now, deployment.StatusSelectingGPU); err != nil {
			return err
		}
		d.Log(now, deployment.LevelInfo, "Selecting GPU")
		return nil
	})
	if err != nil || d == nil {
		return err
	}
	return s.next(ctx, d.ID, StepSelectGPU, 0, 0)
}

func familyLabel(ins *huggingface.Inspection) string {
	if ins.PipelineTag != "" {
		return ins.PipelineTag
	}
	return string(ins.Family)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	if sha == "" {
		return "main"
	}
	return sha
}

// EstimateReadySeconds estimates the time from endpoint creation to a loaded
// model: a cold start (image pull, worker boot), the download at a
// conservative 100 MB/s, and moving the weights into GPU memory at a rate
// that depends on the GPU's generation (pool ""—not chosen yet—counts as the
// slowest).
func EstimateReadySeconds(downloadBytes int64, vramGB int, pool string) int {
	const coldStart = 90
	download := int(downloadBytes / (100 << 20))
	return coldStart + download + int(float64(vramGB)*loadSecondsPerGB(pool)+0.5)
}

// loadSecondsPerGB: reading safetensors from local disk into GPU memory,
// bounded by the host's disk and PCIe (Gen4 on Ampere and Ada, Gen5 on
// Hopper and Blackwell hosts).
func loadSecondsPerGB(pool string) float64 {
	switch {
	case strings.HasPrefix(pool, "HOPPER"), strings.HasPrefix(pool, "BLACKWELL"):
		return 1
	case strings.HasPrefix(pool, "ADA"):
		return 1.5
	}
	return 2
}

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
	d, err = s.advance(ctx, d.ID, deployment.StatusSelectingGPU, func(d *deployment.Deployment) error {
		d.GPUPools = choice.Pools
		d.EstimatedReadySeconds = EstimateReadySeconds(d.DownloadBytes, d.ModelVRAMGB, choice.Primary.ID)
		d.GPUExcludedTypes = choice.ExcludedTypes
		d.GPUAllocated = choice.Card
		d.Log(now, deployment.LevelInfo, "Selected GPU: %s", choice.Card)
		if len(choice.Pools) > 1 {
			d.Log(now, deployment.LevelInfo, "GPU pools, preferred first: %v", choice.Pools)
		}
		if err := d.Transition(now, deployment.StatusCreatingEndpoint); err != nil {
			return err
		}
		d.Log(now, deployment.LevelInfo, "Creating RunPod endpoint")
		return nil
	})
	if err != nil || d == nil {
		return err
	}
	return s.next(ctx, d.ID, StepCreateEndpoint, 0, 0)
}
