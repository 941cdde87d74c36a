// Package bridge stands in for Eventarc on the Firestore emulator.
package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/googleapis/google-cloudevents-go/cloud/firestoredata"
	"google.golang.org/genproto/googleapis/type/latlng"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Bridge listens to the Firestore emulator (which sends no Eventarc events)
// and POSTs, for every write to deployments/{id}, the protobuf CloudEvent
// Eventarc would send to DeploymentChanged.
type Bridge struct {
	Client     *firestore.Client
	ProjectID  string
	Collection string
	Target     string // DeploymentChanged URL
	HTTP       *http.Client
	Log        *slog.Logger
	// Listening, when set, is called once the first snapshot is in: every
	// write after that is posted.
	Listening func()
}

// Run listens until ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	it := b.Client.Collection(b.Collection).Snapshots(ctx)
	defer it.Stop()
	prev := map[string]*firestoredata.Document{}
	first := true
	for {
		snap, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("bridge: listen: %w", err)
		}
		for _, ch := range snap.Changes {
			name := b.docName(ch.Doc.Ref.ID)
			var cur *firestoredata.Document
			if ch.Kind != firestore.DocumentRemoved {
				cur = toDocument(name, ch.Doc.Data(), ch.Doc.CreateTime, ch.Doc.UpdateTime)
			}
			old := prev[ch.Doc.Ref.ID]
			if cur == nil {
				delete(prev, ch.Doc.Ref.ID)
			} else {
				prev[ch.Doc.Ref.ID] = cur
			}
			if first {
				continue // the initial snapshot is the state before the bridge started
			}
			if err := b.post(ctx, ch.Doc.Ref.ID, &firestoredata.DocumentEventData{Value: cur, OldValue: old}); err != nil {
				b.Log.ErrorContext(ctx, "bridge: post event", "document", ch.Doc.Ref.ID, "error", err.Error())
			}
		}
		if first && b.Listening != nil {
			b.Listening()
		}
		first = false
	}
}

func (b *Bridge) docName(id string) string {
	return fmt.Sprintf("projects/%s/databases/(default)/documents/%s/%s", b.ProjectID, b.Collection, id)
}

// post sends the event in binary content mode, as Eventarc does.
func (b *Bridge) post(ctx context.Context, id string, data *firestoredata.DocumentEventData) error {
	body, err := proto.Marshal(data)
	if err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	var rid [8]byte
	_, _ = rand.Read(rid[:])
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.Target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	h := req.Header
	h.Set("Content-Type", "application/protobuf")
	h.Set("ce-specversion", "1.0")
	h.Set("ce-id", hex.EncodeToString(rid[:]))
	h.Set("ce-type", "google.cloud.firestore.document.v1.written")
	h.Set("ce-source", fmt.Sprintf("//firestore.googleapis.com/projects/%s/databases/(default)", b.ProjectID))
	h.Set("ce-subject", "documents/"+b.Collection+"/"+id)
	h.Set("ce-time", time.Now().UTC().Format(time.RFC3339Nano))
	h.Set("ce-dataschema", "https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/cloud/firestore/v1/data.proto")
	resp, err := b.HTTP.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("DeploymentChanged answered %s", resp.Status)
	}
	return nil
}

// toDocument converts a snapshot's data to the Eventarc Document.
func toDocument(name string, data map[string]any, created, updated time.Time) *firestoredata.Document {
	return &firestoredata.Document{
		Name:       name,
		Fields:     Fields(data),
		CreateTime: timestamppb.New(created),
		UpdateTime: timestamppb.New(updated),
	}
}

// Fields converts a document's data, as the Firestore client reads it
// (DocumentSnapshot.Data), to the fields of an Eventarc Document.
func Fields(m map[string]any) map[string]*firestoredata.Value {
	out := make(map[string]*firestoredata.Value, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out[k] = toValue(m[k])
	}
	return out
}

func toValue(v any) *firestoredata.Value {
	switch x := v.(type) {
	case nil:
		return &firestoredata.Value{ValueType: &firestoredata.Value_NullValue{NullValue: structpb.NullValue_NULL_VALUE}}
	case bool:
		return &firestoredata.Value{ValueType: &firestoredata.Value_BooleanValue{BooleanValue: x}}
	case int64:
		return &firestoredata.Value{ValueType: &firestoredata.Value_IntegerValue{IntegerValue: x}}
	case float64:
		return &firestoredata.Value{ValueType: &firestoredata.Value_DoubleValue{DoubleValue: x}}
	case string:
		return &firestoredata.Value{ValueType: &firestoredata.Value_StringValue{StringValue: x}}
	case []byte:
		return &firestoredata.Value{ValueType: &firestoredata.Value_BytesValue{BytesValue: x}}
	case time.Time:
		return &firestoredata.Value{ValueType: &firestoredata.Value_TimestampValue{TimestampValue: timestamppb.New(x)}}
	case *latlng.LatLng:
		return &firestoredata.Value{ValueType: &firestoredata.Value_GeoPointValue{GeoPointValue: x}}
	case *firestore.DocumentRef:
		return &firestoredata.Value{ValueType: &firestoredata.Value_ReferenceValue{ReferenceValue: x.Path}}
	case []any:
		vals := make([]*firestoredata.Value, len(x))
		for i, e := range x {
			vals[i] = toValue(e)
		}
		return &firestoredata.Value{ValueType: &firestoredata.Value_ArrayValue{ArrayValue: &firestoredata.ArrayValue{Values: vals}}}
	case map[string]any:
		return &firestoredata.Value{ValueType: &firestoredata.Value_MapValue{MapValue: &firestoredata.MapValue{Fields: Fields(x)}}}
	}
	return &firestoredata.Value{ValueType: &firestoredata.Value_StringValue{StringValue: fmt.Sprint(v)}}
}
