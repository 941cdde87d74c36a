package inprocess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/queue/queuetest"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

// Every test runs in a testing/synctest bubble: the queue's timers run on
// the bubble's clock, so backoffs and delays cost no time, and
// synctest.Wait returns once every goroutine of the queue is blocked, the
// moment to check that nothing more happens.

// waitTimeout bounds every wait in these tests (on the bubble's clock).
const waitTimeout = 10 * time.Second

// open starts a queue with quick retries and closes it when the test ends.
func open(t *testing.T, h queue.Handler, opts Options) *Queue {
	t.Helper()
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 10 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 50 * time.Millisecond
	}
	q := New(h, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := q.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return q
}

func TestConformance(t *testing.T) {
	queuetest.Run(t, queuetest.Options{Bubble: true}, func(t *testing.T, h queue.Handler) queue.Queue {
		return open(t, h, Options{})
	})
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// logLine is the part of a record the tests compare.
type logLine struct {
	Level   slog.Level
	Message string
	Attrs   map[string]string
}

// lines returns the records at level or above.
func (l *logRecorder) lines(level slog.Level) []logLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logLine
	for _, r := range l.records {
		if r.Level < level {
			continue
		}
		line := logLine{Level: r.Level, Message: r.Message, Attrs: map[string]string{}}
		r.Attrs(func(a slog.Attr) bool {
			line.Attrs[a.Key] = a.Value.String()
			return true
		})
		out = append(out, line)
	}
	return out
}

// calls counts handler calls per task name and keeps their attempts.
type calls struct {
	mu       sync.Mutex
	attempts map[string][]int
}

func (c *calls) record(t queue.Task, d queue.Delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.attempts == nil {
		c.attempts = map[string][]int{}
	}
	c.attempts[t.Name()] = append(c.attempts[t.Name()], d.Attempt)
}

func (c *calls) of(name string) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.attempts[name]...)
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	tests := []struct {
		maxAttempts int
		panics      bool
	}{
		{maxAttempts: 1},
		{maxAttempts: 3},
		{maxAttempts: 3, panics: true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("max=%d,panics=%v", tc.maxAttempts, tc.panics), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var c calls
				logs := &logRecorder{}
				q := open(t, func(_ context.Context, task queue.Task, d queue.Delivery) error {
					c.record(task, d)
					if tc.panics {
						panic("boom")
					}
					return errors.New("endpoint unreachable")
				}, Options{MaxAttempts: tc.maxAttempts, Logger: slog.New(logs)})
				task := queue.Task{DeploymentID: "dep_2026_00000001", Step: "create_endpoint", Seq: 0}
				if err := q.Enqueue(t.Context(), task); err != nil {
					t.Fatal(err)
				}
				giveUp := func() []logLine {
					var out []logLine
					for _, l := range logs.lines(slog.LevelError) {
						if l.Message == "queue: task failed, giving up" {
							out = append(out, l)
						}
					}
					return out
				}
				wait.Until(t, waitTimeout, "the give-up log line", func() bool { return len(giveUp()) > 0 })
				// Nothing runs after giving up, however long one waits: time
				// is the point (the bubble's clock, an hour on at once).
				time.Sleep(time.Hour)
				synctest.Wait()

				var want []int
				for a := 1; a <= tc.maxAttempts; a++ {
					want = append(want, a)
				}
				if diff := cmp.Diff(want, c.of(task.Name())); diff != "" {
					t.Errorf("attempts (-want +got):\n%s", diff)
				}
				wantErr := "endpoint unreachable"
				if tc.panics {
					wantErr = "handler panicked: boom"
				}
				wantLog := []logLine{{
					Level:   slog.LevelError,
					Message: "queue: task failed, giving up",
					Attrs: map[string]string{
						"task":          task.Name(),
						"deployment_id": task.DeploymentID,
						"step":          string(task.Step),
						"attempt":       fmt.Sprint(tc.maxAttempts),
						"max_attempts":  fmt.Sprint(tc.maxAttempts),
						"error":         wantErr,
					},
				}}
				if diff := cmp.Diff(wantLog, giveUp()); diff != "" {
					t.Errorf("give-up log (-want +got):\n%s", diff)
				}
				// A task given up on keeps its name, like in Cloud Tasks.
				if err := q.Enqueue(t.Context(), task); err != nil {
					t.Fatal(err)
				}
				// Time is the point: an hour on the bubble's clock, in which
				// a re-enqueued task would have run.
				time.Sleep(time.Hour)
				synctest.Wait()
				if got := len(c.of(task.Name())); got != tc.maxAttempts {
					t.Errorf("after re-enqueue of a given-up task: %d runs, want %d", got, tc.maxAttempts)
				}
			})
		})
	}
}

