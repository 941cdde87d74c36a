// Package queuetest is the conformance suite that every queue.Queue
// implementation passes.
//
// An implementation's test calls Run with a function that opens a fresh,
// empty queue delivering to the given handler, and registers its teardown
// with t.Cleanup. Subtests run in parallel, so open must be safe to call
// concurrently and each queue it returns must be independent of the others.
//
// That nothing more is delivered (no duplicate, no retry after a success) is
// checked exactly, never by watching for a while. A queue in this process
// runs each test in a testing/synctest bubble (Options.Bubble): its timers
// run on the bubble's clock, so delays cost no time, and the check runs once
// every goroutine of the queue is blocked (synctest.Wait). An out-of-process
// queue (the Cloud Tasks emulator) says itself when it owes nothing more
// (Options.Idle): the check runs once it does.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

// Timeouts are generous: the suite runs against emulators on busy machines.
const (
	// deliveryTimeout bounds the wait for any expected delivery, and for an
	// out-of-process queue to become idle.
	deliveryTimeout = 20 * time.Second
	// delay is the Delay of the delayed-delivery test.
	delay = 2 * time.Second
)

// Options says how the suite drives an implementation.
type Options struct {
	// Bubble runs every test in a testing/synctest bubble, open included:
	// for queues whose goroutines and timers all live in this process.
	Bubble bool
	// Idle reports whether q, a queue that open returned, owes no delivery:
	// no task of it is waiting, being delivered or due for a retry, so no
	// handler call can follow. It must not report idle before the handler
	// call that finished a task has returned. Required without Bubble: the
	// suite polls it to know that nothing more will be delivered.
	Idle func(ctx context.Context, q queue.Queue) (bool, error)
}

// suite runs the tests of one implementation.
type suite struct {
	opts Options
	open func(t *testing.T, h queue.Handler) queue.Queue
}

// Run runs the conformance suite. open returns a new queue that delivers to h.
func Run(t *testing.T, opts Options, open func(t *testing.T, h queue.Handler) queue.Queue) {
	t.Helper()
	if !opts.Bubble && opts.Idle == nil {
		t.Fatal("queuetest: Options needs Bubble or Idle, or the suite cannot tell that nothing more will be delivered")
	}
	s := &suite{opts: opts, open: open}
	t.Run("Delivers", func(t *testing.T) { t.Parallel(); s.in(t, s.testDelivers) })
	t.Run("Dedupe", func(t *testing.T) { t.Parallel(); s.testDedupe(t) })
	t.Run("Retry", func(t *testing.T) { t.Parallel(); s.testRetry(t) })
	t.Run("Delay", func(t *testing.T) { t.Parallel(); s.in(t, s.testDelay) })
	t.Run("Many", func(t *testing.T) { t.Parallel(); s.in(t, s.testMany) })
}

// in runs body, in a bubble when the implementation asks for one.
func (s *suite) in(t *testing.T, body func(t *testing.T)) {
	if s.opts.Bubble {
		synctest.Test(t, body)
		return
	}
	body(t)
}

// settled returns once q has made every delivery it owes by now plus extra:
// in a bubble, after extra on its clock and once the queue's goroutines are
// all blocked; otherwise once Options.Idle reports q idle (a task delayed by
// extra is owed until it is delivered, so extra needs no waiting of its own).
func (s *suite) settled(t *testing.T, q queue.Queue, extra time.Duration) {
	t.Helper()
	if s.opts.Bubble {
		time.Sleep(extra)
		synctest.Wait()
		return
	}
	wait.Until(t, deliveryTimeout+extra, "the queue to owe no delivery", func() bool {
		idle, err := s.opts.Idle(t.Context(), q)
		if err != nil {
			t.Fatalf("Idle: %v", err)
		}
		return idle
	})
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

func (s *suite) testDelivers(t *testing.T) {
	rec := newRecorder(nil)
	q := s.open(t, rec.handle)
	task := queue.Task{DeploymentID: uniqueID("deliver"), Step: "select_gpu", Seq: 3}
	enqueue(t, q, task)

	rec.waitFor(t, deliveryTimeout, "the task", func(c []delivery) bool { return len(c) >= 1 })
	s.settled(t, q, 0)
	want := []delivery{{Task: task, Delivery: queue.Delivery{Attempt: 1}}}
	if diff := cmp.Diff(want, rec.snapshot(), ignoreDelay); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

func (s *suite) testDedupe(t *testing.T) {
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
			s.in(t, func(t *testing.T) {
				s.dedupe(t, uniqueID(fmt.Sprintf("dedupe%d", i)), tc.first, tc.second, tc.waitBetween)
			})
		})
	}
}

