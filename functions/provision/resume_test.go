package provision_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
)

// droppingQueue loses the tasks drop selects (a crash between the commit
// and the enqueue, a queue that lost its memory), once each.
type droppingQueue struct {
	queue.Queue
	mu      sync.Mutex
	drop    map[deployment.Step]int // how many tasks of each step to lose
	dropped []queue.Task
}

func (q *droppingQueue) Enqueue(ctx context.Context, t queue.Task) error {
	q.mu.Lock()
	if q.drop[t.Step] > 0 {
		q.drop[t.Step]--
		q.dropped = append(q.dropped, t)
		q.mu.Unlock()
		return nil
	}
	q.mu.Unlock()
	return q.Queue.Enqueue(ctx, t)
}

func (q *droppingQueue) lost() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.dropped)
}

func dropping(steps ...deployment.Step) (*droppingQueue, func(queue.Handler) (queue.Queue, func())) {
	dq := &droppingQueue{drop: map[deployment.Step]int{}}
	for _, s := range steps {
		dq.drop[s]++
	}
	return dq, func(h queue.Handler) (queue.Queue, func()) {
		q, closer := newInprocess(h)
		dq.Queue = q
		return dq, closer
	}
}

// stalled waits until want tasks were dropped and the deployment stopped
// in status.
func stalled(t *testing.T, e *env, dq *droppingQueue, id string, want int, status deployment.Status) *deployment.Deployment {
	t.Helper()
	d := e.waitFor(id, "stalled", func(d *deployment.Deployment) bool { return dq.lost() == want && d.Status == status })
	if !d.NeedsWork() {
		t.Fatalf("NeedsWork false for a deployment whose task was lost (status %s)", d.Status)
	}
	return d
}

func resume(t *testing.T, e *env, d *deployment.Deployment) {
	t.Helper()
	now := time.Now()
	if err := queue.EnqueueAll(context.Background(), e.queue, queue.Resumed(d, now, int(now.Unix()))); err != nil {
		t.Fatal(err)
	}
}

func TestResumeFinishesADroppedCreateEndpoint(t *testing.T) {
	dq, nq := dropping(deployment.StepCreateEndpoint)
	e := newEnv(t, options{newQueue: nq})
	id := e.start("openai-community/gpt2", createOpts{})
	d := stalled(t, e, dq, id, 1, deployment.StatusCreatingEndpoint)
	if len(e.endpointsOf(id)) != 0 {
		t.Fatal("an endpoint exists though create_endpoint never ran")
	}
	resume(t, e, d)
	e.expectReady(id)
}

func TestResumeFinishesADroppedWatch(t *testing.T) {
	dq, nq := dropping(deployment.StepWatch)
	// Silent: only polling can bring it to ready.
	e := newEnv(t, options{newQueue: nq})
	e.rp.SetSilent(true)
	id := e.start("openai-community/gpt2", createOpts{})
	d := stalled(t, e, dq, id, 1, deployment.StatusDownloadingModel)
	resume(t, e, d)
	e.expectReady(id)
}

func TestResumeFinishesDroppedScaleAndWebhook(t *testing.T) {
	dq, nq := dropping(deployment.StepScale, deployment.StepWebhook)
	e := newEnv(t, options{newQueue: nq})
	id := e.start("openai-community/gpt2", createOpts{})
	d := stalled(t, e, dq, id, 2, deployment.StatusReady)
	if d.Scaled || d.Webhook.Attempts != 0 {
		t.Fatalf("scaled %v, webhook attempts %d before resume", d.Scaled, d.Webhook.Attempts)
	}
	resume(t, e, d)
	e.expectReady(id)
}

func TestResumeFinishesADroppedTeardown(t *testing.T) {
	// The teardown the deletion owes is lost.
	dq, nq := dropping(deployment.StepTeardown)
	e := newEnv(t, options{newQueue: nq})
	id := e.start("openai-community/gpt2", createOpts{})
	e.expectReady(id)
	e.deleteDeployment(id)
	d := e.waitFor(id, "deleted", func(d *deployment.Deployment) bool { return d.Status == deployment.StatusDeleted && dq.lost() == 1 })
	if !d.NeedsWork() || len(e.endpointsOf(id)) != 1 {
		t.Fatalf("NeedsWork %v, %d endpoints", d.NeedsWork(), len(e.endpointsOf(id)))
	}
	resume(t, e, d)
	d = e.settle(id)
	if !d.EndpointDeleted || len(e.endpointsOf(id)) != 0 {
		t.Errorf("endpoint_deleted %v, %d endpoints left", d.EndpointDeleted, len(e.endpointsOf(id)))
	}
}

// A step interrupted by cancellation (shutdown, a request deadline) is not
// a RunPod failure: the deployment stays where it was and resumes.
func TestCancelledStepsAreResumedNotFailed(t *testing.T) {
	dq, nq := dropping(deployment.StepCreateEndpoint)
	e := newEnv(t, options{newQueue: nq})
	id := e.start("openai-community/gpt2", createOpts{})
	stalled(t, e, dq, id, 1, deployment.StatusCreatingEndpoint)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.handle(ctx, queue.Task{DeploymentID: id, Step: deployment.StepCreateEndpoint}, queue.Delivery{Attempt: 1}); err == nil {
		t.Error("a cancelled create_endpoint reported success")
	}
	d := e.get(id)
	if d.Status != deployment.StatusCreatingEndpoint || d.Error != "" {
		t.Fatalf("status %s error %q after a cancelled run", d.Status, d.Error)
	}
	resume(t, e, d)
	e.expectReady(id)

	// A cancelled teardown must not conclude that there is nothing to delete.
	dq.mu.Lock()
	dq.drop[deployment.StepTeardown] = 1 // the one the deletion owes
	dq.mu.Unlock()
	e.deleteDeployment(id)
	e.waitFor(id, "deleted", func(d *deployment.Deployment) bool { return d.Status == deployment.StatusDeleted && dq.lost() == 2 })
	if err := e.handle(ctx, queue.Task{DeploymentID: id, Step: deployment.StepTeardown}, queue.Delivery{Attempt: 1}); err == nil {
		t.Error("a cancelled teardown reported success")
	}
	d = e.get(id)
	if d.EndpointDeleted || len(e.endpointsOf(id)) != 1 {
		t.Fatalf("after a cancelled teardown: endpoint_deleted %v, %d endpoints", d.EndpointDeleted, len(e.endpointsOf(id)))
	}
	resume(t, e, d)
	d = e.settle(id)
	if !d.EndpointDeleted || len(e.endpointsOf(id)) != 0 {
		t.Errorf("endpoint_deleted %v, %d endpoints left", d.EndpointDeleted, len(e.endpointsOf(id)))
	}
}
