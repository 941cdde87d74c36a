package provision_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

// heldQueue keeps the tasks it is given (each name once, as Cloud Tasks
// does) until the test takes them and runs them itself.
type heldQueue struct {
	mu    sync.Mutex
	seen  map[string]bool
	tasks []queue.Task
}

func (q *heldQueue) Enqueue(_ context.Context, t queue.Task) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.seen[t.Name()] {
		q.seen[t.Name()] = true
		q.tasks = append(q.tasks, t)
	}
	return nil
}

func (q *heldQueue) take() []queue.Task {
	q.mu.Lock()
	defer q.mu.Unlock()
	ts := q.tasks
	q.tasks = nil
	return ts
}

// allOwedEnqueued waits until the change feed has enqueued every task the
// deployment owes (the limit's and the spend tasks of a live endpoint come
// from one feed event, one after the other): a test that takes the queue
// before then would see the rest arrive later.
func allOwedEnqueued(t *testing.T, e *env, q *heldQueue, id string) {
	t.Helper()
	wait.Until(t, settleTimeout, "every owed task enqueued", func() bool {
		owed := queue.Owed(e.get(id), time.Now())
		q.mu.Lock()
		defer q.mu.Unlock()
		for _, o := range owed {
			if !q.seen[o.Name()] {
				return false
			}
		}
		return len(owed) > 0
	})
}

// runTwice delivers every task the queue holds twice, one after the other,
// until the deployment owes nothing (the change feed enqueues what each
// write made owed); it returns the steps run.
func runTwice(t *testing.T, e *env, q *heldQueue, id string) []string {
	t.Helper()
	var ran []string
	for round := 0; round < 50; round++ {
		var ts []queue.Task
		wait.Until(t, settleTimeout, "a task, or nothing owed", func() bool {
			ts = append(ts, q.take()...)
			return len(ts) > 0 || !e.get(id).NeedsWork()
		})
		if len(ts) == 0 {
			return ran
		}
		for _, task := range ts {
			for copy := 1; copy <= 2; copy++ {
				if err := e.handle(context.Background(), task, queue.Delivery{Attempt: copy}); err != nil {
					t.Fatalf("%s (copy %d): %v", task.Name(), copy, err)
				}
			}
			ran = append(ran, string(task.Step))
		}
	}
	t.Fatal("tasks kept coming after 50 rounds")
	return nil
}

// readyWithEndpoint stores a ready deployment whose RunPod endpoint keeps
// one warm worker, its ready webhook delivered, with limits.
func readyWithEndpoint(t *testing.T, e *env, limits deployment.Limits) *deployment.Deployment {
	t.Helper()
	d := e.insert("openai-community/gpt2", createOpts{limits: limits})
	ep, err := e.rpClient.CreateEndpoint(context.Background(), secret.New(runpodKey), runpod.EndpointSpec{
		Name: "limits", Image: "img:1", Env: map[string]string{deployment.EndpointMarker: d.ID},
		Pools: []string{"AMPERE_48"}, WorkersMin: 1, WorkersMax: 1, IdleTimeout: 5, ContainerDiskGB: 20})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	d, err = e.store.Update(context.Background(), d.ID, func(d *deployment.Deployment) error {
		d.Status, d.ReadyAt, d.Scaled = deployment.StatusReady, now, true
		d.RunPodEndpointID, d.EndpointURL, d.Watch.StartedAt = ep.ID, "https://api.runpod.ai/v2/"+ep.ID, now
		d.GPUPools = []string{"AMPERE_48"}
		d.Webhook.Event, d.Webhook.Delivered, d.Webhook.Attempts, d.Webhook.DeliveredAt = deployment.EventReady, true, 1, now
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestLimitPathTwice delivers every task of the limit path twice in a row
// (spend or expire, then teardown and webhook): each acts once.
func TestLimitPathTwice(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits deployment.Limits
		reason string
		first  deployment.Step
	}{
		{"max spend", deployment.Limits{MaxSpendUSD: 0.01}, deployment.ReasonMaxSpend, deployment.StepSpend},
		{"expires_at", deployment.Limits{ExpiresAt: time.Now().Add(-time.Second)}, deployment.ReasonExpired, deployment.StepExpire},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &heldQueue{seen: map[string]bool{}}
			e := newEnv(t, options{
				rpOpts:   []runpodsim.Option{runpodsim.WithBillingSpeed(3600)},
				newQueue: func(queue.Handler) (queue.Queue, func()) { return q, func() {} },
			})
			d := readyWithEndpoint(t, e, tc.limits)
			wait.Until(t, settleTimeout, "the warm worker bills past the limit", func() bool {
				return e.rp.Spent(runpodKey, d.RunPodEndpointID) > 0.01
			})
			// The record as stored: validate was owed before it was made
			// ready (moot now), then its limit (and, live with an endpoint,
			// its spend reads).
			isFirst := func(t queue.Task) bool { return t.Step == tc.first }
			allOwedEnqueued(t, e, q, d.ID)
			ts := q.take()
			i := slices.IndexFunc(ts, isFirst)
			if ts[0].Step != deployment.StepValidate || i < 1 {
				t.Fatalf("owed %v, want validate then %s", ts, tc.first)
			}
			q.mu.Lock()
			q.tasks = append(q.tasks, ts[i])
			q.mu.Unlock()
			ran := runTwice(t, e, q, d.ID)
			if len(ran) == 0 || ran[0] != string(tc.first) {
				t.Errorf("ran %v, want %s first", ran, tc.first)
			}
			d = e.get(d.ID)
			if d.Status != deployment.StatusDeleted || d.DeletedReason != tc.reason || d.NeedsWork() {
				t.Fatalf("status %s, reason %q, owes %v\n%s", d.Status, d.DeletedReason, d.Owes(), logText(d))
			}
			if n := countLogs(d, "Deleting the deployment"); n != 1 {
				t.Errorf("%d deletion log lines, want 1\n%s", n, logText(d))
			}
			if n := countLogs(d, "RunPod endpoint "+d.RunPodEndpointID+" deleted"); n != 1 {
				t.Errorf("%d teardown log lines, want 1\n%s", n, logText(d))
			}
			if eps := e.endpointsOf(d.ID); len(eps) != 0 {
				t.Errorf("endpoints left: %+v", eps)
			}
			reqs := e.hook.received()
			if len(reqs) != 1 {
				t.Fatalf("the receiver got %d requests, want the one deployment.deleted", len(reqs))
			}
			checkDeliveries(t, e, d.ID, deployment.EventDeleted, reqs)
			if d.Webhook.Attempts != 1 || d.Webhook.SeqBase != 2 {
				t.Errorf("webhook %+v: want one attempt of this event, numbered past the ready event's (1 attempt)", d.Webhook)
			}
		})
	}
}

