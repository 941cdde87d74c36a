package bolt

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// change is one committed write, as the JSON that was stored: every
// subscriber decodes its own deep copy.
type change struct {
	old, new []byte // old is nil on create
}

// feed delivers committed changes to subscribers. Each subscriber has its own
// unbounded queue and goroutine, so a slow subscriber delays only itself and
// a writer never waits for any subscriber: publishing appends to the queues.
type feed struct {
	ctx    context.Context // given to subscribers; cancelled when a drain times out
	cancel context.CancelFunc
	log    *slog.Logger

	mu     sync.Mutex
	subs   []*subscriber
	closed bool
	wg     sync.WaitGroup
}

type subscriber struct {
	fn store.ChangeFunc

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []change
	closing bool
}

func newFeed(log *slog.Logger) *feed {
	ctx, cancel := context.WithCancel(context.Background())
	return &feed{ctx: ctx, cancel: cancel, log: log}
}

func (f *feed) subscribe(fn store.ChangeFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	s := &subscriber{fn: fn}
	s.cond = sync.NewCond(&s.mu)
	f.subs = append(f.subs, s)
	f.wg.Go(func() { s.run(f.ctx, f.log) })
}

// publish queues c for every subscriber. Callers publish in commit order.
func (f *feed) publish(c change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	for _, s := range f.subs {
		s.mu.Lock()
		s.queue = append(s.queue, c)
		s.mu.Unlock()
		s.cond.Signal()
	}
}

// close stops accepting changes and waits until every subscriber has been
// given what was queued. After drain it cancels the subscribers' context and
// waits for them to return; changes still queued then are dropped.
func (f *feed) close(drain time.Duration) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	subs := f.subs
	f.mu.Unlock()

	for _, s := range subs {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.cond.Broadcast()
	}
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(drain)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		f.log.Warn("bolt: change feed subscribers still busy at close; cancelling them", "drain", drain)
		f.cancel()
		<-done
	}
	f.cancel()
}

func (s *subscriber) run(ctx context.Context, log *slog.Logger) {
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closing {
			s.cond.Wait()
		}
		if len(s.queue) == 0 {
			s.mu.Unlock()
			return
		}
		c := s.queue[0]
		s.queue[0] = change{}
		s.queue = s.queue[1:]
		s.mu.Unlock()

		if ctx.Err() != nil {
			return
		}
		sc, err := c.decode()
		if err != nil {
			log.Error("bolt: change feed: decoding a stored record", "error", err)
			continue
		}
		s.fn(ctx, sc)
	}
}

func (c change) decode() (store.Change, error) {
	var sc store.Change
	if c.old != nil {
		sc.Old = new(deployment.Deployment)
		if err := json.Unmarshal(c.old, sc.Old); err != nil {
			return store.Change{}, err
		}
	}
	sc.New = new(deployment.Deployment)
	if err := json.Unmarshal(c.new, sc.New); err != nil {
		return store.Change{}, err
	}
	return sc, nil
}
