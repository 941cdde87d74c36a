package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

func TestCloudLoggingShape(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "info", "visgate")
	ctx := WithRequest(context.Background(), "req_1", "105445aa7843bc8bf206b12000100000/1;o=1")
	log.WarnContext(ctx, "webhook failed", "key", secret.New("rpa_live_abc"))
	log.DebugContext(ctx, "not at info")
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	delete(got, "time")
	want := map[string]any{
		"severity":                     "WARNING",
		"message":                      "webhook failed",
		"key":                          secret.Redacted,
		"request_id":                   "req_1",
		"logging.googleapis.com/trace": "projects/visgate/traces/105445aa7843bc8bf206b12000100000",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}
}

func TestTraceID(t *testing.T) {
	for in, want := range map[string]string{
		"":          "",
		"abc/1;o=1": "abc",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01": "4bf92f3577b34da6a3ce929d0e0e4736",
		"not hex/1": "",
	} {
		if got := traceID(in); got != want {
			t.Errorf("traceID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequestID(t *testing.T) {
	if got := RequestID(context.Background()); got != "" {
		t.Errorf("RequestID of a bare context = %q", got)
	}
	ctx := WithRequest(context.Background(), "req_7", "")
	if got := RequestID(ctx); got != "req_7" {
		t.Errorf("RequestID = %q, want req_7", got)
	}
}

// TestRequestContextIsAContext: the request's context passes its parent's
// values, deadline and cancellation on, its children (WithCancel,
// WithValue, a nested WithRequest) keep its ids, and a line logged without
// a trace has no trace field.
func TestRequestContextIsAContext(t *testing.T) {
	type key struct{}
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), key{}, "parent's"))
	ctx := WithRequest(parent, "req_8", "")
	if ctx.Value(key{}) != "parent's" {
		t.Error("the parent's value is lost")
	}
	child, cancelChild := context.WithCancel(context.WithValue(ctx, key{}, "child's"))
	defer cancelChild()
	if RequestID(child) != "req_8" || child.Value(key{}) != "child's" {
		t.Errorf("child: request id %q, value %v", RequestID(child), child.Value(key{}))
	}
	if RequestID(WithRequest(child, "req_9", "")) != "req_9" {
		t.Error("a nested WithRequest does not win")
	}
	cancelParent()
	<-child.Done() // the parent's cancellation reaches the child
	if ctx.Err() == nil {
		t.Error("the request's context is not cancelled with its parent")
	}

	var buf bytes.Buffer
	New(&buf, "info", "visgate").InfoContext(ctx, "no trace")
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	if _, ok := got["logging.googleapis.com/trace"]; ok || got["request_id"] != "req_8" {
		t.Errorf("line %v: want request_id req_8 and no trace", got)
	}
}
