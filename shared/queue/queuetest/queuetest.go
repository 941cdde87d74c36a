// Package queuetest is the conformance suite that every queue.Queue
// implementation passes.
//
// An implementation's test calls Run with a function that opens a fresh,
// empty queue delivering to the given handler, and registers its teardown
// with t.Cleanup. Subtests run in parallel, so open must be safe to call
// concurrently and each queue it returns must be independent of the others.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/visgate/deployment-orchestrator/shared/queue"
)

// Timeouts are generous: the suite runs against emulators on busy machines.
const (
	// deliveryTimeout bounds the wait for any expected delivery.
	deliveryTimeout = 20 * time.Second
	// quietPeriod is how long the suite watches for a delivery that must not
	// happen (a duplicate, a retry after success).
	quietPeriod = 750 * time.Millisecond
	// delay is the Delay of the delayed-delivery test.
	delay = 2 * time.Second
)

// Run runs the conformance suite. open returns a new queue that delivers to h.
func Run(t *testing.T, open func(t *testing.T, h queue.Handler) queue.Queue) {
	t.Helper()
	t.Run("Delivers", func(t *testing.T) { t.Parallel(); testDelivers(t, open) })
	t.Run("Dedupe", func(t *testing.T) { t.Parallel(); testDedupe(t, open) })
	t.Run("Retry", func(t *testing.T) { t.Parallel(); testRetry(t, open) })
	t.Run("Delay", func(t *testing.T) { t.Parallel(); testDelay(t, open) })
	t.Run("Many", func(t *testing.T) { t.Parallel(); testMany(t, open) })
}

// delivery is one call of the handler, as the recorder saw it.
type delivery struct {
	Task     queue.Task
	Delivery queue.Delivery
}

// recorder is a queue.Handler that remembers every call.
type recorder struct {
	mu    sync.Mutex
	calls []delivery
	// fail decides, under mu, whether a call fails; nil means never.
	fail func(t queue.Task, d queue.Delivery) error
	// changed is closed and replaced on every call.
	changed chan struct{}
}

func newRecorder(fail func(queue.Task, queue.Delivery) error) *recorder {
	return &recorder{fail: fail, changed: make(chan struct{})}
}

func (r *recorder) handle(_ context.Context, t queue.Task, d queue.Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, delivery{Task: t, Delivery: d})
	close(r.changed)
	r.changed = make(chan struct{})
	if r.fail != nil {
		return r.fail(t, d)
	}
	return nil
}

// snapshot returns a copy of the calls so far.
func (r *recorder) snapshot() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.calls...)
}

// waitFor waits until cond holds for the calls so far, or fails the test
// after timeout.
func (r *recorder) waitFor(t *testing.T, timeout time.Duration, what string, cond func([]delivery) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond(r.calls)
		changed := r.changed
		calls := append([]delivery(nil), r.calls...)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s; deliveries so far: %+v", timeout, what, calls)
		}
	}
}

// count returns how many calls delivered a task named name.
func count(calls []delivery, name string) int {
	n := 0
	for _, c := range calls {
		if c.Task.Name() == name {
			n++
		}
	}
	return n
}

// attemptsOf returns the Delivery.Attempt of each call for name, in order.
func attemptsOf(calls []delivery, name string) []int {
	var attempts []int
	for _, c := range calls {
		if c.Task.Name() == name {
			attempts = append(attempts, c.Delivery.Attempt)
		}
	}
	return attempts
}

// ignoreDelay compares tasks by identity: Delay is not part of it.
var ignoreDelay = cmpopts.IgnoreFields(queue.Task{}, "Delay")

// uniqueID returns a deployment id unique to this test run, so that queues
// that remember task names across tests (an emulator) never see a name twice.
func uniqueID(suffix string) string {
	return fmt.Sprintf("dep_%x_%s", time.Now().UnixNano(), suffix)
}

func enqueue(t *testing.T, q queue.Queue, task queue.Task) {
	t.Helper()
	if err := q.Enqueue(t.Context(), task); err != nil {
		t.Fatalf("Enqueue(%+v): %v", task, err)
	}
}

