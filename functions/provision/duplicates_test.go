package provision_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

// chaosQueue is an at-least-once queue at its worst: like Cloud Tasks it
// refuses a task name it has seen, but it delivers every task it accepts
// `copies` times, concurrently, each copy after its own random jitter (so
// copies and tasks arrive out of order), and redelivers a copy whose run
// failed. Delays are honoured up to maxDelay.
type chaosQueue struct {
	handle    queue.Handler
	copies    int
	maxJitter time.Duration
	maxDelay  time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	rnd    *rand.Rand
	names  map[string]bool
	closed bool
	runs   int
}

func newChaos(copies int) func(queue.Handler) (queue.Queue, func()) {
	return func(h queue.Handler) (queue.Queue, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		q := &chaosQueue{
			handle: h, copies: copies, maxJitter: 3 * time.Millisecond, maxDelay: 5 * time.Millisecond,
			ctx: ctx, cancel: cancel, rnd: rand.New(rand.NewPCG(rand.Uint64(), 1)), names: map[string]bool{},
		}
		return q, q.close
	}
}

var errQueueClosed = errors.New("chaos queue closed")

func (q *chaosQueue) Enqueue(ctx context.Context, t queue.Task) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errQueueClosed
	}
	if q.names[t.Name()] {
		return nil
	}
	q.names[t.Name()] = true
	for range q.copies {
		wait := min(t.Delay, q.maxDelay) + time.Duration(q.rnd.Int64N(int64(q.maxJitter)))
		q.wg.Add(1)
		go q.deliver(t, wait)
	}
	return nil
}

func (q *chaosQueue) deliver(t queue.Task, wait time.Duration) {
	defer q.wg.Done()
	for attempt := 1; attempt <= 50; attempt++ {
		select {
		case <-q.ctx.Done():
			return
		case <-time.After(wait):
		}
		q.mu.Lock()
		q.runs++
		q.mu.Unlock()
		if q.handle(q.ctx, t, queue.Delivery{Attempt: attempt}) == nil {
			return
		}
		wait = time.Millisecond
	}
}

func (q *chaosQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cancel()
	q.wg.Wait()
}

func TestDuplicatedShuffledDeliveryEndsReadyThenDeleted(t *testing.T) {
	e := newEnv(t, options{newQueue: newChaos(3)})
	models := []string{"openai-community/gpt2", "stabilityai/sdxl-turbo", "bert-base-uncased", "Qwen/Qwen2.5-14B-Instruct"}
	var ids []string
	for _, m := range models {
		ids = append(ids, e.start(m, createOpts{}))
	}
	for _, id := range ids {
		d := e.expectReady(id)
		if d.Webhook.Attempts != 1 {
			t.Errorf("%s: webhook attempts %d, want 1", id, d.Webhook.Attempts)
		}
	}
	if n := e.rp.Calls()[runpodsim.OpCreateEndpoint]; n != len(ids) {
		t.Errorf("%d creates for %d deployments", n, len(ids))
	}
	// Delete half; the others keep their endpoint.
	for _, id := range ids[:2] {
		e.deleteDeployment(id)
	}
	for _, id := range ids[:2] {
		d := e.settle(id)
		if d.Status != deployment.StatusDeleted || !d.EndpointDeleted {
			t.Errorf("%s: status %s endpoint_deleted %v", id, d.Status, d.EndpointDeleted)
		}
		if eps := e.endpointsOf(id); len(eps) != 0 {
			t.Errorf("%s: deleted but RunPod holds %d endpoints", id, len(eps))
		}
	}
	for _, id := range ids[2:] {
		if eps := e.endpointsOf(id); len(eps) != 1 {
			t.Errorf("%s: ready but RunPod holds %d endpoints", id, len(eps))
		}
	}
}

func TestDuplicatedShuffledDeliveryOfAFailure(t *testing.T) {
	e := newEnv(t, options{newQueue: newChaos(3), rpOpts: []runpodsim.Option{runpodsim.WithBootDelay(time.Millisecond)}})
	e.rp.SetCrashLoop(true)
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.settle(id)
	if d.Status != deployment.StatusFailed || !d.EndpointDeleted {
		t.Fatalf("status %s endpoint_deleted %v\n%s", d.Status, d.EndpointDeleted, logText(d))
	}
	if eps := e.endpointsOf(id); len(eps) != 0 {
		t.Errorf("failed but RunPod holds %d endpoints", len(eps))
	}
	if n := countLogs(d, "Deployment failed"); n != 1 {
		t.Errorf("%d failure log lines, want 1", n)
	}
}

