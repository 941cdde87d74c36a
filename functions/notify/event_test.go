package notify

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"
	"github.com/googleapis/google-cloudevents-go/cloud/firestoredata"
	"google.golang.org/protobuf/proto"

	"github.com/visgate/deployment-orchestrator/functions/dev/bridge"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/store/firestore"
	"github.com/visgate/deployment-orchestrator/shared/store/storetest"
)

// recordingQueue records the name and delay of every task.
type recordingQueue struct {
	mu    sync.Mutex
	tasks []string
}

func (q *recordingQueue) Enqueue(_ context.Context, t queue.Task) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tasks = append(q.tasks, fmt.Sprintf("%s after %s", t.Name(), t.Delay))
	return nil
}

func (q *recordingQueue) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.tasks
	q.tasks = nil
	sort.Strings(out)
	return out
}

const id = "dep_2026_a3686d66"

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// record is a deployment in st, changed by fns.
func record(st deployment.Status, fns ...func(d *deployment.Deployment)) *deployment.Deployment {
	d := &deployment.Deployment{
		ID: id, Owner: "o", Status: st, StatusChangedAt: now, CreatedAt: now, UpdatedAt: now,
		Webhook: deployment.Webhook{URL: "https://example.com/hook"},
	}
	for _, fn := range fns {
		fn(d)
	}
	return d
}

func withEndpoint(d *deployment.Deployment) { d.RunPodEndpointID = "ep1" }

// doc is d as Eventarc delivers it: the Firestore store's document data,
// as protobuf values (converted as make dev's stand-in for Eventarc does).
func doc(t *testing.T, d *deployment.Deployment) *firestoredata.Document {
	t.Helper()
	data, err := firestore.EncodeDeployment(d)
	if err != nil {
		t.Fatal(err)
	}
	return &firestoredata.Document{
		Name:   "projects/p/databases/(default)/documents/deployments/" + d.ID,
		Fields: bridge.Fields(data),
	}
}

