// Package queue chains the provisioning steps. Two implementations pass the
// same conformance suite (queuetest): inprocess (the embedded default) and
// cloudtasks (Google Cloud).
package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
)

// Task asks for one step to run for one deployment. Tasks carry ids only,
// never secrets.
type Task struct {
	DeploymentID string          `json:"deployment_id"`
	Step         deployment.Step `json:"step"`
	// Seq tells owed work of one step apart, from the record
	// (deployment.Owed), or is a resume's fresh number (Resumed).
	Seq int `json:"seq"`
	// Run counts the runs a step scheduled of itself (polling, backoff:
	// the task that follows run n is run n+1 of the same Seq), so they
	// never take the name of owed work. With DeploymentID, Step and Seq it
	// makes the task's name: the same task enqueued twice, or two
	// duplicates scheduling their next run, run once.
	Run int `json:"run,omitempty"`
	// Delay postpones the task (not part of its identity).
	Delay time.Duration `json:"-"`
}

// Name is the task's deterministic name: the same (deployment, step, seq,
// run) always gives the same name.
func (t Task) Name() string {
	if t.Run > 0 {
		return fmt.Sprintf("%s-%s-%d-r%d", t.DeploymentID, t.Step, t.Seq, t.Run)
	}
	return fmt.Sprintf("%s-%s-%d", t.DeploymentID, t.Step, t.Seq)
}

// Next is the task of t's step's next run.
func (t Task) Next(delay time.Duration) Task {
	return Task{DeploymentID: t.DeploymentID, Step: t.Step, Seq: t.Seq, Run: t.Run + 1, Delay: delay}
}

// Delivery is what the queue tells the handler about this run of a task.
type Delivery struct {
	// Attempt counts the runs of this task, from 1. A handler error makes
	// the queue run the task again, with backoff, up to the queue's limit.
	Attempt int
}

// Handler runs a task. A nil return acknowledges it; an error asks for a retry.
type Handler func(ctx context.Context, t Task, d Delivery) error

// Queue delivers tasks to a handler at least once.
type Queue interface {
	// Enqueue schedules t. Enqueuing a task whose name was already enqueued
	// is not an error and does not schedule it again.
	Enqueue(ctx context.Context, t Task) error
}

// MaxDelay is the longest a task is delayed: Cloud Tasks refuses a
// schedule time more than 30 days ahead, and an in-process timer should not
// be held for weeks. Work due later (a far expires_at) runs early, and its
// step schedules itself again until it is due.
const MaxDelay = 24 * time.Hour

// Owed returns the tasks d owes (deployment.Owes), each named from the
// record and delayed until it is due (at most MaxDelay).
func Owed(d *deployment.Deployment, now time.Time) []Task {
	return tasks(d, d.Owes(), now)
}

// tasks names each of owed (work d owes) from the record and delays it
// until it is due (at most MaxDelay).
func tasks(d *deployment.Deployment, owed []deployment.Owed, now time.Time) []Task {
	var ts []Task
	for _, o := range owed {
		t := Task{DeploymentID: d.ID, Step: o.Step, Seq: o.Seq}
		if !o.NotBefore.IsZero() {
			t.Delay = min(max(0, o.NotBefore.Sub(now)), MaxDelay)
		}
		ts = append(ts, t)
	}
	return ts
}

// NewlyOwed returns the tasks that after owes and before did not: what the
// write from before to after made owed (before is nil for a new
// deployment). Work owed on both sides is already enqueued.
func NewlyOwed(before, after *deployment.Deployment, now time.Time) []Task {
	if after == nil {
		return nil
	}
	had := map[string]bool{}
	if before != nil {
		for _, t := range Owed(before, now) {
			had[t.Name()] = true
		}
	}
	var ts []Task
	for _, t := range Owed(after, now) {
		if !had[t.Name()] {
			ts = append(ts, t)
		}
	}
	return ts
}

// Resumed returns every task d owes under names of their own, for a
// resume: the embedded runtime's queue forgot its tasks when it stopped,
// and a lost Cloud Tasks task keeps its name taken, so resuming under the
// record's names could be refused as a duplicate. kick (e.g. the time of
// the resume, in seconds) replaces each sequence number.
func Resumed(d *deployment.Deployment, now time.Time, kick int) []Task {
	return ResumedOf(d, d.Owes(), now, kick)
}

// ResumedOf is Resumed for some of the work d owes (deployment.Overdue:
// what the reconciler finds lost), leaving the rest, whose tasks still
// wait in the queue, as it is.
func ResumedOf(d *deployment.Deployment, owed []deployment.Owed, now time.Time, kick int) []Task {
	ts := tasks(d, owed, now)
	for i := range ts {
		ts[i].Seq = kick
	}
	return ts
}

// EnqueueAll enqueues ts, returning every error.
func EnqueueAll(ctx context.Context, q Queue, ts []Task) error {
	var errs []error
	for _, t := range ts {
		if err := q.Enqueue(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("enqueue %s: %w", t.Name(), err))
		}
	}
	return errors.Join(errs...)
}