func testDelivers(t *testing.T, open func(*testing.T, queue.Handler) queue.Queue) {
	rec := newRecorder(nil)
	q := open(t, rec.handle)
	task := queue.Task{DeploymentID: uniqueID("deliver"), Step: "select_gpu", Seq: 3}
	enqueue(t, q, task)

	rec.waitFor(t, deliveryTimeout, "the task", func(c []delivery) bool { return len(c) >= 1 })
	time.Sleep(quietPeriod)
	want := []delivery{{Task: task, Delivery: queue.Delivery{Attempt: 1}}}
	if diff := cmp.Diff(want, rec.snapshot(), ignoreDelay); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

func testDedupe(t *testing.T, open func(*testing.T, queue.Handler) queue.Queue) {
	tests := []struct {
		name string
		// second is enqueued after first with the same identity.
		first, second queue.Task
		// waitBetween waits for the first delivery before the second enqueue.
		waitBetween bool
	}{
		{
			name:   "twice at once",
			first:  queue.Task{Step: "validate", Seq: 1},
			second: queue.Task{Step: "validate", Seq: 1},
		},
		{
			name:   "while the first is delayed",
			first:  queue.Task{Step: "watch", Seq: 2, Delay: 300 * time.Millisecond},
			second: queue.Task{Step: "watch", Seq: 2},
		},
		{
			name:        "after the first was delivered",
			first:       queue.Task{Step: "create_endpoint", Seq: 0},
			second:      queue.Task{Step: "create_endpoint", Seq: 0},
			waitBetween: true,
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(nil)
			q := open(t, rec.handle)
			id := uniqueID(fmt.Sprintf("dedupe%d", i))
			first, second := tc.first, tc.second
			first.DeploymentID, second.DeploymentID = id, id
			// A task of another name shows that the queue goes on delivering.
			other := queue.Task{DeploymentID: id, Step: first.Step, Seq: first.Seq + 1}

			enqueue(t, q, first)
			if tc.waitBetween {
				rec.waitFor(t, deliveryTimeout, "the first task", func(c []delivery) bool { return count(c, first.Name()) >= 1 })
			}
			enqueue(t, q, second)
			enqueue(t, q, other)

			rec.waitFor(t, deliveryTimeout, "both names", func(c []delivery) bool {
				return count(c, first.Name()) >= 1 && count(c, other.Name()) >= 1
			})
			time.Sleep(quietPeriod + first.Delay)
			calls := rec.snapshot()
			if got := count(calls, first.Name()); got != 1 {
				t.Errorf("task %s delivered %d times, want once; deliveries: %+v", first.Name(), got, calls)
			}
			if got := count(calls, other.Name()); got != 1 {
				t.Errorf("task %s delivered %d times, want once; deliveries: %+v", other.Name(), got, calls)
			}
		})
	}
}

func testRetry(t *testing.T, open func(*testing.T, queue.Handler) queue.Queue) {
	tests := []struct {
		name string
		// failures is how many attempts fail before one succeeds.
		failures int
		// panics makes the failing attempts panic instead of returning an error.
		panics bool
	}{
		{name: "one error", failures: 1},
		{name: "two errors", failures: 2},
		{name: "a panic", failures: 1, panics: true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			task := queue.Task{DeploymentID: uniqueID(fmt.Sprintf("retry%d", i)), Step: "watch", Seq: 7}
			rec := newRecorder(func(_ queue.Task, d queue.Delivery) error {
				if d.Attempt > tc.failures {
					return nil
				}
				if tc.panics {
					panic(fmt.Sprintf("queuetest: deliberate panic on attempt %d", d.Attempt))
				}
				return errors.New("queuetest: deliberate failure")
			})
			q := open(t, rec.handle)
			enqueue(t, q, task)

			rec.waitFor(t, deliveryTimeout, "the successful attempt", func(c []delivery) bool {
				return count(c, task.Name()) > tc.failures
			})
			time.Sleep(quietPeriod)
			var want []int
			for a := 1; a <= tc.failures+1; a++ {
				want = append(want, a)
			}
			calls := rec.snapshot()
			if diff := cmp.Diff(want, attemptsOf(calls, task.Name())); diff != "" {
				t.Errorf("attempts (-want +got):\n%s", diff)
			}
			for _, c := range calls {
				if diff := cmp.Diff(task, c.Task, ignoreDelay); diff != "" {
					t.Errorf("redelivered task (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func testDelay(t *testing.T, open func(*testing.T, queue.Handler) queue.Queue) {
	rec := newRecorder(nil)
	q := open(t, rec.handle)
	id := uniqueID("delay")
	delayed := queue.Task{DeploymentID: id, Step: "watch", Seq: 1, Delay: delay}
	now := queue.Task{DeploymentID: id, Step: "watch", Seq: 2}

	start := time.Now()
	enqueue(t, q, delayed)
	enqueue(t, q, now)

	rec.waitFor(t, deliveryTimeout+delay, "the delayed task", func(c []delivery) bool { return count(c, delayed.Name()) >= 1 })
	elapsed := time.Since(start)
	if elapsed < delay/2 {
		t.Errorf("task with Delay %v delivered after %v, want no sooner than %v", delay, elapsed, delay/2)
	}
	calls := rec.snapshot()
	var order []string
	for _, c := range calls {
		order = append(order, c.Task.Name())
	}
	// The undelayed task, enqueued after the delayed one, was not held back.
	if diff := cmp.Diff([]string{now.Name(), delayed.Name()}, order); diff != "" {
		t.Errorf("delivery order (-want +got):\n%s", diff)
	}
}

func testMany(t *testing.T, open func(*testing.T, queue.Handler) queue.Queue) {
	const n = 50
	const enqueuers = 5
	rec := newRecorder(nil)
	q := open(t, rec.handle)
	id := uniqueID("many")

	want := make(map[string]int, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range enqueuers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := g; seq < n; seq += enqueuers {
				task := queue.Task{DeploymentID: id, Step: "validate", Seq: seq}
				if err := q.Enqueue(t.Context(), task); err != nil {
					errs <- fmt.Errorf("enqueue %s: %w", task.Name(), err)
				}
			}
		}()
	}
	for seq := range n {
		want[queue.Task{DeploymentID: id, Step: "validate", Seq: seq}.Name()] = 1
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	rec.waitFor(t, deliveryTimeout, fmt.Sprintf("%d tasks", n), func(c []delivery) bool {
		seen := make(map[string]bool, n)
		for _, d := range c {
			seen[d.Task.Name()] = true
		}
		return len(seen) >= n
	})
	time.Sleep(quietPeriod)
	got := make(map[string]int, n)
	for _, c := range rec.snapshot() {
		got[c.Task.Name()]++
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries per task name (-want +got):\n%s", diff)
	}
}
