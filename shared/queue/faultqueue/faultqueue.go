// Package faultqueue injects faults into a queue.Queue and its handler,
// whichever implementation it is (inprocess, cloudtasks): enqueues lost as
// in a crash after the commit and before the enqueue, enqueues that fail,
// tasks held back (so they arrive out of order), and deliveries repeated,
// concurrently, as an at-least-once queue may.
//
// Every decision is a hash of the seed, the task's name and how often that
// name was seen, not a draw from a shared generator: the same seed makes the
// same decisions for the same tasks whatever the goroutines' interleaving,
// so a failing schedule replays.
package faultqueue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/queue"
)

// Faults are the probabilities (0..1) of each fault, per enqueue or per
// delivery.
type Faults struct {
	// Drop loses an enqueue silently (a crash after the commit, before the
	// enqueue; a queue that lost its memory).
	Drop float64
	// Fail makes Enqueue return an error (the queue is unreachable).
	Fail float64
	// Delay holds a task back by up to MaxDelay more than it asked for, so
	// that tasks arrive out of order.
	Delay    float64
	MaxDelay time.Duration
	// Duplicate runs a delivery a second time, concurrently with the first,
	// after up to MaxDelay.
	Duplicate float64
}

// ErrInjected is the error of an enqueue that Faults.Fail failed.
var ErrInjected = errors.New("faultqueue: injected enqueue failure")

// Stats counts the faults injected.
type Stats struct {
	Enqueued, Dropped, Failed, Delayed, Delivered, Duplicated int
}

// Queue is a queue.Queue that injects faults into the one it wraps.
type Queue struct {
	seed uint64

	mu     sync.Mutex
	inner  queue.Queue
	faults Faults
	seen   map[string]int
	stats  Stats
	wg     sync.WaitGroup
	// dupCtx ends the duplicates running now (Stop).
	dupCtx    context.Context
	dupCancel context.CancelFunc
}

var _ queue.Queue = (*Queue)(nil)

// New returns a Queue with faults drawn from seed. Set the queue it wraps
// with Wrap (queues take their handler when made, so the handler is wrapped
// first: see Handler).
func New(seed uint64, f Faults) *Queue {
	q := &Queue{seed: seed, faults: f, seen: map[string]int{}}
	q.dupCtx, q.dupCancel = context.WithCancel(context.Background())
	return q
}

// Wrap sets the queue that receives the tasks that get through.
func (q *Queue) Wrap(inner queue.Queue) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inner = inner
}

// SetFaults changes the faults from now on (Faults{} turns them off).
func (q *Queue) SetFaults(f Faults) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.faults = f
}

// Stats returns the counts so far.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stats
}

// roll returns a number in [0, 1) from the seed, what, the name, and how
// many times (what, name) was rolled before. q.mu must be held.
func (q *Queue) roll(what, name string) float64 {
	k := what + "\x00" + name
	n := q.seen[k]
	q.seen[k] = n + 1
	h := fnv.New64a()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], q.seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(n))
	h.Write(b[:])
	h.Write([]byte(k))
	return float64(mix(h.Sum64())>>11) / (1 << 53)
}

// mix is splitmix64's finaliser: FNV alone leaves the high bits of similar
// inputs alike.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Enqueue passes t on, or loses it, fails, or holds it back.
func (q *Queue) Enqueue(ctx context.Context, t queue.Task) error {
	name := t.Name()
	q.mu.Lock()
	f, inner := q.faults, q.inner
	q.stats.Enqueued++
	r := q.roll("enqueue", name)
	switch {
	case r < f.Drop:
		q.stats.Dropped++
		q.mu.Unlock()
		return nil
	case r < f.Drop+f.Fail:
		q.stats.Failed++
		q.mu.Unlock()
		return fmt.Errorf("enqueue %s: %w", name, ErrInjected)
	}
	if f.MaxDelay > 0 && q.roll("delay", name) < f.Delay {
		q.stats.Delayed++
		t.Delay += time.Duration(q.roll("delay-by", name) * float64(f.MaxDelay))
	}
	q.mu.Unlock()
	if inner == nil {
		return fmt.Errorf("enqueue %s: faultqueue: no queue to wrap (call Wrap)", name)
	}
	return inner.Enqueue(ctx, t)
}

// Handler wraps h: each delivery may run a second time, concurrently,
// after up to MaxDelay, detached from the delivery it copies (an HTTP
// delivery's context ends with its request) until Stop.
func (q *Queue) Handler(h queue.Handler) queue.Handler {
	return func(ctx context.Context, t queue.Task, d queue.Delivery) error {
		name := t.Name()
		q.mu.Lock()
		q.stats.Delivered++
		f := q.faults
		dup := q.roll("duplicate", name) < f.Duplicate
		var wait time.Duration
		stop := q.dupCtx
		if dup {
			q.stats.Duplicated++
			wait = time.Duration(q.roll("duplicate-after", name) * float64(f.MaxDelay))
			q.wg.Add(1)
		}
		q.mu.Unlock()
		if dup {
			dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			go func() {
				defer q.wg.Done()
				defer cancel()
				defer context.AfterFunc(stop, cancel)()
				t2 := time.NewTimer(wait)
				defer t2.Stop()
				select {
				case <-dctx.Done():
					return
				case <-t2.C:
				}
				_ = h(dctx, t, d) // a duplicate's result is not the delivery's
			}()
		}
		return h(ctx, t, d)
	}
}

// Stop cancels the duplicate deliveries still running and waits for them
// (a process that stops takes its duplicates with it); later duplicates
// run as before.
func (q *Queue) Stop() {
	q.mu.Lock()
	cancel := q.dupCancel
	q.dupCtx, q.dupCancel = context.WithCancel(context.Background())
	q.mu.Unlock()
	cancel()
	q.wg.Wait()
}

// Wait waits for the duplicate deliveries still running.
func (q *Queue) Wait() { q.wg.Wait() }
