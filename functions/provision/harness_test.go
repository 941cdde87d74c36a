package provision_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/api"
	"github.com/visgate/deployment-orchestrator/functions/notify"
	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
	"github.com/visgate/deployment-orchestrator/shared/queue"
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

const (
	runpodKey = "rpa_test_key_0123456789"
	owner     = "owner_test"
	// settleTimeout bounds every wait for the chain; the chain itself runs
	// on millisecond timings, so reaching it means something is stuck.
	settleTimeout = 20 * time.Second
)

var quiet = slog.New(slog.DiscardHandler)

// receiver is the user's webhook endpoint: it records every request and
// answers what respond says for the n-th one (from 1).
type receiver struct {
	*httptest.Server
	respond func(n int) int

	mu   sync.Mutex
	reqs []received
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, respond func(n int) int) *receiver {
	r := &receiver{respond: respond}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, received{header: req.Header.Clone(), body: body})
		n := len(r.reqs)
		r.mu.Unlock()
		w.WriteHeader(r.respond(n))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// env is one orchestrator wired as in production (app.New with the embedded
// backend), on the simulators, with millisecond timings.
type env struct {
	t          *testing.T
	store      *bolt.Store
	sealer     seal.Sealer
	hub        *hubsim.Server
	rp         *runpodsim.Server
	rpClient   *runpod.Client
	steps      *provision.Steps
	queue      queue.Queue
	hook       *receiver
	signingKey secret.Secret
	// handle runs one task as the queue does, invariant check included.
	handle queue.Handler

	mu         sync.Mutex
	violations []string
}

type options struct {
	rpOpts []runpodsim.Option
	// newQueue makes the queue that runs handle (default: inprocess with
	// small backoffs); its closer runs at cleanup.
	newQueue func(handle queue.Handler) (queue.Queue, func())
	respond  func(n int) int
	steps    func(s *provision.Steps)
	// wrapRunPod wraps the RunPod client the steps use.
	wrapRunPod func(provision.RunPod) provision.RunPod
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "orchestrator.db"))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.LocalKeyset(filepath.Join(dir, "keyset.json"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, sealer: sealer, signingKey: secret.New("whsec-master-key-for-tests-0123456789")}

	e.hub = hubsim.New()
	t.Cleanup(e.hub.Close)
	rpOpts := append([]runpodsim.Option{
		runpodsim.WithBootDelay(20 * time.Millisecond),
		runpodsim.WithCallbackInterval(3 * time.Millisecond),
		runpodsim.WithRequestURLBase(""), // endpoint URLs reach the simulator's job API
	}, o.rpOpts...)
	e.rp = runpodsim.New(rpOpts...)
	t.Cleanup(e.rp.Close)
	e.rp.AddAccount(runpodKey, 100)
	e.rpClient = runpod.NewClient(e.rp.URL, nil)

	if o.respond == nil {
		o.respond = func(int) int { return http.StatusNoContent }
	}
	e.hook = newReceiver(t, o.respond)

	var rp provision.RunPod = e.rpClient
	if o.wrapRunPod != nil {
		rp = o.wrapRunPod(rp)
	}
	e.steps = &provision.Steps{
		Store:      st,
		Sealer:     sealer,
		Hub:        huggingface.NewClient(e.hub.URL, nil),
		RunPod:     rp,
		GPUs:       gpu.Default(),
		Sender:     webhook.NewSender(webhook.Options{AllowPrivate: true, Timeout: 5 * time.Second}),
		SigningKey: e.signingKey,
		Images: config.Images{
			TextGeneration: "runpod/worker-v1-vllm:stable",
			Inference:      "visgate/inference:test",
		},
		PollInterval:     3 * time.Millisecond,
		CapacityDeadline: 10 * time.Second,
		ReadyDeadline:    15 * time.Second,
		WebhookSchedule:  []time.Duration{0, 2 * time.Millisecond, 4 * time.Millisecond},
		RetryBase:        50 * time.Microsecond,
		LateCreateWindow: 20 * time.Millisecond,
		Log:              quiet,
	}
	if o.steps != nil {
		o.steps(e.steps)
	}

	// Every run of a step is followed by the invariant check: RunPod never
	// holds two endpoints for one deployment.
	handle := func(ctx context.Context, task queue.Task, dl queue.Delivery) error {
		err := e.steps.Handle(ctx, task, dl)
		e.checkEndpoints(string(task.Step))
		return err
	}
	e.handle = handle
	var closeQueue func()
	if o.newQueue == nil {
		o.newQueue = newInprocess
	}
	e.queue, closeQueue = o.newQueue(handle)
	e.steps.Queue = e.queue

	// The change feed enqueues what every write made owed, as app.New
	// wires it.
	n := &notify.Notifier{Queue: e.queue, Log: quiet}
	st.Subscribe(n.Func())

	// The inference container's callbacks reach the real internal callback.
	cb := httptest.NewServer((&api.Server{Store: st, Sealer: sealer, SigningKey: e.signingKey, Log: quiet}).Function(api.FnDeploymentReady))
	e.steps.CallbackBase = cb.URL

	// Cleanups run last-registered first: stop the callbacks, the queue
	// (waiting for running handlers), then the store.
	t.Cleanup(func() { _ = st.Close() })
	t.Cleanup(closeQueue)
	t.Cleanup(cb.Close)
	t.Cleanup(func() {
		e.checkEndpoints("end")
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, v := range e.violations {
			t.Error(v)
		}
	})
	return e
}

