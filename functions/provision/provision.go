// Package provision is the ProvisionTask function: the steps of the
// provisioning chain and what a final status owes (scale, webhook,
// teardown) as idempotent task handlers, one file per step. Every step
// reads the deployment, returns early when the deployment is past the step,
// makes its external calls outside any transaction and commits with a
// compare-and-set on the status. It does not enqueue what follows: the
// change feed enqueues what the committed record owes (deployment.Owes).
// A step only schedules its own next run (polling, backoff: again).
//
// Files: provision.go (Steps, Handle, the shared helpers), validate.go,
// select_gpu.go, endpoint.go (create_endpoint), watch.go, scale.go,
// webhook.go, teardown.go, limits.go (expire, spend) (one per step), estimate.go (the time to ready)
// and catalog.go (the GPU catalogue kept fresh from RunPod).
package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/seal"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

// DefaultHubWait is HubWait's default.
const DefaultHubWait = 2 * time.Minute

// MaxRetries bounds the transient failures (rate limits, outages) a step
// absorbs before the deployment fails.
const MaxRetries = 8

// Hub is what the chain needs of the Hugging Face Hub.
type Hub interface {
	Inspect(ctx context.Context, id string, token secret.Secret) (*huggingface.Inspection, error)
}

// RunPod is what the chain needs of RunPod.
type RunPod interface {
	CreateEndpoint(ctx context.Context, key secret.Secret, spec runpod.EndpointSpec) (*runpod.Endpoint, error)
	FindEndpoint(ctx context.Context, key secret.Secret, envKey, envValue string) (*runpod.Endpoint, error)
	FindEndpoints(ctx context.Context, key secret.Secret, envKey, envValue string) ([]runpod.Endpoint, error)
	DeleteEndpoint(ctx context.Context, key secret.Secret, id string) error
	Workers(ctx context.Context, key secret.Secret, endpointID string) ([]runpod.Worker, error)
	UpdateScaling(ctx context.Context, key secret.Secret, id string, workersMin, workersMax, idleTimeout int) error
	EndpointSpend(ctx context.Context, key secret.Secret, id string, since time.Time) (runpod.ServerlessSpend, error)
	RunSync(ctx context.Context, key secret.Secret, endpointURL string, input any, wait time.Duration) (*runpod.JobResult, error)
	CancelJob(ctx context.Context, key secret.Secret, endpointURL, id string) error
}

// Sender delivers webhooks.
type Sender interface {
	Send(ctx context.Context, url string, whsec secret.Secret, msgID string, ts time.Time, body []byte) webhook.Result
}

// Steps runs the chain's steps.
type Steps struct {
	Store  store.Store
	Queue  queue.Queue
	Sealer seal.Sealer
	Hub    Hub
	RunPod RunPod
	GPUs   *gpu.Catalog
	// LiveGPUs, when set, is each account's catalogue: GPUs refreshed with
	// the account's live offers (the API validates gpu_tier against it too).
	LiveGPUs *gpu.Live
	Sender   Sender
	// SigningKey is the master key of the per-owner webhook secrets.
	SigningKey secret.Secret
	Images     config.Images
	// CallbackBase is the public base URL of the internal callback.
	CallbackBase string

	PollInterval     time.Duration
	CapacityDeadline time.Duration
	ReadyDeadline    time.Duration
	// WebhookSchedule is the delay before each webhook attempt (index 0:
	// the first). Defaults to webhook.Schedule().
	WebhookSchedule []time.Duration
	// HubWait bounds how long validate keeps retrying a Hub that cannot be
	// reached or answers with errors, from entering validating. Zero means
	// DefaultHubWait.
	HubWait time.Duration
	// RetryBase is the unit of the backoff between runs of a step after a
	// transient failure (rate limit, outage): the n-th retry waits
	// RetryBase·2^n, at most MaxRetryBackoff, and never less than the
	// service's Retry-After. Zero means one second.
	RetryBase time.Duration

	// SpendInterval is how often the spend of a live endpoint is read
	// (DefaultSpendInterval when zero).
	SpendInterval time.Duration
	// SpendTimeout bounds one read of RunPod's billing API
	// (DefaultSpendTimeout when zero); SpendReaders bounds the reads that
	// wait on it at once (DefaultSpendReaders when zero).
	SpendTimeout time.Duration
	SpendReaders int
	spendOnce    sync.Once
	spendSlots   chan struct{}

	// LateCreateWindow is how long after a create got no answer RunPod may
	// still make its endpoint (DefaultLateCreateWindow when zero).
	LateCreateWindow time.Duration

	// CreateLease is how long one create_endpoint run holds the right to
	// create (DefaultCreateLease when zero): a run that died holding it is
	// waited out for that long where its death cannot be known (Cloud Run).
	CreateLease time.Duration

	// RunID names this process's runs of the chain in the create lease
	// (see createEndpoint). SoleRunner says that no other process runs the
	// chain on this store (the embedded runtime: the store file is locked),
	// so a lease another RunID holds is a dead process's and is taken over
	// at once instead of waited out.
	RunID      string
	SoleRunner bool

	Now func() time.Time
	Log *slog.Logger
}

