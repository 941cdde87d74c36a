package notify

import (
	"context"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"
	"github.com/googleapis/google-cloudevents-go/cloud/firestoredata"
	"google.golang.org/protobuf/proto"

	"github.com/visgate/deployment-orchestrator/shared/queue"
)

type recordingQueue struct {
	mu    sync.Mutex
	tasks []string
}

func (q *recordingQueue) Enqueue(_ context.Context, t queue.Task) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tasks = append(q.tasks, t.DeploymentID+"/"+t.Step)
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

func doc(status string, extra map[string]*firestoredata.Value) *firestoredata.Document {
	f := map[string]*firestoredata.Value{
		"id":     {ValueType: &firestoredata.Value_StringValue{StringValue: id}},
		"status": {ValueType: &firestoredata.Value_StringValue{StringValue: status}},
	}
	for k, v := range extra {
		f[k] = v
	}
	return &firestoredata.Document{Name: "projects/p/databases/(default)/documents/deployments/" + id, Fields: f}
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
	url := serve(t, &Notifier{Queue: q})
	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(url))
	if err != nil {
		t.Fatal(err)
	}
	logLine := map[string]*firestoredata.Value{"updated_at": {ValueType: &firestoredata.Value_StringValue{StringValue: "x"}}}
	for _, tc := range []struct {
		name     string
		data     *firestoredata.DocumentEventData
		raw      []byte
		wantStep []string
	}{
		{"create", &firestoredata.DocumentEventData{Value: doc("validating", nil)}, nil, nil},
		{"step forward", &firestoredata.DocumentEventData{OldValue: doc("validating", nil), Value: doc("selecting_gpu", nil)}, nil, nil},
		{"ready", &firestoredata.DocumentEventData{OldValue: doc("loading_model", nil), Value: doc("ready", nil)}, nil, []string{id + "/scale", id + "/webhook"}},
		{"own write, same status", &firestoredata.DocumentEventData{OldValue: doc("ready", nil), Value: doc("ready", logLine),
			UpdateMask: &firestoredata.DocumentMask{FieldPaths: []string{"updated_at"}}}, nil, nil},
		{"failed", &firestoredata.DocumentEventData{OldValue: doc("creating_endpoint", nil), Value: doc("failed", nil)}, nil, []string{id + "/teardown", id + "/webhook"}},
		{"deleted", &firestoredata.DocumentEventData{OldValue: doc("ready", nil), Value: doc("deleted", nil)}, nil, []string{id + "/teardown"}},
		{"document removed", &firestoredata.DocumentEventData{OldValue: doc("deleted", nil)}, nil, nil},
		{"garbage payload", nil, []byte("\xff\x00not protobuf"), nil},
	} {
		for _, mode := range []string{"binary", "structured"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				e := event.New()
				e.SetID("evt-" + tc.name)
				e.SetType(EventType)
				e.SetSource("//firestore.googleapis.com/projects/p/databases/(default)")
				e.SetSubject("documents/deployments/" + id)
				body := tc.raw
				if tc.data != nil {
					var err error
					if body, err = proto.Marshal(tc.data); err != nil {
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
				if diff := cmp.Diff(tc.wantStep, q.take()); diff != "" {
					t.Errorf("enqueued (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestOtherEventTypesIgnored(t *testing.T) {
	q := &recordingQueue{}
	n := &Notifier{Queue: q}
	e := event.New()
	e.SetID("1")
	e.SetType("google.cloud.firestore.document.v1.deleted")
	e.SetSource("x")
	b, _ := proto.Marshal(&firestoredata.DocumentEventData{OldValue: doc("loading_model", nil), Value: doc("ready", nil)})
	_ = e.SetData("application/protobuf", b)
	if err := n.HandleEvent(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if got := q.take(); len(got) != 0 {
		t.Errorf("enqueued %v for another event type", got)
	}
}