// newInprocess is the embedded runtime's queue with small backoffs.
func newInprocess(handle queue.Handler) (queue.Queue, func()) {
	q := inprocess.New(handle, inprocess.Options{
		Workers: 4, MaxAttempts: 50, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Logger: quiet,
	})
	return q, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Close(ctx)
	}
}

// checkEndpoints records a violation when RunPod holds more than one
// endpoint for a deployment.
func (e *env) checkEndpoints(after string) {
	if doubled := doubledEndpoints(e.rp, after); len(doubled) > 0 {
		e.mu.Lock()
		e.violations = append(e.violations, doubled...)
		e.mu.Unlock()
	}
}

// doubledEndpoints describes, one a line, each deployment for which RunPod
// holds more than one endpoint; after says when the check ran.
func doubledEndpoints(rp *runpodsim.Server, after string) []string {
	per := map[string][]string{}
	for _, ep := range rp.Endpoints(runpodKey) {
		id := ep.Env[workerenv.DeploymentID]
		per[id] = append(per[id], ep.ID)
	}
	var out []string
	for id, eps := range per {
		if len(eps) > 1 {
			out = append(out, fmt.Sprintf("after %s: RunPod holds %d endpoints for %s: %v", after, len(eps), id, eps))
		}
	}
	return out
}

// endpointsOf returns the simulator's endpoints of deployment id.
func (e *env) endpointsOf(id string) []runpodsim.Endpoint {
	var out []runpodsim.Endpoint
	for _, ep := range e.rp.Endpoints(runpodKey) {
		if ep.Env[workerenv.DeploymentID] == id {
			out = append(out, ep)
		}
	}
	return out
}

type createOpts struct {
	tier    string
	hfToken string
	key     string // RunPod key; default runpodKey
	scaling deployment.Scaling
	webhook string // webhook URL; default the test's receiver
	limits  deployment.Limits
}

