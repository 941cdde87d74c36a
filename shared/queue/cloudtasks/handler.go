package cloudtasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"

	"github.com/visgate/deployment-orchestrator/shared/queue"
)

// Headers that Cloud Tasks sets on every HTTP task request.
const (
	HeaderTaskName           = "X-CloudTasks-TaskName"
	HeaderQueueName          = "X-CloudTasks-QueueName"
	HeaderTaskRetryCount     = "X-CloudTasks-TaskRetryCount"
	HeaderTaskExecutionCount = "X-CloudTasks-TaskExecutionCount"
)

// maxBodyBytes bounds the request body: a task body is a few ids.
const maxBodyBytes = 64 << 10

// Handler is the receiving side of the queue, served by the ProvisionTask
// function: it decodes the task that Cloud Tasks POSTs and runs h.
//
// Responses, and what Cloud Tasks does with them:
//   - h returns nil: 200, the task is done.
//   - h returns an error or panics: 500 (error logged), Cloud Tasks retries
//     with the queue's backoff, up to its MaxAttempts.
//   - the body can never be a valid task (not JSON, no deployment_id or step,
//     a negative seq, too large): Cloud Tasks retries every non-2xx answer,
//     and a retry would send the same bytes again, so a request that carries
//     the X-CloudTasks-TaskName header gets 200 and an error log line: the
//     task is dropped, and Reconcile repairs the deployment it was about. A
//     request without that header (a person or a misconfigured caller, not
//     Cloud Tasks) gets 400.
//   - a method other than POST: 405.
//
// Delivery.Attempt is X-CloudTasks-TaskRetryCount + 1 (every dispatch so far,
// answered or not); without it, X-CloudTasks-TaskExecutionCount + 1; without
// either, 1. A nil logger discards log lines.
func Handler(h queue.Handler, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		taskName := r.Header.Get(HeaderTaskName)
		fromCloudTasks := taskName != ""
		log := logger.With(slog.String("cloud_task", taskName), slog.String("cloud_queue", r.Header.Get(HeaderQueueName)))

		t, err := decodeTask(w, r)
		if err != nil {
			if fromCloudTasks {
				log.Error("queue: dropping a task whose body can never be valid", slog.Any("error", err))
				w.WriteHeader(http.StatusOK)
				return
			}
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		d := queue.Delivery{Attempt: attempt(r.Header)}
		log = log.With(slog.String("task", t.Name()), slog.String("deployment_id", t.DeploymentID),
			slog.String("step", string(t.Step)), slog.Int("attempt", d.Attempt))

		if err := runHandler(r, h, t, d, log); err != nil {
			log.Warn("queue: task failed, Cloud Tasks will retry", slog.Any("error", err))
			http.Error(w, "task failed", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// runHandler runs h once, turning a panic into an error.
func runHandler(r *http.Request, h queue.Handler, t queue.Task, d queue.Delivery, log *slog.Logger) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
			log.Error("queue: handler panicked", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	return h(r.Context(), t, d)
}

// decodeTask reads the task from the body. Every error it returns is about
// the body itself, which no retry changes.
func decodeTask(w http.ResponseWriter, r *http.Request) (queue.Task, error) {
	var b body
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(&b); err != nil {
		return queue.Task{}, fmt.Errorf("decode task body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return queue.Task{}, errors.New("decode task body: data after the JSON object")
	}
	switch {
	case b.DeploymentID == "":
		return queue.Task{}, errors.New("task body: deployment_id is missing")
	case b.Step == "":
		return queue.Task{}, errors.New("task body: step is missing")
	case b.Seq < 0:
		return queue.Task{}, fmt.Errorf("task body: seq %d is negative", b.Seq)
	case b.Run < 0:
		return queue.Task{}, fmt.Errorf("task body: run %d is negative", b.Run)
	}
	return queue.Task{DeploymentID: b.DeploymentID, Step: b.Step, Seq: b.Seq, Run: b.Run}, nil
}

// attempt derives Delivery.Attempt from Cloud Tasks' counters.
func attempt(h http.Header) int {
	for _, key := range []string{HeaderTaskRetryCount, HeaderTaskExecutionCount} {
		if n, err := strconv.Atoi(h.Get(key)); err == nil && n >= 0 {
			return n + 1
		}
	}
	return 1
}
