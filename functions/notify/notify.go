// Package notify is the DeploymentChanged function: it reacts to writes of
// a deployment (the store's change feed in the embedded runtime, the
// Firestore trigger in Google Cloud) by enqueuing what the write made the
// deployment owe (deployment.Owes): the next step of the chain, the
// endpoint's final scaling, the webhook and its retries, the teardown.
package notify

import (
	"context"
	"log/slog"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// Notifier turns writes into tasks.
type Notifier struct {
	Queue queue.Queue
	Now   func() time.Time
	Log   *slog.Logger
}

func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// OnChange enqueues the tasks the deployment owes after the write and did
// not owe before it (queue.NewlyOwed). Writes that change nothing owed (log
// lines, a watch poll) enqueue nothing. Task names come from the record, so
// a change seen twice enqueues once.
func (n *Notifier) OnChange(ctx context.Context, c store.Change) error {
	tasks := queue.NewlyOwed(c.Old, c.New, n.now())
	if len(tasks) == 0 {
		return nil
	}
	if err := queue.EnqueueAll(ctx, n.Queue, tasks); err != nil {
		return err
	}
	if n.Log != nil {
		from := "(new)"
		if c.Old != nil {
			from = string(c.Old.Status)
		}
		names := make([]string, len(tasks))
		for i, t := range tasks {
			names[i] = t.Name()
		}
		n.Log.DebugContext(ctx, "deployment changed", "deployment_id", c.New.ID, "from", from, "to", string(c.New.Status), "enqueued", names)
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
