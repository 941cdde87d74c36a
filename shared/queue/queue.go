// Package queue chains the provisioning steps. Two implementations pass the
// same conformance suite (queuetest): inprocess (the embedded default) and
// cloudtasks (Google Cloud).
package queue

import (
	"context"
	"fmt"
	"time"
)

// Task asks for one step to run for one deployment. Tasks carry ids only,
// never secrets.
type Task struct {
	DeploymentID string `json:"deployment_id"`
	Step         string `json:"step"`
	// Seq distinguishes successive runs of the same step (a watch step that
	// polls again, a webhook retry). With DeploymentID and Step it makes the
	// task's name, so the same task enqueued twice runs once.
	Seq int `json:"seq"`
	// Delay postpones the task (not part of its identity).
	Delay time.Duration `json:"-"`
}

// Name is the task's deterministic name: the same (deployment, step, seq)
// always gives the same name.
func (t Task) Name() string {
	return fmt.Sprintf("%s-%s-%d", t.DeploymentID, t.Step, t.Seq)
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
