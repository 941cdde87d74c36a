// Package inprocess is the embedded runtime's queue: a worker pool in the
// process, with delayed tasks, retries with exponential backoff and jitter,
// and deduplication by task name.
//
// Nothing is persisted: tasks still pending when the process stops are lost,
// and the application resumes them from the store on its next start.
package inprocess

import (
	"container/heap"
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/queue"
)

// Defaults for the zero values of Options.
const (
	DefaultWorkers       = 4
	DefaultMaxAttempts   = 10
	DefaultMinBackoff    = 200 * time.Millisecond
	DefaultMaxBackoff    = 30 * time.Second
	DefaultRememberNames = 100_000
)

// ErrClosed is returned by Enqueue once Close has been called.
var ErrClosed = errors.New("inprocess queue: closed")

// Options tunes a Queue. Zero values take the defaults above.
type Options struct {
	// Workers is how many handlers run at once.
	Workers int
	// MaxAttempts is how many times a task runs before the queue gives up
	// on it and logs an error.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait before a retry: the first
	// retry waits about MinBackoff, each next one twice as long, never more
	// than MaxBackoff, with random jitter of up to half the wait.
	MinBackoff, MaxBackoff time.Duration
	// RememberNames is how many names of finished tasks (acknowledged or
	// given up on) the queue remembers to refuse duplicates, the least
	// recently seen forgotten first. Names of pending and running tasks are
	// always remembered.
	RememberNames int
	// Logger receives retries (warning), handler panics and given-up tasks
	// (error). Nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.RememberNames <= 0 {
		o.RememberNames = DefaultRememberNames
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Queue is an in-process queue.Queue. Its methods are safe for concurrent use.
type Queue struct {
	handler queue.Handler
	opts    Options
	log     *slog.Logger

	// handlerCtx is the context handlers run under; Close cancels it when
	// its own context ends before the running handlers do.
	handlerCtx    context.Context
	cancelHandler context.CancelFunc

	work chan *item    // due items, from the dispatcher to the workers
	wake chan struct{} // tells the dispatcher the heap changed
	stop chan struct{} // closed by Close
	wg   sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	nextSeq uint64
	pending timerHeap           // items waiting for their due time
	active  map[string]struct{} // names pending or running
	done    *lru                // names of finished tasks
}

// item is one task waiting for its next run.
type item struct {
	task    queue.Task
	attempt int // the attempt its next run will be
	due     time.Time
	seq     uint64 // enqueue order, to keep FIFO among equal due times
}

var _ queue.Queue = (*Queue)(nil)

// New starts a queue that runs h for every task, with opts.Workers workers.
// Call Close to stop it.
func New(h queue.Handler, opts Options) *Queue {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{
		handler:       h,
		opts:          opts,
		log:           opts.Logger,
		handlerCtx:    ctx,
		cancelHandler: cancel,
		work:          make(chan *item),
		wake:          make(chan struct{}, 1),
		stop:          make(chan struct{}),
		active:        make(map[string]struct{}),
		done:          newLRU(opts.RememberNames),
	}
	q.wg.Add(1 + opts.Workers)
	go q.dispatch()
	for range opts.Workers {
		go q.worker()
	}
	return q
}

// Enqueue schedules t to run after t.Delay. A task whose name is pending,
// running or remembered as finished is not scheduled again.
func (q *Queue) Enqueue(ctx context.Context, t queue.Task) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("enqueue %s: %w", t.Name(), err)
	}
	name := t.Name()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return fmt.Errorf("enqueue %s: %w", name, ErrClosed)
	}
	if _, ok := q.active[name]; ok {
		return nil
	}
	if q.done.touch(name) {
		return nil
	}
	q.active[name] = struct{}{}
	delay := max(t.Delay, 0)
	t.Delay = 0
	q.push(&item{task: t, attempt: 1, due: time.Now().Add(delay)})
	return nil
}

// push adds it to the heap and wakes the dispatcher. q.mu must be held.
func (q *Queue) push(it *item) {
	q.nextSeq++
	it.seq = q.nextSeq
	heap.Push(&q.pending, it)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Close stops the queue: Enqueue fails from now on, pending tasks are
// dropped, and Close waits for running handlers to return. If ctx ends
// first, Close cancels the handlers' context and returns ctx's error without
// waiting further. Calling Close again waits again.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.stop)
		q.pending = nil
	}
	q.mu.Unlock()

	finished := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		q.cancelHandler()
		return nil
	case <-ctx.Done():
		q.cancelHandler()
		return fmt.Errorf("inprocess queue: close: waiting for running handlers: %w", ctx.Err())
	}
}