// TestResumedExpireCopies: every early copy of the expire task (the one
// owed for the expiry, a resume's with another Seq) schedules the next hop
// of the wait under one name derived from the expiry, so the copies merge
// into one wait and none ends it; any copy acts once the expiry has passed.
func TestResumedExpireCopies(t *testing.T) {
	q := &heldQueue{seen: map[string]bool{}}
	e := newEnv(t, options{newQueue: func(queue.Handler) (queue.Queue, func()) { return q, func() {} }})
	ctx := context.Background()
	d := readyWithEndpoint(t, e, deployment.Limits{ExpiresAt: time.Now().Add(time.Hour)})
	allOwedEnqueued(t, e, q, d.ID)
	q.take()
	resumed := queue.Task{DeploymentID: d.ID, Step: deployment.StepExpire, Seq: 1764590000}
	if err := e.handle(ctx, resumed, queue.Delivery{Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	ts := q.take()
	if len(ts) != 1 || ts[0].Seq != 0 || ts[0].Delay <= 59*time.Minute || ts[0].Delay > time.Hour {
		t.Fatalf("an early resumed copy scheduled %v, want the expiry's hop in about an hour", ts)
	}
	owed := queue.Task{DeploymentID: d.ID, Step: deployment.StepExpire, Seq: 0}
	if err := e.handle(ctx, owed, queue.Delivery{Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if again := q.take(); len(again) != 0 {
		t.Errorf("the owed copy scheduled %v besides the resumed copy's %s: want the same hop, once", again, ts[0].Name())
	}
	if _, err := e.store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		d.Limits.ExpiresAt = time.Now().Add(-time.Second) // time passes
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.handle(ctx, resumed, queue.Delivery{Attempt: 2}); err != nil {
		t.Fatal(err)
	}
	if d = e.get(d.ID); d.Status != deployment.StatusDeleted || d.DeletedReason != deployment.ReasonExpired {
		t.Errorf("status %s, reason %q after a due resumed copy", d.Status, d.DeletedReason)
	}
}

// TestFarExpiryOutlivesARestart (issue 23, item 3): after a restart only a
// resume's copy of the expire task is left (another Seq); with the expiry
// three days ahead (DEFAULT_TTL=72h) it must wait on in hops of at most
// queue.MaxDelay and delete the deployment at its time.
func TestFarExpiryOutlivesARestart(t *testing.T) {
	q := &heldQueue{seen: map[string]bool{}}
	clock := time.Now().UTC()
	e := newEnv(t, options{
		newQueue: func(queue.Handler) (queue.Queue, func()) { return q, func() {} },
		steps:    func(s *provision.Steps) { s.Now = func() time.Time { return clock } },
	})
	ctx := context.Background()
	d := readyWithEndpoint(t, e, deployment.Limits{ExpiresAt: clock.Add(72 * time.Hour), ExpiryDefaulted: true})
	allOwedEnqueued(t, e, q, d.ID)
	q.take() // the restart: the queue forgot them
	next := queue.Resumed(e.get(d.ID), clock, int(clock.Unix()))
	for hops := 0; ; hops++ {
		var task queue.Task
		for _, tk := range next {
			if tk.Step == deployment.StepExpire {
				task = tk
			}
		}
		if task.Step == "" {
			t.Fatalf("after %d hops nothing waits for the expiry (tasks %v)\n%s", hops, next, logText(e.get(d.ID)))
		}
		if task.Delay > queue.MaxDelay {
			t.Fatalf("hop %d is delayed %s, more than queue.MaxDelay", hops, task.Delay)
		}
		clock = clock.Add(task.Delay) // the hop comes due
		if err := e.handle(ctx, task, queue.Delivery{Attempt: 1}); err != nil {
			t.Fatal(err)
		}
		if got := e.get(d.ID); got.Status == deployment.StatusDeleted {
			if got.DeletedReason != deployment.ReasonExpired || hops > 4 {
				t.Errorf("deleted (%s) after %d hops", got.DeletedReason, hops)
			}
			return
		}
		next = q.take()
	}
}
