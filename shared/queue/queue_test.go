package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
)

const id = "dep_2026_0a1b2c3d"

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func rec(st deployment.Status, fns ...func(d *deployment.Deployment)) *deployment.Deployment {
	d := &deployment.Deployment{ID: id, Status: st, Webhook: deployment.Webhook{URL: "https://example.com/h"}, Endpoint: deployment.Endpoint{RunPodEndpointID: "ep1"}}
	for _, fn := range fns {
		fn(d)
	}
	return d
}

func retrying(attempts int, at time.Time) func(d *deployment.Deployment) {
	return func(d *deployment.Deployment) { d.Webhook.Attempts, d.Webhook.NextAttemptAt = attempts, at }
}

func TestOwed(t *testing.T) {
	got := queue.Owed(rec(deployment.StatusReady, retrying(2, now.Add(5*time.Second))), now)
	want := []queue.Task{
		{DeploymentID: id, Step: deployment.StepScale},
		{DeploymentID: id, Step: deployment.StepWebhook, Seq: 2, Delay: 5 * time.Second},
		{DeploymentID: id, Step: deployment.StepSpend}, // every live endpoint's spend is read
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Owed (-want +got):\n%s", diff)
	}
	// An attempt already due runs now, not after a negative delay.
	if got := queue.Owed(rec(deployment.StatusReady, retrying(1, now.Add(-time.Minute))), now); got[1].Delay != 0 {
		t.Errorf("overdue attempt delayed %s", got[1].Delay)
	}
}

func TestNewlyOwed(t *testing.T) {
	names := func(ts []queue.Task) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name())
		}
		return out
	}
	scaled := func(d *deployment.Deployment) { d.Scaled = true }
	noEndpoint := func(d *deployment.Deployment) { d.RunPodEndpointID = "" }
	tests := []struct {
		name          string
		before, after *deployment.Deployment
		want          []string
	}{
		{"create", nil, rec(deployment.StatusValidating, noEndpoint), []string{id + "-validate-0"}},
		{"removed", rec(deployment.StatusDeleted), nil, nil},
		{"next status", rec(deployment.StatusValidating), rec(deployment.StatusSelectingGPU), []string{id + "-select_gpu-0"}},
		{"same status, same work", rec(deployment.StatusLoadingModel), rec(deployment.StatusLoadingModel, func(d *deployment.Deployment) { d.Watch.Polls++ }), nil},
		{"the watch goes on across statuses", rec(deployment.StatusDownloadingModel), rec(deployment.StatusLoadingModel), nil},
		{"ready", rec(deployment.StatusLoadingModel), rec(deployment.StatusReady), []string{id + "-scale-0", id + "-webhook-0"}},
		{"a failed attempt owes the next", rec(deployment.StatusReady, scaled), rec(deployment.StatusReady, scaled, retrying(1, now)),
			[]string{id + "-webhook-1"}},
		{"scaled: nothing new", rec(deployment.StatusReady), rec(deployment.StatusReady, scaled), nil},
		{"deleted", rec(deployment.StatusReady, scaled, func(d *deployment.Deployment) { d.Webhook.Delivered = true }),
			rec(deployment.StatusDeleted, scaled), []string{id + "-teardown-0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, names(queue.NewlyOwed(tc.before, tc.after, now))); diff != "" {
				t.Errorf("NewlyOwed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResumedNamesAreFresh(t *testing.T) {
	d := rec(deployment.StatusReady, retrying(3, now.Add(time.Minute)))
	got := queue.Resumed(d, now, 1764590400)
	want := []queue.Task{
		{DeploymentID: id, Step: deployment.StepScale, Seq: 1764590400},
		{DeploymentID: id, Step: deployment.StepWebhook, Seq: 1764590400, Delay: time.Minute},
		{DeploymentID: id, Step: deployment.StepSpend, Seq: 1764590400},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Resumed (-want +got):\n%s", diff)
	}
}

type failingQueue struct{ calls int }

func (q *failingQueue) Enqueue(context.Context, queue.Task) error {
	q.calls++
	return errors.New("unavailable")
}

func TestEnqueueAllTriesEveryTask(t *testing.T) {
	q := &failingQueue{}
	err := queue.EnqueueAll(context.Background(), q, queue.Owed(rec(deployment.StatusReady), now))
	if q.calls != 3 || err == nil {
		t.Fatalf("calls %d, err %v; want 3 calls and an error", q.calls, err)
	}
	if want := "enqueue " + id + "-scale-0: unavailable\nenqueue " + id + "-webhook-0: unavailable\nenqueue " + id + "-spend-0: unavailable"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestNameAndNext(t *testing.T) {
	task := queue.Task{DeploymentID: id, Step: deployment.StepWatch, Seq: 0}
	next := task.Next(3 * time.Second)
	then := next.Next(0)
	want := []string{id + "-watch-0", id + "-watch-0-r1", id + "-watch-0-r2"}
	if diff := cmp.Diff(want, []string{task.Name(), next.Name(), then.Name()}); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if next.Delay != 3*time.Second || next.Seq != 0 || next.Step != deployment.StepWatch || next.DeploymentID != id {
		t.Errorf("Next = %+v", next)
	}
	// A step's own runs never take the name of owed work: the teardown
	// retried after a failure is not the teardown owed once the record
	// learns of another endpoint.
	retry := queue.Task{DeploymentID: id, Step: deployment.StepTeardown}.Next(0)
	owed := queue.Task{DeploymentID: id, Step: deployment.StepTeardown, Seq: 1}
	if retry.Name() == owed.Name() {
		t.Errorf("a retry and owed work share the name %s", owed.Name())
	}
}
