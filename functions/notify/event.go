package notify

import (
	"context"
	"fmt"
	"path"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/googleapis/google-cloudevents-go/cloud/firestoredata"
	"google.golang.org/protobuf/proto"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// EventType is the Eventarc event DeploymentChanged receives.
const EventType = "google.cloud.firestore.document.v1.written"

// HandleEvent is the DeploymentChanged CloudEvent function: it decodes the
// protobuf DocumentEventData Eventarc sends for deployments/{id} and acts on
// a real status transition only (the trigger fires on every write, the
// chain's own bookkeeping too). Deletes of the document do nothing.
func (n *Notifier) HandleEvent(ctx context.Context, e event.Event) error {
	if e.Type() != EventType {
		if n.Log != nil {
			n.Log.WarnContext(ctx, "DeploymentChanged: ignoring event of another type", "type", e.Type(), "id", e.ID())
		}
		return nil
	}
	c, err := ChangeFromEvent(e)
	if err != nil {
		// A payload that cannot be decoded never will be: retrying is useless.
		if n.Log != nil {
			n.Log.ErrorContext(ctx, "DeploymentChanged: undecodable event dropped", "id", e.ID(), "error", err.Error())
		}
		return nil
	}
	return n.OnChange(ctx, c)
}

// ChangeFromEvent decodes the status transition a Firestore written event
// carries. Only the fields the notifier needs are decoded: the id and the
// statuses before and after.
func ChangeFromEvent(e event.Event) (store.Change, error) {
	var data firestoredata.DocumentEventData
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(e.Data(), &data); err != nil {
		return store.Change{}, fmt.Errorf("decode DocumentEventData: %w", err)
	}
	return store.Change{Old: fromDoc(data.GetOldValue()), New: fromDoc(data.GetValue())}, nil
}

func fromDoc(doc *firestoredata.Document) *deployment.Deployment {
	if doc == nil {
		return nil
	}
	f := doc.GetFields()
	id := f["id"].GetStringValue()
	if id == "" {
		id = path.Base(doc.GetName())
	}
	return &deployment.Deployment{ID: id, Status: deployment.Status(f["status"].GetStringValue())}
}
