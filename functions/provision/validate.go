package provision

import (
	"context"
	"errors"
	"time"

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
			s.logger().WarnContext(ctx, "Hugging Face Hub check failed; retrying", "deployment_id", d.ID, "model_id", d.ModelID,
				"attempt", d.Retries+1, "cause", causeOf(he))
			return s.retryBefore(ctx, t, deployment.StatusValidating, he.RetryAfter, he.Error(), d.StatusChangedAt.Add(s.hubWait()))
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
	_, err = s.advance(ctx, d.ID, deployment.StatusValidating, func(d *deployment.Deployment) error {
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
	return err
}

func (s *Steps) hubWait() time.Duration {
	if s.HubWait > 0 {
		return s.HubWait
	}
	return DefaultHubWait
}

// causeOf is the underlying error of a Hub failure, for the server log.
func causeOf(he *huggingface.Error) string {
	if he.Err != nil {
		return he.Err.Error()
	}
	return he.Error()
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
