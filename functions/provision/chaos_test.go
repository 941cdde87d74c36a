package provision_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/api"
	"github.com/visgate/deployment-orchestrator/functions/notify"
	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/functions/reconcile"
	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/queue/faultqueue"
	"github.com/visgate/deployment-orchestrator/shared/queue/inprocess"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/seal"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/store/bolt"
	"github.com/visgate/deployment-orchestrator/shared/wait"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

// The chaos property test (issue 11). Each seed drives one schedule: a few
// deployments created over the first moments, some DELETEd at random
// times, the process restarted at random times (pending tasks lost, running
// steps cancelled, a new run id), while the queue loses, fails, holds back
// and duplicates tasks, RunPod answers 429 and 5xx, hangs past the client's
// timeout, makes endpoints after the client gave up and starts workers that
// never come up, and webhook receivers fail, hang or answer slowly. Then the
// faults stop and the property must hold:
//
//   - every deployment reaches what it would without faults (ready, or
//     deleted when it was deleted; webhook_failed when its receiver never
//     answers 2xx), or failed with a documented reason;
//   - no endpoint outlives its deployment, and no deployment ever holds two
//     (checked after every step, all along);
//   - each webhook keeps one id, and is attempted until delivered or given
//     up (webhook_failed).
//
// `make test` runs chaosSeeds; `make chaos SEED=... N=...` runs N seeds
// from SEED (CHAOS_SEED, CHAOS_N). A failing seed is printed; keep it in
// chaosRegressions.

// chaosSeeds run in make test: keep them under a few seconds each.
var chaosSeeds = []uint64{1, 2, 3}

// chaosRegressions are seeds that once broke the property. Timing still
// varies between runs, so each also has a deterministic test:
//   - 127: the scale task lost, then webhook_failed; nothing owed the scale
//     (TestWebhookFailedDeploymentStillOwesItsScale).
var chaosRegressions = []uint64{127}

func TestChaosProperty(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos schedules take seconds")
	}
	seeds := append(slices.Clone(chaosSeeds), chaosRegressions...)
	if env := chaosSeedsFromEnv(t); env != nil {
		seeds = env
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runChaos(t, seed, chaosShape{deployments: 6})
		})
	}
}

// Timings of the chaos world: RunPod's faults must land within the
// late-create window, as RunPod's do within two minutes in production.
const (
	chaosClientTimeout = 150 * time.Millisecond
	chaosHang          = 250 * time.Millisecond
	chaosLateAfter     = 100 * time.Millisecond
	chaosLateWindow    = 600 * time.Millisecond
	// chaosCreateLease: a run "killed" holding the create lease is waited
	// out on the emulators (several instances, none known dead); the
	// settle window must hold it several times over.
	chaosCreateLease   = 5 * time.Second
	chaosSenderTimeout = 150 * time.Millisecond
	chaosReadyDeadline = 2500 * time.Millisecond
	chaosActive        = 1500 * time.Millisecond // schedule length
	chaosSettle        = 40 * time.Second
)

var chaosWebhookSchedule = []time.Duration{0, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}

// Receiver behaviours.
const (
	hookOK    = "ok"
	hookFlaky = "flaky" // 500 twice, then 200
	hookSlow  = "slow"  // 200 after 60 ms
	hookHang  = "hang"  // the first attempt outlasts the sender's timeout
	hookDead  = "dead"  // 503 for ever
)

type chaosWorld struct {
	t    *testing.T
	seed uint64
	rnd  *rand.Rand
	dir  string

	hub   *hubsim.Server
	rp    *runpodsim.Server
	rpc   *runpod.Client
	hooks *chaosHooks
	front *httptest.Server
	fq    *faultqueue.Queue
	cur   atomic.Pointer[chaosNode]
	runs  int

	// gcp, when set, runs each life on the emulator stack instead.
	gcp *chaosGCP

	mu         sync.Mutex
	violations []string
}

// chaosNode is one life of the process.
type chaosNode struct {
	store  store.Store
	steps  *provision.Steps
	api    http.Handler
	cancel context.CancelFunc
	done   chan struct{}
	// close ends what the life runs besides its reconciler.
	close func()
	// tasks and events serve Cloud Tasks and the Firestore trigger (the
	// emulator stack only).
	tasks, events http.Handler
}

type chaosHooks struct {
	*httptest.Server
	mu       sync.Mutex
	behavior map[string]string
	ids      map[string][]string // deployment -> webhook-id of each request
}

