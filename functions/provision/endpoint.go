package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/serving"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

// DefaultCreateLease bounds how long one create_endpoint run may hold the right to
// create; a run that dies holding it is replaced once it expires, and the
// replacement first looks for the endpoint the dead run may have made.
const DefaultCreateLease = 2 * time.Minute

// createLease is how long a create_endpoint run holds its lease
// (DefaultCreateLease when CreateLease is zero).
func (s *Steps) createLease() time.Duration {
	if s.CreateLease > 0 {
		return s.CreateLease
	}
	return DefaultCreateLease
}

var errLeaseHeld = errors.New("provision: endpoint lease held by another run")

// createEndpoint creates the RunPod endpoint, at most once per deployment:
// a lease in the store serialises concurrent runs, and an env marker on the
// endpoint lets a later run find what an earlier one made.
func (s *Steps) createEndpoint(ctx context.Context, t queue.Task) error {
	d, err := s.Store.Get(ctx, t.DeploymentID)
	if err != nil {
		return err
	}
	if d.Status != deployment.StatusCreatingEndpoint {
		return nil
	}
	// What the create needs is made before taking the lease, so that a
	// failure here (a sealer error, a cancelled context) leaves no lease
	// behind for the next run to wait out.
	var spec runpod.EndpointSpec
	var key secret.Secret
	if d.RunPodEndpointID == "" {
		if spec, err = s.endpointSpec(ctx, d); err != nil {
			var ie imageError
			if errors.As(err, &ie) {
				return s.fail(ctx, d.ID, deployment.StatusCreatingEndpoint, ie.Error())
			}
			return err
		}
		if key, err = s.open(ctx, d.RunPodKey, d.ID, deployment.FieldRunPodKey); err != nil {
			return err
		}
	}
	now := s.now()
	var wait time.Duration
	firstRun := false // no earlier run ever held the lease
	d, err = s.advance(ctx, d.ID, deployment.StatusCreatingEndpoint, func(d *deployment.Deployment) error {
		if d.RunPodEndpointID != "" {
			return nil // recorded by an earlier run; only the transition is left
		}
		if d.EndpointLease.After(now) && !s.holderDead(d) {
			wait = d.EndpointLease.Sub(now)
			return errLeaseHeld
		}
		if d.EndpointLease.After(now) {
			// The holder died (a kill, a crash) while it may have had a
			// create in flight: look for what it made at once, but
			// create nothing before that create could have landed.
			taken := d.EndpointLease.Add(-s.createLease())
			if until := taken.Add(s.lateCreateWindow()); until.After(d.CreateUncertainUntil) {
				d.CreateUncertainUntil = until
			}
			d.Log(now, deployment.LevelWarn, "The run that was creating the endpoint stopped (the service restarted); looking for what it made")
		}
		firstRun = d.EndpointLease.IsZero()
		d.EndpointLease, d.EndpointLeaseHolder = now.Add(s.createLease()), s.RunID
		return nil
	})
	if errors.Is(err, errLeaseHeld) {
		return s.again(ctx, t, wait+time.Second)
	}
	if err != nil || d == nil {
		return err
	}
	var ep *runpod.Endpoint
	made, sent := "created", false
	if d.RunPodEndpointID == "" {
		ep, err = s.RunPod.FindEndpoint(ctx, key, workerenv.DeploymentID, d.ID)
		if ep != nil {
			made = "found" // an earlier run made it; its answer was lost
		}
		if err == nil && ep == nil && d.CreateUncertainUntil.After(now) {
			// An earlier create got no answer (or its run died): RunPod may
			// still make that endpoint. Look again once it could have.
			s.releaseLease(ctx, d.ID, false, false)
			return s.again(ctx, t, d.CreateUncertainUntil.Add(time.Second).Sub(now))
		}
		if err == nil && ep == nil {
			sent = true
			ep, err = s.RunPod.CreateEndpoint(ctx, key, spec)
		}
		if err != nil {
			if ctx.Err() != nil {
				// Cancelled (shutdown, request deadline): not RunPod's
				// answer. The queue or the next resume runs the step again.
				s.releaseLease(context.WithoutCancel(ctx), d.ID, false, sent)
				return fmt.Errorf("create endpoint: %w", err)
			}
			// A definitive refusal (4xx) means this run made nothing; on
			// the first run no earlier one can have made anything either,
			// so there is nothing to tear down. A create without an answer
			// (a timeout, a dropped connection, a 5xx) may still land.
			var re *runpod.Error
			answered := errors.As(err, &re) && (re.Status < 500)
			s.releaseLease(ctx, d.ID, firstRun && answered && !re.Retryable(), sent && !answered)
			if ok, after := runpod.Retryable(err); ok {
				return s.retryLater(ctx, t, deployment.StatusCreatingEndpoint, after, runpodMessage(err))
			}
			return s.fail(ctx, d.ID, deployment.StatusCreatingEndpoint, runpodMessage(err))
		}
	}
	now = s.now()
	// The endpoint exists: recording it (and ending the lease) must not be
	// lost to a cancellation now (a request deadline, an instance going
	// away), or the next run would wait the lease out.
	_, err = s.Store.Update(context.WithoutCancel(ctx), d.ID, func(d *deployment.Deployment) error {
		if ep != nil && d.RunPodEndpointID == "" {
			d.RunPodEndpointID = ep.ID
			d.EndpointURL = ep.URL
			d.Image = ep.Image
			d.EndpointLease, d.EndpointLeaseHolder = time.Time{}, ""
			// A teardown that ran before it was recorded did not see it: a
			// deployment deleted or failed meanwhile owes another.
			d.EndpointLearnt()
			d.Log(now, deployment.LevelInfo, "RunPod endpoint %s: %s", made, ep.ID)
		}
		if d.Watch.StartedAt.IsZero() {
			d.Watch.StartedAt = now
		}
		if d.Status != deployment.StatusCreatingEndpoint {
			// Moved on meanwhile: a container's callback (watch and scale
			// are owed now that the endpoint is known), a delete or a
			// failure (a teardown is owed).
			return nil
		}
		if err := d.Transition(now, deployment.StatusDownloadingModel); err != nil {
			return err
		}
		d.Log(now, deployment.LevelInfo, "Waiting for a worker to download and load the model")
		return nil
	})
	return err
}