func TestWorkersBoundConcurrency(t *testing.T) { synctest.Test(t, testWorkersBoundConcurrency) }

func testWorkersBoundConcurrency(t *testing.T) {
	const workers, tasks = 2, 6
	var (
		mu               sync.Mutex
		running, maxSeen int
		finished         int
	)
	release := make(chan struct{})
	q := open(t, func(ctx context.Context, _ queue.Task, _ queue.Delivery) error {
		mu.Lock()
		running++
		maxSeen = max(maxSeen, running)
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		finished++
		mu.Unlock()
		return nil
	}, Options{Workers: workers})
	for seq := range tasks {
		if err := q.Enqueue(t.Context(), queue.Task{DeploymentID: "dep", Step: "validate", Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	wait.Until(t, waitTimeout, "the workers to be busy", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return running == workers
	})
	// Every goroutine of the queue is blocked: a third handler, if the
	// bound allowed one, would be running now.
	synctest.Wait()
	mu.Lock()
	busy := running
	mu.Unlock()
	if busy != workers {
		t.Errorf("%d handlers running while %d tasks wait, want %d", busy, tasks-workers, workers)
	}
	close(release)
	wait.Until(t, waitTimeout, "every task to finish", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return finished == tasks
	})
	mu.Lock()
	defer mu.Unlock()
	if maxSeen != workers {
		t.Errorf("at most %d handlers ran at once, want %d", maxSeen, workers)
	}
}

func TestCloseWaitsForRunningHandlers(t *testing.T) {
	synctest.Test(t, testCloseWaitsForRunningHandlers)
}

func testCloseWaitsForRunningHandlers(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var handlerErr error
	q := New(func(ctx context.Context, _ queue.Task, _ queue.Delivery) error {
		close(started)
		<-release
		handlerErr = ctx.Err()
		return nil
	}, Options{})
	if err := q.Enqueue(t.Context(), queue.Task{DeploymentID: "dep", Step: "watch"}); err != nil {
		t.Fatal(err)
	}
	<-started

	closed := make(chan error, 1)
	go func() { closed <- q.Close(context.Background()) }()
	synctest.Wait() // Close is blocked, or has returned
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while a handler was running", err)
	default:
	}
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close did not return after the handler did")
	}
	if handlerErr != nil {
		t.Errorf("the handler's context ended before it returned: %v", handlerErr)
	}
}

func TestCloseGivesUpWhenContextEnds(t *testing.T) { synctest.Test(t, testCloseGivesUpWhenContextEnds) }

func testCloseGivesUpWhenContextEnds(t *testing.T) {
	started := make(chan struct{})
	handlerCtxDone := make(chan struct{})
	q := New(func(ctx context.Context, _ queue.Task, _ queue.Delivery) error {
		close(started)
		<-ctx.Done()
		close(handlerCtxDone)
		return ctx.Err()
	}, Options{})
	if err := q.Enqueue(t.Context(), queue.Task{DeploymentID: "dep", Step: "watch"}); err != nil {
		t.Fatal(err)
	}
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := q.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want %v", err, context.DeadlineExceeded)
	}
	select {
	case <-handlerCtxDone:
	case <-time.After(waitTimeout):
		t.Fatal("the running handler's context was not cancelled")
	}
	// The handler has returned by now; a second Close waits for it.
	ctx2, cancel2 := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel2()
	if err := q.Close(ctx2); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseDropsPendingAndRefusesNewTasks(t *testing.T) {
	synctest.Test(t, testCloseDropsPendingAndRefusesNewTasks)
}

func testCloseDropsPendingAndRefusesNewTasks(t *testing.T) {
	var c calls
	q := New(func(_ context.Context, task queue.Task, d queue.Delivery) error {
		c.record(task, d)
		return nil
	}, Options{})
	delayed := queue.Task{DeploymentID: "dep", Step: "watch", Seq: 1, Delay: 200 * time.Millisecond}
	if err := q.Enqueue(t.Context(), delayed); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err := q.Enqueue(t.Context(), queue.Task{DeploymentID: "dep", Step: "watch", Seq: 2})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Close = %v, want %v", err, ErrClosed)
	}
	// Time is the point: the bubble's clock past the pending task's delay.
	time.Sleep(delayed.Delay + time.Hour)
	synctest.Wait()
	if got := c.of(delayed.Name()); len(got) != 0 {
		t.Errorf("pending task ran after Close: attempts %v", got)
	}
}

func TestEnqueueWithEndedContext(t *testing.T) { synctest.Test(t, testEnqueueWithEndedContext) }