// insert stores a new deployment in validating as the API creates it.
func (e *env) insert(model string, o createOpts) *deployment.Deployment {
	e.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	id := deployment.NewID(now)
	if o.key == "" {
		o.key = runpodKey
	}
	if o.webhook == "" {
		o.webhook = e.hook.URL + "/hooks/visgate"
	}
	if o.scaling == (deployment.Scaling{}) {
		o.scaling = deployment.Scaling{MinWorkers: 0, MaxWorkers: 2, IdleTimeoutSeconds: 5}
	}
	sealOne := func(v secret.Secret, field string) deployment.Sealed {
		b, err := e.sealer.Seal(ctx, v, deployment.AssociatedData(id, field))
		if err != nil {
			e.t.Fatal(err)
		}
		return b
	}
	d := &deployment.Deployment{
		ID:              id,
		Owner:           owner,
		Status:          deployment.StatusValidating,
		StatusChangedAt: now,
		RunPodKey:       sealOne(secret.New(o.key), deployment.FieldRunPodKey),
		Webhook:         deployment.Webhook{URL: o.webhook},
		Limits:          o.limits,
		CreatedAt:       now,
		UpdatedAt:       now,
		Request:         deployment.Request{RequestedModel: model, GPUTier: o.tier, Scaling: o.scaling},
		Model:           deployment.Model{ModelID: model},
	}
	if o.hfToken != "" {
		d.HFToken = sealOne(secret.New(o.hfToken), deployment.FieldHFToken)
	}
	d.Log(now, deployment.LevelInfo, "Validating Hugging Face model")
	if err := e.store.Create(ctx, d); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// start creates a deployment as POST does; the change feed enqueues its
// first step.
func (e *env) start(model string, o createOpts) string {
	e.t.Helper()
	return e.insert(model, o).ID
}

func (e *env) get(id string) *deployment.Deployment {
	e.t.Helper()
	d, err := e.store.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// waitFor polls the store until cond holds, failing the test after
// settleTimeout with the deployment's state.
func (e *env) waitFor(id, what string, cond func(d *deployment.Deployment) bool) *deployment.Deployment {
	e.t.Helper()
	var d *deployment.Deployment
	wait.Until(e.t, settleTimeout, id+" "+what, func() bool {
		d = e.get(id)
		return cond(d)
	}, func() string {
		return fmt.Sprintf("status %s, error %q, webhook %+v\n%s", d.Status, d.Error, d.Webhook, logText(d))
	})
	return d
}

// settle waits until the deployment is final and owes nothing more: no
// step, no webhook, no teardown.
func (e *env) settle(id string) *deployment.Deployment {
	e.t.Helper()
	return e.waitFor(id, "settled", func(d *deployment.Deployment) bool {
		return d.Status.Final() && d.Settled()
	})
}

func logText(d *deployment.Deployment) string {
	var b strings.Builder
	for _, l := range d.Logs {
		fmt.Fprintf(&b, "  %s %s\n", l.Level, l.Message)
	}
	return b.String()
}

func hasLog(d *deployment.Deployment, substr string) bool {
	for _, l := range d.Logs {
		if strings.Contains(l.Message, substr) {
			return true
		}
	}
	return false
}

// deleteDeployment does what DELETE /v1/deployments/{id} does.
func (e *env) deleteDeployment(id string) {
	e.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	_, err := e.store.Update(ctx, id, func(d *deployment.Deployment) error {
		if d.Status == deployment.StatusDeleted {
			return store.ErrNoChange
		}
		if err := d.Transition(now, deployment.StatusDeleted); err != nil {
			return err
		}
		d.Log(now, deployment.LevelInfo, "Deletion requested; tearing the RunPod endpoint down")
		return nil
	})
	if err != nil && err != store.ErrNoChange {
		e.t.Fatal(err)
	}
}

// expectFailed waits for the deployment to settle and checks that it failed
// with exactly msg.
func (e *env) expectFailed(id, msg string) *deployment.Deployment {
	e.t.Helper()
	d := e.settle(id)
	if d.Status != deployment.StatusFailed {
		e.t.Fatalf("status %s, want failed\n%s", d.Status, logText(d))
	}
	if d.Error != msg {
		e.t.Errorf("error:\n got %q\nwant %q", d.Error, msg)
	}
	if eps := e.endpointsOf(id); len(eps) != 0 {
		e.t.Errorf("a failed deployment still has RunPod endpoints: %+v", eps)
	}
	// The owner hears about the failure.
	if !d.Webhook.Delivered || d.Webhook.Event != deployment.EventFailed {
		e.t.Errorf("webhook %+v, want %s delivered", d.Webhook, deployment.EventFailed)
	}
	return d
}

// expectReady waits for the deployment to settle and checks that it is
// ready with exactly one endpoint, scaled as asked, its webhook delivered.
func (e *env) expectReady(id string) *deployment.Deployment {
	e.t.Helper()
	d := e.settle(id)
	if d.Status != deployment.StatusReady {
		e.t.Fatalf("status %s (error %q), want ready\n%s", d.Status, d.Error, logText(d))
	}
	eps := e.endpointsOf(id)
	if len(eps) != 1 {
		e.t.Fatalf("RunPod holds %d endpoints for %s, want 1", len(eps), id)
	}
	if eps[0].ID != d.RunPodEndpointID {
		e.t.Errorf("recorded endpoint %s, RunPod has %s", d.RunPodEndpointID, eps[0].ID)
	}
	if !d.Scaled || eps[0].WorkersMin != d.Scaling.MinWorkers || eps[0].WorkersMax != d.Scaling.MaxWorkers {
		e.t.Errorf("scaled %v, endpoint workers %d..%d, want %d..%d", d.Scaled, eps[0].WorkersMin, eps[0].WorkersMax, d.Scaling.MinWorkers, d.Scaling.MaxWorkers)
	}
	if !d.Webhook.Delivered || d.Webhook.Event != deployment.EventReady {
		e.t.Errorf("webhook %+v, want %s delivered", d.Webhook, deployment.EventReady)
	}
	if d.Error != "" {
		e.t.Errorf("ready with error %q", d.Error)
	}
	return d
}