var allSteps = []deployment.Step{
	deployment.StepValidate, deployment.StepSelectGPU, deployment.StepCreateEndpoint, deployment.StepWatch,
	deployment.StepScale, deployment.StepWebhook, deployment.StepTeardown,
}

// hammer runs random steps of deployment id from several goroutines, stale,
// early and duplicated, until stop is closed.
func hammer(e *env, id string, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			for {
				select {
				case <-stop:
					return
				default:
				}
				step := allSteps[r.IntN(len(allSteps))]
				_ = e.handle(context.Background(), queue.Task{DeploymentID: id, Step: step, Seq: r.IntN(3)}, queue.Delivery{Attempt: 1})
				// Time is the point: random gaps interleave the racing
				// steps differently on every run.
				time.Sleep(time.Duration(r.IntN(500)) * time.Microsecond)
			}
		})
	}
	return &wg
}

func TestStepsRunConcurrentlyAndOutOfOrder(t *testing.T) {
	e := newEnv(t, options{})
	var transitions []string
	var mu sync.Mutex
	e.store.Subscribe(func(_ context.Context, c store.Change) {
		if c.Old != nil && c.New != nil && c.Old.Status != c.New.Status {
			mu.Lock()
			defer mu.Unlock()
			if !c.Old.Status.CanTransition(c.New.Status) {
				transitions = append(transitions, string(c.Old.Status)+"→"+string(c.New.Status))
			}
		}
	})
	id := e.start("openai-community/gpt2", createOpts{})
	stop := make(chan struct{})
	wg := hammer(e, id, stop)
	e.expectReady(id)
	e.deleteDeployment(id)
	e.settle(id)
	close(stop)
	wg.Wait()
	d := e.settle(id)
	if d.Status != deployment.StatusDeleted || !d.EndpointDeleted {
		t.Errorf("status %s endpoint_deleted %v", d.Status, d.EndpointDeleted)
	}
	if eps := e.endpointsOf(id); len(eps) != 0 {
		t.Errorf("deleted but RunPod holds %d endpoints", len(eps))
	}
	if n := e.rp.Calls()[runpodsim.OpCreateEndpoint]; n != 1 {
		t.Errorf("%d creates, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(transitions) > 0 {
		t.Errorf("transitions not allowed: %v", transitions)
	}
}

// hookedRunPod runs before (and after) the first CreateEndpoint call.
type hookedRunPod struct {
	provision.RunPod
	once   sync.Once
	before func()
	after  func(ep *runpod.Endpoint, err error) (*runpod.Endpoint, error)
	done   chan struct{} // closed when the first call returns
}

func (h *hookedRunPod) CreateEndpoint(ctx context.Context, key secret.Secret, spec runpod.EndpointSpec) (*runpod.Endpoint, error) {
	first := false
	h.once.Do(func() { first = true })
	if first && h.before != nil {
		h.before()
	}
	if first {
		defer close(h.done)
	}
	ep, err := h.RunPod.CreateEndpoint(ctx, key, spec)
	if first && h.after != nil {
		return h.after(ep, err)
	}
	return ep, err
}

// deleteInFlight runs a deployment whose DELETE arrives while
// create_endpoint holds the lease: before RunPod creates the endpoint (with
// the teardown running to completion before it exists), after it, or when
// the create's answer is lost.
func deleteInFlight(t *testing.T, when string) {
	var e *env
	var deployID atomic.Value
	var teardownBefore atomic.Bool
	hook := &hookedRunPod{done: make(chan struct{})}
	deleteNow := func() {
		id := deployID.Load().(string)
		e.deleteDeployment(id)
		// The teardown of the deletion runs to its end while the endpoint
		// does not exist yet.
		if err := e.handle(context.Background(), queue.Task{DeploymentID: id, Step: deployment.StepTeardown, Seq: 7}, queue.Delivery{Attempt: 1}); err != nil {
			t.Errorf("teardown: %v", err)
		}
		teardownBefore.Store(e.get(id).EndpointDeleted)
	}
	switch when {
	case "before":
		hook.before = deleteNow
	case "after":
		hook.after = func(ep *runpod.Endpoint, err error) (*runpod.Endpoint, error) {
			deleteNow()
			return ep, err
		}
	case "lost":
		hook.before = deleteNow
		hook.after = func(ep *runpod.Endpoint, err error) (*runpod.Endpoint, error) {
			if err != nil {
				return ep, err
			}
			return nil, &runpod.TransportError{Op: "POST /serverless", Err: io.ErrUnexpectedEOF}
		}
	}
	e = newEnv(t, options{wrapRunPod: func(rp provision.RunPod) provision.RunPod { hook.RunPod = rp; return hook }})
	d := e.insert("openai-community/gpt2", createOpts{})
	deployID.Store(d.ID)
	if err := e.queue.Enqueue(context.Background(), queue.Task{DeploymentID: d.ID, Step: deployment.StepValidate}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hook.done:
	case <-time.After(settleTimeout):
		t.Fatal("create_endpoint never called RunPod")
	}
	d = e.waitFor(d.ID, "deleted and torn down", func(d *deployment.Deployment) bool {
		return d.Status == deployment.StatusDeleted && !d.NeedsWork() && len(e.endpointsOf(d.ID)) == 0
	})
	if when != "after" && !teardownBefore.Load() {
		t.Errorf("the deletion's teardown did not finish before the endpoint existed; the test did not test the race")
	}
	if n := e.rp.Calls()[runpodsim.OpCreateEndpoint]; n != 1 {
		t.Errorf("%d creates, want 1", n)
	}
	if n := e.rp.Calls()[runpodsim.OpDeleteEndpoint]; n < 1 {
		t.Errorf("the endpoint was never deleted\n%s", logText(d))
	}
	if !d.EndpointDeleted {
		t.Errorf("endpoint_deleted false\n%s", logText(d))
	}
}

func TestDeleteWhileCreateInFlightBeforeCreate(t *testing.T) { deleteInFlight(t, "before") }
func TestDeleteWhileCreateInFlightAfterCreate(t *testing.T)  { deleteInFlight(t, "after") }
func TestDeleteWhileCreateInFlightAnswerLost(t *testing.T)   { deleteInFlight(t, "lost") }

// postCallback reports status as the inference container does.
func postCallback(t *testing.T, spec runpod.EndpointSpec, status string) {
	req, err := http.NewRequest(http.MethodPost, spec.Env[workerenv.CallbackURL], strings.NewReader(`{"status":"`+status+`"}`))
	if err != nil {
		t.Error(err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(runpodsim.HeaderInternalAuth, spec.Env[workerenv.CallbackSecret])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("callback %s: HTTP %d", status, resp.StatusCode)
	}
}

// specHook reports container callbacks after RunPod made the endpoint and
// before create_endpoint records it, and runs a watch in that window.
type specHook struct {
	provision.RunPod
	once  sync.Once
	after func(spec runpod.EndpointSpec)
}

func (h *specHook) CreateEndpoint(ctx context.Context, key secret.Secret, spec runpod.EndpointSpec) (*runpod.Endpoint, error) {
	ep, err := h.RunPod.CreateEndpoint(ctx, key, spec)
	if err == nil {
		h.once.Do(func() { h.after(spec) })
	}
	return ep, err
}

func TestCallbacksBeforeTheEndpointIsRecorded(t *testing.T) {
	for _, last := range []string{"downloading_model", "ready"} {
		t.Run(last, func(t *testing.T) {
			var e *env
			var id string
			hook := &specHook{after: func(spec runpod.EndpointSpec) {
				postCallback(t, spec, "downloading_model")
				// A late or duplicated watch lands in the window.
				_ = e.handle(context.Background(), queue.Task{DeploymentID: id, Step: deployment.StepWatch, Seq: 9}, queue.Delivery{Attempt: 1})
				if last == "ready" {
					postCallback(t, spec, "ready")
				}
			}}
			e = newEnv(t, options{
				wrapRunPod: func(rp provision.RunPod) provision.RunPod { hook.RunPod = rp; return hook },
				rpOpts:     []runpodsim.Option{runpodsim.WithSilentContainer()},
			})
			d := e.insert("openai-community/gpt2", createOpts{})
			id = d.ID
			if err := e.queue.Enqueue(context.Background(), queue.Task{DeploymentID: id, Step: deployment.StepValidate}); err != nil {
				t.Fatal(err)
			}
			e.expectReady(id)
		})
	}
}