func testEnqueueWithEndedContext(t *testing.T) {
	var c calls
	q := open(t, func(_ context.Context, task queue.Task, d queue.Delivery) error {
		c.record(task, d)
		return nil
	}, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	task := queue.Task{DeploymentID: "dep", Step: "validate"}
	if err := q.Enqueue(ctx, task); !errors.Is(err, context.Canceled) {
		t.Fatalf("Enqueue = %v, want %v", err, context.Canceled)
	}
	// The refused task was not remembered: it can be enqueued again.
	if err := q.Enqueue(t.Context(), task); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, waitTimeout, "the task", func() bool { return len(c.of(task.Name())) == 1 })
}

func TestRemembersFinishedNamesUpToTheBound(t *testing.T) {
	synctest.Test(t, testRemembersFinishedNamesUpToTheBound)
}

func testRemembersFinishedNamesUpToTheBound(t *testing.T) {
	var c calls
	q := open(t, func(_ context.Context, task queue.Task, d queue.Delivery) error {
		c.record(task, d)
		return nil
	}, Options{RememberNames: 2})
	task := func(seq int) queue.Task { return queue.Task{DeploymentID: "dep", Step: "watch", Seq: seq} }
	run := func(seq int) {
		t.Helper()
		n := len(c.of(task(seq).Name()))
		if err := q.Enqueue(t.Context(), task(seq)); err != nil {
			t.Fatal(err)
		}
		wait.Until(t, waitTimeout, task(seq).Name(), func() bool { return len(c.of(task(seq).Name())) == n+1 })
	}
	run(1)
	run(2)
	// 1 is the least recently used; seeing it again makes 2 the oldest.
	if err := q.Enqueue(t.Context(), task(1)); err != nil {
		t.Fatal(err)
	}
	run(3) // remembers 3, 1; forgets 2
	run(2) // runs again: remembers 2, 3; forgets 1
	for _, seq := range []int{2, 3} {
		if err := q.Enqueue(t.Context(), task(seq)); err != nil {
			t.Fatal(err)
		}
	}
	run(1) // runs again
	synctest.Wait()
	want := map[int]int{1: 2, 2: 2, 3: 1}
	got := map[int]int{}
	for seq := range want {
		got[seq] = len(c.of(task(seq).Name()))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("runs per seq (-want +got):\n%s", diff)
	}
}

func TestBackoff(t *testing.T) {
	const minWait, maxWait = 200 * time.Millisecond, 30 * time.Second
	tests := []struct {
		attempt int
		// base is the wait before jitter; the result lies in [base/2, base].
		base time.Duration
	}{
		{attempt: 1, base: 200 * time.Millisecond},
		{attempt: 2, base: 400 * time.Millisecond},
		{attempt: 3, base: 800 * time.Millisecond},
		{attempt: 8, base: 25600 * time.Millisecond},
		{attempt: 9, base: maxWait},
		{attempt: 62, base: maxWait},
		{attempt: 1000, base: maxWait},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.attempt), func(t *testing.T) {
			lowest := backoff(tc.attempt, minWait, maxWait, func(int64) int64 { return 0 })
			highest := backoff(tc.attempt, minWait, maxWait, func(n int64) int64 { return n - 1 })
			if want := tc.base - tc.base/2; lowest != want {
				t.Errorf("with no jitter added: %v, want %v", lowest, want)
			}
			if highest != tc.base {
				t.Errorf("with full jitter: %v, want %v", highest, tc.base)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Options
		want Options
	}{
		{
			name: "zero",
			in:   Options{},
			want: Options{Workers: 4, MaxAttempts: 10, MinBackoff: 200 * time.Millisecond, MaxBackoff: 30 * time.Second, RememberNames: 100_000},
		},
		{
			name: "set",
			in:   Options{Workers: 1, MaxAttempts: 2, MinBackoff: time.Second, MaxBackoff: time.Minute, RememberNames: 5},
			want: Options{Workers: 1, MaxAttempts: 2, MinBackoff: time.Second, MaxBackoff: time.Minute, RememberNames: 5},
		},
		{
			name: "max below min",
			in:   Options{MinBackoff: time.Minute, MaxBackoff: time.Second},
			want: Options{Workers: 4, MaxAttempts: 10, MinBackoff: time.Minute, MaxBackoff: time.Minute, RememberNames: 100_000},
		},
		{
			name: "negative",
			in:   Options{Workers: -1, MaxAttempts: -1, MinBackoff: -1, MaxBackoff: -1, RememberNames: -1},
			want: Options{Workers: 4, MaxAttempts: 10, MinBackoff: 200 * time.Millisecond, MaxBackoff: 30 * time.Second, RememberNames: 100_000},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.withDefaults()
			if got.Logger == nil {
				t.Error("Logger is nil")
			}
			got.Logger = nil
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("withDefaults (-want +got):\n%s", diff)
			}
		})
	}
}