func (h *chaosHooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/hooks/")
	_, _ = io.Copy(io.Discard, r.Body)
	h.mu.Lock()
	h.ids[id] = append(h.ids[id], r.Header.Get(webhook.HeaderID))
	n := len(h.ids[id])
	b := h.behavior[id]
	h.mu.Unlock()
	switch b {
	case hookFlaky:
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
	case hookSlow:
		// A slow receiver: time is the point, up to the sender's giving up.
		select {
		case <-r.Context().Done():
		case <-time.After(60 * time.Millisecond):
		}
	case hookHang:
		if n == 1 {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * chaosSenderTimeout):
			}
		}
	case hookDead:
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// chaosSeedsFromEnv returns the seeds CHAOS_SEED and CHAOS_N ask for (N
// seeds from SEED), or nil.
func chaosSeedsFromEnv(t *testing.T) []uint64 {
	v := os.Getenv("CHAOS_SEED")
	if v == "" {
		return nil
	}
	first, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("CHAOS_SEED=%q: %v", v, err)
	}
	n := 1
	if v := os.Getenv("CHAOS_N"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("CHAOS_N=%q: want a positive number", v)
		}
	}
	var seeds []uint64
	for i := range n {
		seeds = append(seeds, first+uint64(i))
	}
	return seeds
}

// chaosShape sizes a schedule.
type chaosShape struct {
	deployments int
	// gcp runs on the emulator stack (Firestore, Cloud Tasks, the trigger
	// through the bridge) instead of the embedded runtime.
	gcp bool
}

func runChaos(t *testing.T, seed uint64, shape chaosShape) {
	w := &chaosWorld{t: t, seed: seed, rnd: rand.New(rand.NewPCG(seed, 0xc4a05)), dir: t.TempDir()}
	defer func() {
		switch {
		case t.Failed() && shape.gcp:
			t.Logf("replay (emulators running): CHAOS_SEED=%d go test -race -run 'TestChaosPropertyOnTheEmulators' ./functions/provision/", seed)
		case t.Failed():
			t.Logf("replay: make chaos SEED=%d N=1   (or CHAOS_SEED=%d go test -race -run 'TestChaosProperty$' ./functions/provision/)", seed, seed)
		}
	}()
	w.hub = hubsim.New()
	t.Cleanup(w.hub.Close)
	w.rp = runpodsim.New(runpodsim.WithBootDelay(30*time.Millisecond), runpodsim.WithCallbackInterval(5*time.Millisecond))
	t.Cleanup(w.rp.Close)
	w.rp.AddAccount(runpodKey, 100)
	w.rpc = runpod.NewClient(w.rp.URL, &http.Client{Timeout: chaosClientTimeout})
	w.hooks = &chaosHooks{behavior: map[string]string{}, ids: map[string][]string{}}
	w.hooks.Server = httptest.NewServer(w.hooks)
	t.Cleanup(w.hooks.Close)
	w.front = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n := w.cur.Load()
		if n == nil {
			http.Error(rw, "restarting", http.StatusServiceUnavailable)
			return
		}
		n.api.ServeHTTP(rw, r)
	}))
	t.Cleanup(w.front.Close)

	faults := faultqueue.Faults{Drop: 0.03, Fail: 0.03, Delay: 0.2, MaxDelay: 20 * time.Millisecond, Duplicate: 0.15}
	w.fq = faultqueue.New(seed, faults)
	w.rp.SetChaos(seed, runpodsim.Chaos{
		RateLimit: 0.05, ServerError: 0.05, Hang: 0.02, HangFor: chaosHang,
		LateCreate: 0.15, LateAfter: chaosLateAfter, NeverStart: 0.1,
	})

	// The schedule, all drawn from the seed.
	type event struct {
		at   time.Duration
		what string // create, delete, restart
		i    int
	}
	n := shape.deployments
	var events []event
	for i := range n {
		events = append(events, event{at: time.Duration(w.rnd.Int64N(int64(chaosActive / 3))), what: "create", i: i})
		if w.rnd.Float64() < 0.35 {
			events = append(events, event{at: chaosActive/3 + time.Duration(w.rnd.Int64N(int64(chaosActive*2/3))), what: "delete", i: i})
		}
	}
	for range 1 + w.rnd.IntN(3) {
		events = append(events, event{at: 50*time.Millisecond + time.Duration(w.rnd.Int64N(int64(chaosActive))), what: "restart"})
	}
	slices.SortStableFunc(events, func(a, b event) int { return int(a.at - b.at) })
	behaviors := []string{hookOK, hookOK, hookOK, hookFlaky, hookSlow, hookHang, hookDead}

	if shape.gcp {
		w.gcp = newChaosGCP(t, w)
	}
	w.start()
	ids := make([]string, n)
	deleted := map[string]bool{}
	begin := time.Now()
	for _, ev := range events {
		if d := time.Until(begin.Add(ev.at)); d > 0 {
			// Time is the point: the schedule's clock (events at their
			// offsets); nothing is asserted here.
			time.Sleep(d)
		}
		switch ev.what {
		case "create":
			ids[ev.i] = w.create(behaviors[w.rnd.IntN(len(behaviors))])
		case "delete":
			if ids[ev.i] != "" {
				w.delete(ids[ev.i])
				deleted[ids[ev.i]] = true
			}
		case "restart":
			w.restart()
		}
	}

	// The faults stop; everything must settle.
	w.fq.SetFaults(faultqueue.Faults{})
	rpFaults := w.rp.ChaosCounts()
	w.rp.SetChaos(seed, runpodsim.Chaos{})
	finals := w.settle(ids)
	w.stop()
	t.Logf("seed %d: %d deployments (%d deleted), %d restarts, queue %+v, runpod %v",
		seed, n, len(deleted), w.runs-1, w.fq.Stats(), rpFaults)
	w.check(finals, deleted)
}

