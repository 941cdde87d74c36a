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
	"github.com/visgate/deployment-orchestrator/shared/store/firestore"
)

// EventType is the Eventarc event DeploymentChanged receives.
const EventType = "google.cloud.firestore.document.v1.written"

// HandleEvent is the DeploymentChanged CloudEvent function: it decodes the
// protobuf DocumentEventData Eventarc sends for deployments/{id} (the
// document before and after the write) and enqueues what the write made
// owed. The trigger fires on every write, the chain's own bookkeeping too;
// most owe nothing new. Deletes of the document do nothing.
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

// ChangeFromEvent decodes the write a Firestore written event carries: the
// deployment before and after it, read as the Firestore store reads it.
func ChangeFromEvent(e event.Event) (store.Change, error) {
	var data firestoredata.DocumentEventData
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(e.Data(), &data); err != nil {
		return store.Change{}, fmt.Errorf("decode DocumentEventData: %w", err)
	}
	old, err := fromDoc(data.GetOldValue())
	if err != nil {
		return store.Change{}, fmt.Errorf("old value: %w", err)
	}
	cur, err := fromDoc(data.GetValue())
	if err != nil {
		return store.Change{}, fmt.Errorf("value: %w", err)
	}
	return store.Change{Old: old, New: cur}, nil
}

func fromDoc(doc *firestoredata.Document) (*deployment.Deployment, error) {
	if doc == nil {
		return nil, nil
	}
	data := make(map[string]any, len(doc.GetFields()))
	for k, v := range doc.GetFields() {
		data[k] = fromValue(v)
	}
	d, err := firestore.DecodeDeployment(data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", doc.GetName(), err)
	}
	if d.ID == "" {
		d.ID = path.Base(doc.GetName())
	}
	return d, nil
}

// fromValue converts a document value to the Go value the Firestore client
// gives for it (DocumentSnapshot.Data).
func fromValue(v *firestoredata.Value) any {
	switch x := v.GetValueType().(type) {
	case *firestoredata.Value_BooleanValue:
		return x.BooleanValue
	case *firestoredata.Value_IntegerValue:
		return x.IntegerValue
	case *firestoredata.Value_DoubleValue:
		return x.DoubleValue
	case *firestoredata.Value_TimestampValue:
		return x.TimestampValue.AsTime()
	case *firestoredata.Value_StringValue:
		return x.StringValue
	case *firestoredata.Value_BytesValue:
		return x.BytesValue
	case *firestoredata.Value_ReferenceValue:
		return x.ReferenceValue
	case *firestoredata.Value_GeoPointValue:
		return x.GeoPointValue
	case *firestoredata.Value_ArrayValue:
		out := make([]any, len(x.ArrayValue.GetValues()))
		for i, e := range x.ArrayValue.GetValues() {
			out[i] = fromValue(e)
		}
		return out
	case *firestoredata.Value_MapValue:
		out := make(map[string]any, len(x.MapValue.GetFields()))
		for k, e := range x.MapValue.GetFields() {
			out[k] = fromValue(e)
		}
		return out
	}
	return nil // null, or a kind this version does not know
}