func (s *suite) dedupe(t *testing.T, id string, first, second queue.Task, waitBetween bool) {
	rec := newRecorder(nil)
	q := s.open(t, rec.handle)
	first.DeploymentID, second.DeploymentID = id, id
	// A task of another name shows that the queue goes on delivering.
	other := queue.Task{DeploymentID: id, Step: first.Step, Seq: first.Seq + 1}

	enqueue(t, q, first)
	if waitBetween {
		rec.waitFor(t, deliveryTimeout, "the first task", func(c []delivery) bool { return count(c, first.Name()) >= 1 })
	}
	enqueue(t, q, second)
	enqueue(t, q, other)

	rec.waitFor(t, deliveryTimeout, "both names", func(c []delivery) bool {
		return count(c, first.Name()) >= 1 && count(c, other.Name()) >= 1
	})
	s.settled(t, q, first.Delay)
	calls := rec.snapshot()
	if got := count(calls, first.Name()); got != 1 {
		t.Errorf("task %s delivered %d times, want once; deliveries: %+v", first.Name(), got, calls)
	}
	if got := count(calls, other.Name()); got != 1 {
		t.Errorf("task %s delivered %d times, want once; deliveries: %+v", other.Name(), got, calls)
	}
}

func (s *suite) testRetry(t *testing.T) {
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
			s.in(t, func(t *testing.T) { s.retry(t, uniqueID(fmt.Sprintf("retry%d", i)), tc.failures, tc.panics) })
		})
	}
}

func (s *suite) retry(t *testing.T, id string, failures int, panics bool) {
	task := queue.Task{DeploymentID: id, Step: "watch", Seq: 7}
	rec := newRecorder(func(_ queue.Task, d queue.Delivery) error {
		if d.Attempt > failures {
			return nil
		}
		if panics {
			panic(fmt.Sprintf("queuetest: deliberate panic on attempt %d", d.Attempt))
		}
		return errors.New("queuetest: deliberate failure")
	})
	q := s.open(t, rec.handle)
	enqueue(t, q, task)

	rec.waitFor(t, deliveryTimeout, "the successful attempt", func(c []delivery) bool {
		return count(c, task.Name()) > failures
	})
	s.settled(t, q, 0)
	var want []int
	for a := 1; a <= failures+1; a++ {
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
}

func (s *suite) testDelay(t *testing.T) {
	rec := newRecorder(nil)
	q := s.open(t, rec.handle)
	id := uniqueID("delay")
	delayed := queue.Task{DeploymentID: id, Step: "watch", Seq: 1, Delay: delay}
	now := queue.Task{DeploymentID: id, Step: "watch", Seq: 2}

	start := time.Now()
	enqueue(t, q, delayed)
	enqueue(t, q, now)

	rec.waitFor(t, deliveryTimeout+delay, "the delayed task", func(c []delivery) bool { return count(c, delayed.Name()) >= 1 })
	elapsed := time.Since(start)
	earliest := delay / 2 // an external queue's clock is not ours
	if s.opts.Bubble {
		earliest = delay
	}
	if elapsed < earliest {
		t.Errorf("task with Delay %v delivered after %v, want no sooner than %v", delay, elapsed, earliest)
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

func (s *suite) testMany(t *testing.T) {
	const n = 50
	const enqueuers = 5
	rec := newRecorder(nil)
	q := s.open(t, rec.handle)
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
	s.settled(t, q, 0)
	got := make(map[string]int, n)
	for _, c := range rec.snapshot() {
		got[c.Task.Name()]++
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries per task name (-want +got):\n%s", diff)
	}
}