// start begins a life of the process.
func (w *chaosWorld) start() {
	if w.gcp != nil {
		w.startGCP()
		return
	}
	t := w.t
	st, err := bolt.Open(filepath.Join(w.dir, "orchestrator.db"), bolt.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.LocalKeyset(filepath.Join(w.dir, "keyset.json"))
	if err != nil {
		t.Fatal(err)
	}
	w.runs++
	steps := &provision.Steps{
		Store:      st,
		Sealer:     sealer,
		Hub:        huggingface.NewClient(w.hub.URL, nil),
		RunPod:     w.rpc,
		GPUs:       gpu.Default(),
		Sender:     webhook.NewSender(webhook.Options{AllowPrivate: true, Timeout: chaosSenderTimeout}),
		SigningKey: secret.New("whsec-master-key-for-chaos-0123456789"),
		Images: config.Images{
			TextGeneration: "runpod/worker-v1-vllm:stable",
			Inference:      "visgate/inference:test",
		},
		CallbackBase:     w.front.URL,
		PollInterval:     10 * time.Millisecond,
		CapacityDeadline: chaosReadyDeadline,
		ReadyDeadline:    chaosReadyDeadline,
		WebhookSchedule:  chaosWebhookSchedule,
		RetryBase:        time.Millisecond,
		LateCreateWindow: chaosLateWindow,
		CreateLease:      chaosCreateLease,
		RunID:            fmt.Sprintf("run-%d", w.runs),
		SoleRunner:       true,
		Log:              quiet,
	}
	handle := func(ctx context.Context, task queue.Task, dl queue.Delivery) error {
		err := steps.Handle(ctx, task, dl)
		w.checkEndpoints(string(task.Step))
		return err
	}
	// The embedded runtime's queue at its default retry budget.
	q := inprocess.New(w.fq.Handler(handle), inprocess.Options{Workers: 4, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Logger: quiet})
	w.fq.Wrap(q)
	steps.Queue = w.fq
	st.Subscribe((&notify.Notifier{Queue: w.fq, Log: quiet}).Func())
	node := &chaosNode{store: st, steps: steps,
		api: (&api.Server{Store: st, Sealer: sealer, SigningKey: steps.SigningKey, Log: quiet}).Function(api.FnDeploymentReady)}
	node.close = func() {
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		_ = q.Close(cancelled)            // cancels the running steps
		_ = q.Close(context.Background()) // and waits for them
		w.fq.Stop()
		if err := st.Close(); err != nil {
			w.t.Errorf("close store: %v", err)
		}
	}

	// As at start: resume everything unfinished; then the reconciler on a
	// timer, as the embedded runtime runs it.
	ctx, cancel := context.WithCancel(context.Background())
	node.cancel, node.done = cancel, make(chan struct{})
	w.cur.Store(node)
	resumeAll(ctx, st, w.fq)
	w.reconcileEvery(ctx, node, sealer, 300*time.Millisecond)
}

// reconcileEvery runs the reconciler every 100 ms until ctx ends.
func (w *chaosWorld) reconcileEvery(ctx context.Context, node *chaosNode, sealer seal.Sealer, stuckAfter time.Duration) {
	r := &reconcile.Reconciler{Store: node.store, Queue: w.fq, Sealer: sealer, RunPod: w.rpc,
		StuckAfter: stuckAfter, Deadline: time.Hour, Log: quiet}
	go func() {
		defer close(node.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_, _ = r.Run(ctx)
			}
		}
	}()
}