func (s *Steps) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Steps) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Handle runs one task. It is the queue.Handler of the chain.
func (s *Steps) Handle(ctx context.Context, t queue.Task, dl queue.Delivery) error {
	if !deployment.ValidID(t.DeploymentID) {
		s.logger().ErrorContext(ctx, "task for an invalid deployment id dropped", "step", t.Step, "deployment_id", t.DeploymentID)
		return nil
	}
	run, ok := s.handlers()[t.Step]
	if !ok {
		s.logger().ErrorContext(ctx, "task with an unknown step dropped", "step", t.Step, "deployment_id", t.DeploymentID)
		return nil
	}
	err := run(ctx, t)
	if errors.Is(err, store.ErrNotFound) {
		s.logger().WarnContext(ctx, "task for a deployment that does not exist dropped", "step", t.Step, "deployment_id", t.DeploymentID)
		return nil
	}
	if errors.Is(err, store.ErrFull) {
		// The store's disk is full: no write can pass until space returns,
		// which may take longer than the queue's retry budget. The step
		// runs again later, for as long as it takes, so the chain goes on
		// within StorageFullRetry of the space's return.
		delay := s.storageFullRetry()
		s.logger().WarnContext(ctx, "the store's disk is full; the step runs again later", "step", t.Step, "deployment_id", t.DeploymentID,
			"retry_in", delay.String())
		if aerr := s.again(ctx, t, delay); aerr != nil {
			return fmt.Errorf("provision %s %s: %w", t.Step, t.DeploymentID, errors.Join(err, aerr))
		}
		return nil
	}
	if err != nil {
		s.logger().WarnContext(ctx, "step failed; the queue will retry", "step", t.Step, "deployment_id", t.DeploymentID,
			"attempt", dl.Attempt, "error", err.Error())
		return fmt.Errorf("provision %s %s: %w", t.Step, t.DeploymentID, err)
	}
	return nil
}

// handlers maps each step to the method that runs it: one entry for every
// deployment.Steps (a test walks them), so a step the record can owe is
// never dropped as unknown.
func (s *Steps) handlers() map[deployment.Step]func(context.Context, queue.Task) error {
	return map[deployment.Step]func(context.Context, queue.Task) error{
		deployment.StepValidate:       s.validate,
		deployment.StepSelectGPU:      s.selectGPU,
		deployment.StepCreateEndpoint: s.createEndpoint,
		deployment.StepWatch:          s.watch,
		deployment.StepScale:          s.scale,
		deployment.StepTeardown:       s.teardown,
		deployment.StepWebhook:        s.deliverWebhook,
		deployment.StepExpire:         s.expire,
		deployment.StepSpend:          s.readSpend,
	}
}

// storageFullRetry is how long a step whose write found the store's disk
// full waits before it runs again: RetryBase·32 (32 s by default).
func (s *Steps) storageFullRetry() time.Duration { return backoff(s.RetryBase, 5, 0) }

// again schedules the next run of t's step after delay (polling, backoff,
// waiting out a lease): the step continues, so no status change and no
// change feed would enqueue it (queue.Task.Next: same Seq, next Run).
func (s *Steps) again(ctx context.Context, t queue.Task, delay time.Duration) error {
	next := t.Next(delay)
	if err := s.Queue.Enqueue(ctx, next); err != nil {
		return fmt.Errorf("enqueue %s: %w", next.Name(), err)
	}
	return nil
}

