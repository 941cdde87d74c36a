// Package notify is the DeploymentChanged function: it reacts to real status
// transitions of a deployment (the store's change feed in the embedded
// runtime, the Firestore trigger in Google Cloud) by enqueuing what the new
// status owes: the webhook, the endpoint's final scaling, its teardown.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// Notifier turns status transitions into tasks.
type Notifier struct {
	Queue queue.Queue
	Log   *slog.Logger
}

// OnChange enqueues the tasks a transition calls for. Writes that do not
// change the status (log lines, the notifier's own bookkeeping) do nothing.
// Task names are deterministic, so a change seen twice enqueues once.
func (n *Notifier) OnChange(ctx context.Context, c store.Change) error {
	if !c.StatusChanged() {
		return nil
	}
	d := c.New
	var steps []string
	switch d.Status {
	case deployment.StatusReady:
		steps = []string{provision.StepScale, provision.StepWebhook}
	case deployment.StatusFailed:
		steps = []string{provision.StepWebhook, provision.StepTeardown}
	case deployment.StatusDeleted:
		steps = []string{provision.StepTeardown}
	default:
		return nil
	}
	var errs []error
	for _, step := range steps {
		if err := n.Queue.Enqueue(ctx, queue.Task{DeploymentID: d.ID, Step: step}); err != nil {
			errs = append(errs, fmt.Errorf("enqueue %s for %s: %w", step, d.ID, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if n.Log != nil {
		from := "(new)"
		if c.Old != nil {
			from = string(c.Old.Status)
		}
		n.Log.DebugContext(ctx, "status changed", "deployment_id", d.ID, "from", from, "to", string(d.Status), "enqueued", steps)
	}
	return nil
}

// Func adapts OnChange to the embedded store's change feed, logging errors
// (the feed cannot retry; the next start resumes what was missed).
func (n *Notifier) Func() store.ChangeFunc {
	return func(ctx context.Context, c store.Change) {
		if err := n.OnChange(ctx, c); err != nil && n.Log != nil {
			n.Log.ErrorContext(ctx, "notify", "error", err.Error())
		}
	}
}