func resumeAll(ctx context.Context, st store.Store, q0 queue.Queue) {
	now := time.Now()
	kick := int(now.UnixMicro())
	q := store.ListQuery{Limit: 100}
	for {
		page, next, err := st.List(ctx, q)
		if err != nil {
			return
		}
		for _, d := range page {
			_ = queue.EnqueueAll(ctx, q0, queue.Resumed(d, now, kick))
		}
		if next == "" {
			return
		}
		q.Cursor = next
	}
}

// stop ends the current life: the reconciler stops, running steps are
// cancelled and waited for, pending tasks are lost, the store is closed.
func (w *chaosWorld) stop() {
	n := w.cur.Swap(nil)
	if n == nil {
		return
	}
	n.cancel()
	<-n.done
	n.close()
}

func (w *chaosWorld) restart() {
	w.stop()
	w.start()
}

// create stores a deployment and enqueues its first step, as POST does.
func (w *chaosWorld) create(behavior string) string {
	t := w.t
	n := w.cur.Load()
	ctx := context.Background()
	now := time.Now().UTC()
	id := deployment.NewID(now)
	sealOne := func(v secret.Secret, field string) deployment.Sealed {
		b, err := n.steps.Sealer.Seal(ctx, v, deployment.AssociatedData(id, field))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	w.hooks.mu.Lock()
	w.hooks.behavior[id] = behavior
	w.hooks.mu.Unlock()
	d := &deployment.Deployment{
		ID:              id,
		Owner:           owner,
		Status:          deployment.StatusValidating,
		StatusChangedAt: now,
		RunPodKey:       sealOne(secret.New(runpodKey), deployment.FieldRunPodKey),
		Webhook:         deployment.Webhook{URL: w.hooks.URL + "/hooks/" + id},
		CreatedAt:       now,
		UpdatedAt:       now,
		Request:         deployment.Request{RequestedModel: "openai-community/gpt2", Scaling: deployment.Scaling{MinWorkers: 0, MaxWorkers: 2, IdleTimeoutSeconds: 5}},
		Model:           deployment.Model{ModelID: "openai-community/gpt2"},
	}
	if err := n.store.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	// The API's enqueue can fail or be lost like any other: the
	// reconciler finds the deployment.
	_ = w.fq.Enqueue(ctx, queue.Task{DeploymentID: id, Step: deployment.StepValidate})
	return id
}

// delete does what DELETE /v1/deployments/{id} does.
func (w *chaosWorld) delete(id string) {
	n := w.cur.Load()
	ctx := context.Background()
	now := time.Now().UTC()
	_, err := n.store.Update(ctx, id, func(d *deployment.Deployment) error {
		if d.Status == deployment.StatusDeleted {
			return store.ErrNoChange
		}
		return d.Transition(now, deployment.StatusDeleted)
	})
	if err != nil && err != store.ErrNoChange {
		w.t.Fatal(err)
	}
	_ = w.fq.Enqueue(ctx, queue.Task{DeploymentID: id, Step: deployment.StepTeardown})
}

// checkEndpoints records a violation when RunPod holds two endpoints for
// one deployment.
func (w *chaosWorld) checkEndpoints(after string) {
	for _, v := range doubledEndpoints(w.rp, after) {
		w.violate("%s", v)
	}
}

func (w *chaosWorld) violate(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.violations = append(w.violations, fmt.Sprintf(format, args...))
}

// settle waits until every deployment is final and owes nothing, and every
// late create has landed; it returns the final records.
func (w *chaosWorld) settle(ids []string) map[string]*deployment.Deployment {
	var out map[string]*deployment.Deployment
	wait.Until(w.t, chaosSettle, "every deployment to settle", func() bool {
		n := w.cur.Load()
		out = map[string]*deployment.Deployment{}
		done := true
		for _, id := range ids {
			d, err := n.store.Get(context.Background(), id)
			if err != nil {
				w.t.Fatalf("%s: %v", id, err)
			}
			out[id] = d
			if !d.Status.Final() || !d.Settled() {
				done = false
			}
		}
		if waiting, _ := w.rp.LateCreates(); waiting > 0 {
			done = false
		}
		return done
	}, func() string {
		var b strings.Builder
		for _, d := range out {
			if !d.Status.Final() || !d.Settled() {
				fmt.Fprintf(&b, "%s: status %s, endpoint %q deleted %v, webhook %+v\n%s",
					d.ID, d.Status, d.RunPodEndpointID, d.EndpointDeleted, d.Webhook, logText(d))
			}
		}
		return b.String()
	})
	return out
}

// documentedFailures are the reasons a deployment may fail under these
// faults (see docs/api.md, Statuses).
var documentedFailures = []string{
	"Model not loaded within",   // a worker that never starts
	"gave up after",             // transient failures past the retry budget
	"Could not validate",        // the Hub unreachable past the budget
	"No GPU capacity in pools",  // a stock-out past the capacity deadline
	"Provisioning did not fini", // the reconciler's overall deadline
}

func (w *chaosWorld) check(finals map[string]*deployment.Deployment, deleted map[string]bool) {
	t := w.t
	for _, v := range w.violations {
		t.Error(v)
	}
	eps := map[string][]runpodsim.Endpoint{}
	for _, ep := range w.rp.Endpoints(runpodKey) {
		eps[ep.Env[workerenv.DeploymentID]] = append(eps[ep.Env[workerenv.DeploymentID]], ep)
	}
	for id, d := range finals {
		w.hooks.mu.Lock()
		behavior, msgIDs := w.hooks.behavior[id], slices.Clone(w.hooks.ids[id])
		w.hooks.mu.Unlock()
		fail := func(format string, args ...any) {
			t.Errorf("%s (receiver %s): %s\n%s", id, behavior, fmt.Sprintf(format, args...), logText(d))
		}
		mine := eps[id]
		switch d.Status {
		case deployment.StatusDeleted:
			if !deleted[id] {
				fail("deleted, but nobody deleted it")
			}
			if len(mine) != 0 || (d.RunPodEndpointID != "" && !d.EndpointDeleted) {
				fail("deleted with %d endpoints left (endpoint_deleted %v)", len(mine), d.EndpointDeleted)
			}
		case deployment.StatusReady, deployment.StatusWebhookFailed:
			if deleted[id] {
				fail("%s, but it was deleted", d.Status)
			}
			if len(mine) != 1 || mine[0].ID != d.RunPodEndpointID {
				fail("%s with endpoints %v, recorded %q", d.Status, mine, d.RunPodEndpointID)
			} else if !d.Scaled || mine[0].WorkersMin != d.Scaling.MinWorkers {
				fail("not scaled: scaled %v, workers min %d", d.Scaled, mine[0].WorkersMin)
			}
			if d.Status == deployment.StatusReady && !d.Webhook.Delivered {
				fail("ready, webhook not delivered: %+v", d.Webhook)
			}
			if d.Status == deployment.StatusWebhookFailed && (behavior != hookDead || !d.Webhook.GaveUp || d.Webhook.Attempts < len(chaosWebhookSchedule)) {
				fail("webhook_failed after %d attempts (gave up %v)", d.Webhook.Attempts, d.Webhook.GaveUp)
			}
			if behavior == hookDead && d.Status == deployment.StatusReady {
				fail("ready with a webhook delivered to a receiver that never answers 2xx")
			}
		case deployment.StatusFailed:
			if !slices.ContainsFunc(documentedFailures, func(p string) bool { return strings.Contains(d.Error, p) }) {
				fail("failed with an undocumented reason %q", d.Error)
			}
			if len(mine) != 0 {
				fail("failed with %d endpoints left", len(mine))
			}
			if !d.Webhook.Delivered && !d.Webhook.GaveUp {
				fail("failed, webhook neither delivered nor given up: %+v", d.Webhook)
			}
		default:
			fail("ended in %s", d.Status)
		}
		// One id for every attempt of the deployment's webhook.
		if ev := d.Webhook.Event; ev != "" {
			want := provision.MessageID(id, ev)
			for i, got := range msgIDs {
				if got != want {
					fail("webhook request %d has id %q, want %q", i+1, got, want)
				}
			}
		}
	}
	// No endpoint outlives its deployment: none of another id either.
	for id, list := range eps {
		if _, ok := finals[id]; !ok {
			t.Errorf("endpoints %v of unknown deployment %q", list, id)
		}
	}
}