// holderDead reports whether d's create lease is known to belong to a run
// that no longer exists: with a sole runner, any run but this process's.
func (s *Steps) holderDead(d *deployment.Deployment) bool {
	return s.SoleRunner && d.EndpointLeaseHolder != s.RunID
}

// releaseLease ends this run's lease. nothingMade says that no endpoint can
// exist: the lease is then cleared, so that nothing waits for a teardown.
// Otherwise it is left expired, which still says an endpoint may exist, and
// the record learns of that endpoint (deployment.EndpointLearnt): a
// teardown that ran while the lease was held (the deployment was deleted or
// failed meanwhile) may have looked before RunPod made what this run asked
// for, so such a deployment owes another.
//
// uncertain says that a create was sent and got no answer: RunPod may
// still make that endpoint, so no run creates again, and teardowns look
// again, until the late-create window has passed.
func (s *Steps) releaseLease(ctx context.Context, id string, nothingMade, uncertain bool) {
	now := s.now()
	_, err := s.Store.Update(ctx, id, func(d *deployment.Deployment) error {
		if d.EndpointLease.IsZero() || d.RunPodEndpointID != "" {
			return store.ErrNoChange
		}
		if uncertain {
			d.CreateUncertainUntil = now.Add(s.lateCreateWindow())
			d.Log(now, deployment.LevelWarn, "RunPod did not answer the create; it may still make the endpoint: looking for it again before creating another")
		}
		d.EndpointLeaseHolder = ""
		if nothingMade {
			d.EndpointLease = time.Time{}
		} else {
			d.EndpointLease = s.now()
			d.EndpointLearnt()
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNoChange) {
		s.logger().WarnContext(ctx, "could not release the endpoint lease", "deployment_id", id, "error", err.Error())
	}
}

type imageError struct{ plan serving.Plan }

func (e imageError) Error() string {
	if e.plan.Worker == serving.VLLM {
		return fmt.Sprintf("No inference image is configured for %s models; the operator sets IMAGE_TEXT_GENERATION", e.plan.Task)
	}
	return fmt.Sprintf("No inference image is configured for %s models; the operator sets INFERENCE_IMAGE", e.plan.Task)
}

// image is the inference image of the worker that serves the model.
func (s *Steps) image(plan serving.Plan) (string, error) {
	var img string
	switch plan.Worker {
	case serving.VLLM:
		img = s.Images.TextGeneration
	case serving.Inference:
		img = s.Images.Inference
	}
	if img == "" {
		return "", imageError{plan: plan}
	}
	return img, nil
}

// planOf is how d is served, as validate decided it. Deployments validated
// before the worker was recorded are served by the family's worker.
func planOf(d *deployment.Deployment) serving.Plan {
	if d.Worker != "" {
		return serving.Plan{Worker: serving.Worker(d.Worker), Task: d.Task, Library: d.LibraryName}
	}
	if huggingface.Family(d.Family) == huggingface.FamilyTextGeneration {
		return serving.Plan{Worker: serving.VLLM, Task: d.PipelineTag, Library: d.LibraryName}
	}
	return serving.Plan{Worker: serving.Inference, Task: d.PipelineTag, Library: d.LibraryName}
}

func (s *Steps) endpointSpec(ctx context.Context, d *deployment.Deployment) (runpod.EndpointSpec, error) {
	plan := planOf(d)
	img, err := s.image(plan)
	if err != nil {
		return runpod.EndpointSpec{}, err
	}
	callbackSecret := auth.CallbackSecret(s.SigningKey, d.ID)
	env := map[string]string{
		workerenv.ModelName:      d.ModelID,
		workerenv.DeploymentID:   d.ID,
		workerenv.CallbackURL:    s.CallbackBase + "/internal/deployment-ready/" + d.ID,
		workerenv.CallbackSecret: callbackSecret.Reveal(),
	}
	if d.Revision != "" {
		env[workerenv.ModelRevision] = d.Revision
	}
	if plan.Worker == serving.Inference {
		// What validate learned, for the worker (inference/, its config.py).
		files, err := json.Marshal(d.Files)
		if err != nil {
			return runpod.EndpointSpec{}, fmt.Errorf("encode the file list: %w", err)
		}
		env[workerenv.Task] = plan.Task
		env[workerenv.Library] = plan.Library
		env[workerenv.Files] = string(files)
		env[workerenv.GPU] = d.GPUAllocated
		env[workerenv.VRAMGB] = strconv.Itoa(d.ModelVRAMGB)
		env[workerenv.JobTimeout] = strconv.Itoa(JobTimeoutSeconds(plan.Task))
	}
	if len(d.HFToken) > 0 {
		tok, err := s.open(ctx, d.HFToken, d.ID, deployment.FieldHFToken)
		if err != nil {
			return runpod.EndpointSpec{}, err
		}
		env[workerenv.HFToken] = tok.Reveal()
	}
	// RunPod restarts a worker whose start (download, load, warm-up) takes
	// longer than this; its default, 7 minutes, is too short for a large
	// model, which would then download again in a loop.
	env[workerenv.InitTimeout] = strconv.Itoa(InitTimeoutSeconds(d.DownloadBytes, d.ModelVRAMGB))
	var cuda []string
	var minCuda string
	switch {
	case img == config.DefaultVLLMImage:
		cuda = []string{config.DefaultVLLMCuda} // built on CUDA 13: older hosts crash-loop it
	case plan.Worker == serving.Inference:
		// Our image's torch carries CUDA 13 libraries: on an older driver
		// torch.cuda.is_available() is False.
		minCuda = config.InferenceMinCuda
	}
	// Room for the weights twice (download and cache) plus the image's own files.
	disk := int(d.DownloadBytes*2>>30) + 20
	execMs := 0 // vLLM: RunPod's default
	if plan.Worker == serving.Inference {
		execMs = ExecutionTimeoutMs(plan.Task)
	}
	return runpod.EndpointSpec{
		Name:                "visgate-" + d.ID,
		Image:               img,
		Env:                 env,
		Pools:               d.GPUPools,
		ExcludedTypes:       d.GPUExcludedTypes,
		AllowedCudaVersions: cuda,
		MinCudaVersion:      minCuda,
		// One warm worker while provisioning, so the model loads now;
		// after ready the endpoint scales as the user asked (step scale).
		WorkersMin:      1,
		WorkersMax:      max(1, d.Scaling.MaxWorkers),
		IdleTimeout:     d.Scaling.IdleTimeoutSeconds,
		ContainerDiskGB: disk,
		Flashboot:       true,
		// The job's wall-clock limit, enforced by RunPod too.
		ExecutionTimeoutMs: execMs,
	}, nil
}

// runpodMessage is the message a user sees for a RunPod failure.
func runpodMessage(err error) string { return runpod.Message(err) }
