package provision_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/queue/inprocess"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// losingQueue loses the tasks lose selects: what a restart does to the
// in-process queue's pending tasks.
type losingQueue struct {
	queue.Queue
	mu   sync.Mutex
	lose func(t queue.Task) bool
	lost []queue.Task
}

func (q *losingQueue) Enqueue(ctx context.Context, t queue.Task) error {
	q.mu.Lock()
	if q.lose != nil && q.lose(t) {
		q.lost = append(q.lost, t)
		q.mu.Unlock()
		return nil
	}
	q.mu.Unlock()
	return q.Queue.Enqueue(ctx, t)
}

func (q *losingQueue) lostCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.lost)
}

func losing(lose func(t queue.Task) bool) (*losingQueue, func(queue.Handler) (queue.Queue, func())) {
	lq := &losingQueue{lose: lose}
	return lq, func(h queue.Handler) (queue.Queue, func()) {
		q, closer := newInprocess(h)
		lq.Queue = q
		return lq, closer
	}
}

// Defect 1 of issue 11: the receiver fails twice, then the process
// restarts while the third attempt is scheduled (in memory only). Resume
// must bring the retry back at its stored time, not drop it because it is
// not due yet.
func TestWebhookRetryScheduledBeforeARestartIsAttempted(t *testing.T) {
	const wait = 1500 * time.Millisecond // > the step's one-second early slack
	lq, nq := losing(func(t queue.Task) bool {
		return t.Step == provision.StepWebhook && t.Delay == wait
	})
	e := newEnv(t, options{
		newQueue: nq,
		respond: func(n int) int {
			if n <= 2 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		},
		steps: func(s *provision.Steps) {
			s.WebhookSchedule = []time.Duration{0, time.Millisecond, wait, wait}
		},
	})
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.waitFor(id, "two failed attempts, the third lost", func(d *deployment.Deployment) bool {
		return d.Webhook.Attempts == 2 && lq.lostCount() == 1
	})
	if d.Webhook.Delivered || d.Webhook.NextAttemptAt.IsZero() {
		t.Fatalf("webhook %+v, want a retry scheduled", d.Webhook)
	}
	// The restart: the queue lost the retry; Resume runs at once.
	lq.mu.Lock()
	lq.lose = nil
	lq.mu.Unlock()
	resume(t, e, d)
	d = e.waitFor(id, "webhook delivered after the restart", func(d *deployment.Deployment) bool {
		return d.Webhook.Delivered || d.Webhook.GaveUp
	})
	if !d.Webhook.Delivered || d.Webhook.Attempts != 3 {
		t.Fatalf("webhook %+v, want delivered at attempt 3", d.Webhook)
	}
	checkDeliveries(t, e, id, provision.EventReady, e.hook.received())
}

// outageRunPod answers 500 to the first n scale and delete calls: a RunPod
// outage longer than the queue's retry budget.
type outageRunPod struct {
	provision.RunPod
	mu             sync.Mutex
	scales, delete int
}

var errOutage = &runpod.Error{Status: http.StatusInternalServerError, Detail: "internal server error"}

func (o *outageRunPod) UpdateScaling(ctx context.Context, key secret.Secret, id string, lo, hi, idle int) error {
	o.mu.Lock()
	fail := o.scales > 0
	o.scales--
	o.mu.Unlock()
	if fail {
		return errOutage
	}
	return o.RunPod.UpdateScaling(ctx, key, id, lo, hi, idle)
}

func (o *outageRunPod) DeleteEndpoint(ctx context.Context, key secret.Secret, id string) error {
	o.mu.Lock()
	fail := o.delete > 0
	o.delete--
	o.mu.Unlock()
	if fail {
		return errOutage
	}
	return o.RunPod.DeleteEndpoint(ctx, key, id)
}

// Defect 3 of issue 11: with the embedded queue's default retry budget (10
// attempts), a RunPod outage longer than it must not abandon the scale or
// the teardown: they retry until RunPod answers, and the log says so.
func TestScaleAndTeardownOutliveTheQueuesRetryBudget(t *testing.T) {
	const outage = 3 * inprocess.DefaultMaxAttempts
	o := &outageRunPod{scales: outage, delete: outage}
	e := newEnv(t, options{
		wrapRunPod: func(rp provision.RunPod) provision.RunPod { o.RunPod = rp; return o },
		newQueue: func(h queue.Handler) (queue.Queue, func()) {
			q := inprocess.New(h, inprocess.Options{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Logger: quiet})
			return q, func() { _ = q.Close(context.Background()) }
		},
	})
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.expectReady(id)
	if !hasLog(d, "retrying") {
		t.Errorf("the scale's retries are not in the log:\n%s", logText(d))
	}
	e.deleteDeployment(id)
	d = e.waitFor(id, "endpoint deleted", func(d *deployment.Deployment) bool { return d.EndpointDeleted })
	if n := len(e.endpointsOf(id)); n != 0 {
		t.Errorf("%d endpoints left after the teardown", n)
	}
	if countLogs(d, "Could not delete RunPod endpoint") == 0 {
		t.Errorf("the teardown's retries are not in the log:\n%s", logText(d))
	}
}
