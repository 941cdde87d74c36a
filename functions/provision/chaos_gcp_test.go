package provision_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cloudtasksapi "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	gfirestore "cloud.google.com/go/firestore"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/visgate/deployment-orchestrator/functions/api"
	"github.com/visgate/deployment-orchestrator/functions/dev/bridge"
	"github.com/visgate/deployment-orchestrator/functions/notify"
	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/queue/cloudtasks"
	"github.com/visgate/deployment-orchestrator/shared/seal"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/store/firestore"
	"github.com/visgate/deployment-orchestrator/shared/store/firestore/emulatortest"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

// The chaos property on the emulator stack, smaller: Firestore, Cloud
// Tasks delivering every step over HTTP, and the Firestore trigger through
// the dev bridge; a "restart" is a new function instance (its running
// steps cancelled, Cloud Tasks redelivering them) with a new run id. The
// faults and the property are the embedded test's.
func TestChaosPropertyOnTheEmulators(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos schedules take seconds")
	}
	emulatortest.Host(t) // skips without the Firestore emulator
	if os.Getenv("CLOUD_TASKS_EMULATOR_HOST") == "" {
		t.Skip("CLOUD_TASKS_EMULATOR_HOST is not set; `make test` starts the Cloud Tasks emulator")
	}
	seeds := chaosSeedsFromEnv(t)
	if seeds == nil {
		seeds = []uint64{1}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runChaos(t, seed, chaosShape{deployments: 3, gcp: true})
		})
	}
}

// chaosGCP is what outlives the instances: the store, the queue and the
// servers Cloud Tasks and the bridge deliver to.
type chaosGCP struct {
	store  *firestore.Store
	queue  *cloudtasks.Queue
	sealer seal.Sealer
}

func newChaosGCP(t *testing.T, w *chaosWorld) *chaosGCP {
	t.Helper()
	ctx := context.Background()
	project := emulatortest.Project(t, "chaos")
	st, err := firestore.New(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	sealer, err := seal.LocalKeyset(filepath.Join(w.dir, "keyset.json"))
	if err != nil {
		t.Fatal(err)
	}
	g := &chaosGCP{store: st, sealer: sealer}

	// Cloud Tasks and the trigger reach whichever instance runs now.
	front := func(pick func(n *chaosNode) http.Handler) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			n := w.cur.Load()
			if n == nil || pick(n) == nil {
				http.Error(rw, "no instance", http.StatusServiceUnavailable)
				return
			}
			pick(n).ServeHTTP(rw, r)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	tasks := front(func(n *chaosNode) http.Handler { return n.tasks })
	events := front(func(n *chaosNode) http.Handler { return n.events })

	addr := os.Getenv("CLOUD_TASKS_EMULATOR_HOST")
	admin, err := cloudtasksapi.NewClient(ctx, cloudtasks.NewEmulatorClientOptions(addr)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	const parent = "projects/demo-project/locations/us-central1"
	path := parent + "/queues/chaos-" + strings.ToLower(rand.Text())
	if _, err := admin.CreateQueue(ctx, &cloudtaskspb.CreateQueueRequest{Parent: parent, Queue: &cloudtaskspb.Queue{
		Name: path,
		RetryConfig: &cloudtaskspb.RetryConfig{MaxAttempts: 100, MinBackoff: durationpb.New(20 * time.Millisecond),
			MaxBackoff: durationpb.New(300 * time.Millisecond), MaxDoublings: 4},
	}}); err != nil {
		t.Fatalf("create queue: %v", err)
	}
	t.Cleanup(func() {
		_ = admin.DeleteQueue(context.Background(), &cloudtaskspb.DeleteQueueRequest{Name: path})
	})
	if g.queue, err = cloudtasks.New(ctx, cloudtasks.Config{QueuePath: path, TargetURL: tasks.URL + "/ProvisionTask"},
		cloudtasks.NewEmulatorClientOptions(addr)...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.queue.Close() })
	w.fq.Wrap(g.queue)

	// The trigger: the dev bridge turns the emulator's changes into the
	// CloudEvents Eventarc sends.
	client, err := gfirestore.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	bctx, stop := context.WithCancel(ctx)
	listening := make(chan struct{})
	br := &bridge.Bridge{Client: client, ProjectID: project, Collection: firestore.DeploymentsCollection,
		Target: events.URL + "/", HTTP: &http.Client{Timeout: 10 * time.Second}, Log: quiet,
		Listening: func() { close(listening) }}
	done := make(chan struct{})
	go func() { defer close(done); _ = br.Run(bctx) }()
	t.Cleanup(func() { stop(); <-done })
	select {
	case <-listening:
	case <-time.After(30 * time.Second):
		t.Fatal("the bridge did not start listening")
	}
	return g
}

// startGCP begins a life of a function instance on the emulator stack.
func (w *chaosWorld) startGCP() {
	t, g := w.t, w.gcp
	w.runs++
	steps := &provision.Steps{
		Store:      g.store,
		Queue:      w.fq,
		Sealer:     g.sealer,
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
		PollInterval:     100 * time.Millisecond, // Firestore writes take milliseconds
		CapacityDeadline: 4 * chaosReadyDeadline,
		ReadyDeadline:    4 * chaosReadyDeadline,
		WebhookSchedule:  chaosWebhookSchedule,
		RetryBase:        time.Millisecond,
		LateCreateWindow: chaosLateWindow,
		CreateLease:      chaosCreateLease,
		RunID:            fmt.Sprintf("instance-%d", w.runs),
		SoleRunner:       false, // Cloud Run may run several instances
		Log:              quiet,
	}
	life, endLife := context.WithCancel(context.Background())
	var running sync.WaitGroup
	handle := func(ctx context.Context, task queue.Task, dl queue.Delivery) error {
		running.Add(1)
		defer running.Done()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(life, cancel)()
		err := steps.Handle(ctx, task, dl)
		w.checkEndpoints(string(task.Step))
		return err
	}
	p, err := cloudevents.NewHTTP()
	if err != nil {
		t.Fatal(err)
	}
	n := &notify.Notifier{Queue: w.fq, Log: quiet}
	events, err := cloudevents.NewHTTPReceiveHandler(context.Background(), p, n.HandleEvent)
	if err != nil {
		t.Fatal(err)
	}
	node := &chaosNode{store: g.store, steps: steps,
		api:    (&api.Server{Store: g.store, Sealer: g.sealer, SigningKey: steps.SigningKey, Log: quiet}).Function(api.FnDeploymentReady),
		tasks:  cloudtasks.Handler(w.fq.Handler(handle), quiet),
		events: events,
	}
	node.close = func() {
		endLife() // the instance goes away: its running steps are cancelled
		running.Wait()
		w.fq.Stop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	node.cancel, node.done = cancel, make(chan struct{})
	w.cur.Store(node)
	// Google Cloud resumes nothing at start: Cloud Tasks keeps the tasks,
	// and Reconcile (Cloud Scheduler) finds what was lost.
	w.reconcileEvery(ctx, node, g.sealer, 2*time.Second)
}