// advance commits fn on a deployment that is still in status from; it
// returns (nil, nil) when the deployment has moved on (a late or duplicated task).
func (s *Steps) advance(ctx context.Context, id string, from deployment.Status, fn func(d *deployment.Deployment) error) (*deployment.Deployment, error) {
	d, err := s.Store.Update(ctx, id, func(d *deployment.Deployment) error {
		if d.Status != from {
			return store.ErrNoChange
		}
		return fn(d)
	})
	if errors.Is(err, store.ErrNoChange) {
		return nil, nil
	}
	return d, err
}

// fail moves a deployment still in status from to failed (which owes its
// webhook and the teardown of its endpoint, if one may exist).
func (s *Steps) fail(ctx context.Context, id string, from deployment.Status, msg string) error {
	now := s.now()
	d, err := s.advance(ctx, id, from, func(d *deployment.Deployment) error {
		return d.Fail(now, msg)
	})
	if err != nil || d == nil {
		return err
	}
	return nil
}

// retryLater records a transient failure and runs the step again after a
// backoff (at least retryAfter), or fails the deployment once MaxRetries
// transient failures happened in this status.
func (s *Steps) retryLater(ctx context.Context, t queue.Task, from deployment.Status, retryAfter time.Duration, what string) error {
	return s.retryBefore(ctx, t, from, retryAfter, what, time.Time{})
}

// retryBefore is retryLater bounded by deadline (none when zero): the last
// run is due by then, and once it has passed the deployment fails, the
// message saying how long it waited.
func (s *Steps) retryBefore(ctx context.Context, t queue.Task, from deployment.Status, retryAfter time.Duration, what string, deadline time.Time) error {
	now := s.now()
	var delay, waited time.Duration
	d, err := s.advance(ctx, t.DeploymentID, from, func(d *deployment.Deployment) error {
		if !deadline.IsZero() && !now.Before(deadline) {
			waited = now.Sub(d.StatusChangedAt)
			return errGiveUp
		}
		if d.Retries >= MaxRetries {
			return errGiveUp
		}
		d.Retries++
		delay = backoff(s.RetryBase, d.Retries, retryAfter)
		if !deadline.IsZero() {
			delay = min(delay, deadline.Sub(now))
		}
		d.Log(now, deployment.LevelWarn, "%s; retrying in %s (attempt %d of %d)", what, delay.Round(time.Second), d.Retries+1, MaxRetries+1)
		return nil
	})
	if errors.Is(err, errGiveUp) {
		if waited > 0 {
			return s.fail(ctx, t.DeploymentID, from, fmt.Sprintf("%s; gave up after %s", what, waited.Round(time.Second)))
		}
		return s.fail(ctx, t.DeploymentID, from, fmt.Sprintf("%s; gave up after %d attempts", what, MaxRetries+1))
	}
	if err != nil || d == nil {
		return err
	}
	return s.again(ctx, t, delay)
}

var errGiveUp = errors.New("provision: retries exhausted")

// DefaultLateCreateWindow: RunPod has been seen to finish a create 40 s
// after the client (30 s timeout) gave up.
const DefaultLateCreateWindow = 2 * time.Minute

func (s *Steps) lateCreateWindow() time.Duration {
	if s.LateCreateWindow > 0 {
		return s.LateCreateWindow
	}
	return DefaultLateCreateWindow
}

// MaxRetryBackoff caps the backoff between runs of a step.
const MaxRetryBackoff = 5 * time.Minute

// backoff is base·2^n (n from 1; base one second when zero), capped at
// MaxRetryBackoff, and never less than floor.
func backoff(base time.Duration, n int, floor time.Duration) time.Duration {
	if base <= 0 {
		base = time.Second
	}
	d := base << min(n, 9)
	d = min(d, MaxRetryBackoff)
	return max(d, floor)
}

func (s *Steps) open(ctx context.Context, sealed deployment.Sealed, id, field string) (secret.Secret, error) {
	if len(sealed) == 0 {
		return secret.Secret{}, nil
	}
	v, err := s.Sealer.Open(ctx, sealed, deployment.AssociatedData(id, field))
	if err != nil {
		return secret.Secret{}, fmt.Errorf("open sealed %s of %s: %w", field, id, err)
	}
	return v, nil
}
