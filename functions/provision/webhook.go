package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/store/storelog"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

// Event is the body of a webhook POST.
type Event struct {
	Type      string            `json:"type"`
	Timestamp time.Time         `json:"timestamp"`
	Data      deployment.Public `json:"data"`
}

// MessageID is the Standard Webhooks id of a deployment's event: the same
// for every attempt, so receivers can deduplicate.
func MessageID(deploymentID, event string) string {
	return "msg_" + deploymentID + "_" + event[len("deployment."):]
}

func (s *Steps) schedule() []time.Duration {
	if len(s.WebhookSchedule) > 0 {
		return s.WebhookSchedule
	}
	return webhook.Schedule()
}

// deliverWebhook makes one delivery attempt. A failure it may retry is
// committed with the time of the next attempt, which the record then owes
// (the change feed enqueues it, delayed: never a sleep in the handler);
// after the last it gives up, and a ready deployment becomes webhook_failed.
func (s *Steps) deliverWebhook(ctx context.Context, t queue.Task) error {
	d, err := s.Store.Get(ctx, t.DeploymentID)
	if err != nil {
		return err
	}
	if !d.WebhookPending() {
		return nil
	}
	now := s.now()
	if d.Webhook.NextAttemptAt.After(now.Add(time.Second)) {
		// Not due: a duplicate of an earlier attempt's task. The attempt
		// the record owes is enqueued for its time (by the change feed, or
		// by a resume after a restart: queue.Owed delays it until then).
		return nil
	}
	event := d.WebhookEvent()
	msgID := MessageID(d.ID, event)
	body, err := json.Marshal(Event{Type: event, Timestamp: now, Data: d.Public(false)})
	if err != nil {
		return fmt.Errorf("encode webhook: %w", err)
	}
	res := s.Sender.Send(ctx, d.Webhook.URL, webhook.OwnerSecret(s.SigningKey, d.Owner), msgID, now, body)
	if res.Err != nil {
		// The detail (resolved addresses, dial errors) is for operators: it
		// goes on the server log line of the attempt's entry; the owner sees
		// res.Summary().
		ctx = storelog.WithDetail(ctx, slog.String("error", res.Err.Error()))
	}
	sched := s.schedule()
	_, err = s.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		if !d.WebhookPending() || d.WebhookEvent() != event {
			// Delivered or given up meanwhile, or the deployment now owes
			// another event (a limit deleted it while this attempt of the
			// ready event was in flight): this attempt is not that event's.
			return errStop
		}
		w := &d.Webhook
		w.Attempts++
		w.Event, w.MessageID = event, msgID
		w.LastAttemptAt = now
		w.LastStatusCode = res.StatusCode
		w.LastError = res.Summary()
		if res.Delivered {
			w.Delivered, w.DeliveredAt, w.NextAttemptAt = true, now, time.Time{}
			d.Log(now, deployment.LevelInfo, "Webhook %s delivered (HTTP %d, attempt %d)", event, res.StatusCode, w.Attempts)
			return nil
		}
		why := describe(res)
		if res.Retryable && w.Attempts < len(sched) {
			retryIn := max(sched[w.Attempts], res.RetryAfter)
			w.NextAttemptAt = now.Add(retryIn)
			d.Log(now, deployment.LevelWarn, "Webhook attempt %d of %d failed (%s); retrying in %s", w.Attempts, len(sched), why, retryIn)
			return nil
		}
		w.GaveUp, w.NextAttemptAt = true, time.Time{}
		d.Log(now, deployment.LevelError, "Webhook %s not delivered after %d attempts (%s)", event, w.Attempts, why)
		if d.Status == deployment.StatusReady {
			return d.Transition(now, deployment.StatusWebhookFailed)
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

func describe(r webhook.Result) string { return r.Summary() }