// dispatch hands items to the workers when they are due.
func (q *Queue) dispatch() {
	defer q.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		q.mu.Lock()
		var next *item
		wait := time.Duration(-1)
		if len(q.pending) > 0 {
			if d := time.Until(q.pending[0].due); d <= 0 {
				next = heap.Pop(&q.pending).(*item)
			} else {
				wait = d
			}
		}
		q.mu.Unlock()

		if next != nil {
			select {
			case q.work <- next:
			case <-q.stop:
				return
			}
			continue
		}
		var fire <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-q.stop:
			return
		case <-q.wake:
		case <-fire:
		}
		timer.Stop()
	}
}

// worker runs due items until the queue stops.
func (q *Queue) worker() {
	defer q.wg.Done()
	for {
		select {
		case <-q.stop:
			return
		case it := <-q.work:
			select {
			case <-q.stop:
				// Handed over as Close began: dropped like the pending ones.
				return
			default:
			}
			q.run(it)
		}
	}
}

// run runs one attempt of it and then acknowledges, reschedules or gives up.
func (q *Queue) run(it *item) {
	name := it.task.Name()
	err := q.call(it)
	if err == nil {
		q.finish(name)
		return
	}
	attrs := []any{
		slog.String("task", name),
		slog.String("deployment_id", it.task.DeploymentID),
		slog.String("step", string(it.task.Step)),
		slog.Int("attempt", it.attempt),
		slog.Any("error", err),
	}
	if it.attempt >= q.opts.MaxAttempts {
		q.log.Error("queue: task failed, giving up", append(attrs, slog.Int("max_attempts", q.opts.MaxAttempts))...)
		q.finish(name)
		return
	}
	wait := backoff(it.attempt, q.opts.MinBackoff, q.opts.MaxBackoff, rand.Int64N)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		// Dropped like every pending task; the application resumes it.
		delete(q.active, name)
		return
	}
	q.log.Warn("queue: task failed, will retry", append(attrs, slog.Duration("backoff", wait))...)
	q.push(&item{task: it.task, attempt: it.attempt + 1, due: time.Now().Add(wait)})
}

// call runs the handler once, turning a panic into an error.
func (q *Queue) call(it *item) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
			q.log.Error("queue: handler panicked",
				slog.String("task", it.task.Name()),
				slog.Any("panic", r),
				slog.String("stack", string(debug.Stack())))
		}
	}()
	return q.handler(q.handlerCtx, it.task, queue.Delivery{Attempt: it.attempt})
}

// finish moves name from the active set to the finished names.
func (q *Queue) finish(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.active, name)
	q.done.add(name)
}

// backoff is the wait before the retry that follows a failed attempt
// (counted from 1): min·2^(attempt-1), capped at max, less a random jitter of
// up to half of it. randN returns a random int64 in [0, n).
func backoff(attempt int, minWait, maxWait time.Duration, randN func(n int64) int64) time.Duration {
	wait := maxWait
	if shift := attempt - 1; shift < 62 {
		if d := minWait << shift; d > 0 && d>>shift == minWait && d < maxWait {
			wait = d
		}
	}
	half := wait / 2
	if half <= 0 {
		return wait
	}
	return wait - half + time.Duration(randN(int64(half)+1))
}

// timerHeap orders items by due time, then by enqueue order.
type timerHeap []*item

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(*item)) }
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return it
}

// lru is a bounded set of names that forgets the least recently used first.
type lru struct {
	capacity int
	order    *list.List // front: most recent; values are names
	index    map[string]*list.Element
}

func newLRU(capacity int) *lru {
	return &lru{capacity: capacity, order: list.New(), index: make(map[string]*list.Element)}
}

// touch reports whether name is in the set, marking it as recently used.
func (l *lru) touch(name string) bool {
	e, ok := l.index[name]
	if ok {
		l.order.MoveToFront(e)
	}
	return ok
}

// add puts name in the set, forgetting the oldest name when full.
func (l *lru) add(name string) {
	if l.touch(name) {
		return
	}
	l.index[name] = l.order.PushFront(name)
	for l.order.Len() > l.capacity {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.index, oldest.Value.(string))
	}
}