// serve wires HandleEvent the way functions-framework does for a CloudEvent
// function, on a loopback server.
func serve(t *testing.T, n *Notifier) string {
	t.Helper()
	p, err := cloudevents.NewHTTP()
	if err != nil {
		t.Fatal(err)
	}
	h, err := cloudevents.NewHTTPReceiveHandler(context.Background(), p, n.HandleEvent)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestDeploymentChangedEvents(t *testing.T) {
	q := &recordingQueue{}
	url := serve(t, &Notifier{Queue: q, Now: func() time.Time { return now }})
	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(url))
	if err != nil {
		t.Fatal(err)
	}
	lease := func(d *deployment.Deployment) { d.EndpointLease = now.Add(-time.Minute) }
	delivered := func(d *deployment.Deployment) { d.Webhook.Delivered = true }
	scaled := func(d *deployment.Deployment) { d.Scaled = true }
	logLine := func(d *deployment.Deployment) { d.Log(now, deployment.LevelInfo, "Workers: 1 initializing") }
	tests := []struct {
		name     string
		old, new *deployment.Deployment
		raw      []byte
		want     []string
	}{
		{name: "create", new: record(deployment.StatusValidating), want: []string{id + "-validate-0 after 0s"}},
		{name: "step forward", old: record(deployment.StatusValidating), new: record(deployment.StatusSelectingGPU),
			want: []string{id + "-select_gpu-0 after 0s"}},
		{name: "endpoint recorded", old: record(deployment.StatusCreatingEndpoint, lease), new: record(deployment.StatusDownloadingModel, withEndpoint),
			want: []string{id + "-spend-0 after 0s", id + "-watch-0 after 0s"}}, // the endpoint's spend is read from now on
		{name: "download to load: the watch goes on", old: record(deployment.StatusDownloadingModel, withEndpoint),
			new: record(deployment.StatusLoadingModel, withEndpoint)},
		{name: "own write, same status", old: record(deployment.StatusLoadingModel, withEndpoint),
			new: record(deployment.StatusLoadingModel, withEndpoint, logLine)},
		{name: "ready", old: record(deployment.StatusLoadingModel, withEndpoint), new: record(deployment.StatusReady, withEndpoint),
			want: []string{id + "-scale-0 after 0s", id + "-webhook-0 after 0s"}},
		{name: "webhook attempt failed: the next is due in 30 s", old: record(deployment.StatusReady, withEndpoint, scaled),
			new: record(deployment.StatusReady, withEndpoint, scaled, func(d *deployment.Deployment) {
				d.Webhook.Attempts, d.Webhook.NextAttemptAt = 1, now.Add(30*time.Second)
			}),
			want: []string{id + "-webhook-1 after 30s"}},
		{name: "failed while creating", old: record(deployment.StatusCreatingEndpoint, lease), new: record(deployment.StatusFailed, lease),
			want: []string{id + "-teardown-0 after 0s", id + "-webhook-0 after 0s"}},
		{name: "deleted", old: record(deployment.StatusReady, withEndpoint, scaled, delivered),
			new:  record(deployment.StatusDeleted, withEndpoint, scaled, delivered),
			want: []string{id + "-teardown-0 after 0s"}},
		{name: "endpoint learnt after its teardown", old: record(deployment.StatusDeleted, lease, func(d *deployment.Deployment) { d.EndpointDeleted = true }),
			new:  record(deployment.StatusDeleted, withEndpoint, func(d *deployment.Deployment) { d.EndpointLearnt() }),
			want: []string{id + "-teardown-1 after 0s"}},
		{name: "document removed", old: record(deployment.StatusDeleted)},
		{name: "garbage payload", raw: []byte("\xff\x00not protobuf")},
	}
	for _, tc := range tests {
		for _, mode := range []string{"binary", "structured"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				e := event.New()
				e.SetID("evt-" + tc.name)
				e.SetType(EventType)
				e.SetSource("//firestore.googleapis.com/projects/p/databases/(default)")
				e.SetSubject("documents/deployments/" + id)
				body := tc.raw
				if body == nil {
					data := &firestoredata.DocumentEventData{}
					if tc.old != nil {
						data.OldValue = doc(t, tc.old)
					}
					if tc.new != nil {
						data.Value = doc(t, tc.new)
					}
					var err error
					if body, err = proto.Marshal(data); err != nil {
						t.Fatal(err)
					}
				}
				if err := e.SetData("application/protobuf", body); err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if mode == "structured" {
					ctx = cloudevents.WithEncodingStructured(ctx)
				} else {
					ctx = cloudevents.WithEncodingBinary(ctx)
				}
				if res := c.Send(ctx, e); !cloudevents.IsACK(res) {
					t.Fatalf("send: %v", res)
				}
				if diff := cmp.Diff(tc.want, q.take()); diff != "" {
					t.Errorf("enqueued (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// The trigger's document decodes to the record the Firestore store reads,
// every field of it.
func TestChangeFromEventReadsTheWholeRecord(t *testing.T) {
	d := storetest.Filled(t, id, "owner", now)
	data, err := firestore.EncodeDeployment(d)
	if err != nil {
		t.Fatal(err)
	}
	want, err := firestore.DecodeDeployment(data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(&firestoredata.DocumentEventData{Value: doc(t, d), OldValue: doc(t, record(deployment.StatusValidating))})
	if err != nil {
		t.Fatal(err)
	}
	e := event.New()
	e.SetType(EventType)
	if err := e.SetData("application/protobuf", b); err != nil {
		t.Fatal(err)
	}
	c, err := ChangeFromEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, c.New); diff != "" {
		t.Errorf("New (-want +got):\n%s", diff)
	}
	if c.Old == nil || c.Old.Status != deployment.StatusValidating || c.Old.ID != id {
		t.Errorf("Old = %+v", c.Old)
	}
}

func TestOtherEventTypesIgnored(t *testing.T) {
	q := &recordingQueue{}
	n := &Notifier{Queue: q}
	e := event.New()
	e.SetID("1")
	e.SetType("google.cloud.firestore.document.v1.deleted")
	e.SetSource("x")
	b, _ := proto.Marshal(&firestoredata.DocumentEventData{OldValue: doc(t, record(deployment.StatusLoadingModel, withEndpoint)),
		Value: doc(t, record(deployment.StatusReady, withEndpoint))})
	_ = e.SetData("application/protobuf", b)
	if err := n.HandleEvent(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if got := q.take(); len(got) != 0 {
		t.Errorf("enqueued %v for another event type", got)
	}
}
