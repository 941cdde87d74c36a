package api

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// cancelDuringUpdate is a Store whose Update waits until the request that
// called it is cancelled, then, like Firestore, refuses to go on with a
// cancelled context and writes otherwise.
type cancelDuringUpdate struct {
	Store
	entered     chan struct{}
	requestDone <-chan struct{}
}

func (s *cancelDuringUpdate) Update(ctx context.Context, id string, fn store.UpdateFunc) (*deployment.Deployment, error) {
	close(s.entered)
	<-s.requestDone
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.Store.Update(ctx, id, fn)
}

func TestCallbackWriteOutlivesCancelledRequest(t *testing.T) {
	f := newFixture(t)
	id := body(t, f.do(t, "POST", "/v1/deployments", keyA, validCreate))["deployment_id"].(string)
	if _, err := f.store.Update(context.Background(), id, func(d *deployment.Deployment) error {
		d.RunPodEndpointID = "ep123"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	reqCtx, cancelReq := context.WithCancel(context.Background())
	defer cancelReq()
	blocking := &cancelDuringUpdate{Store: f.srv.Store, entered: make(chan struct{}), requestDone: reqCtx.Done()}
	f.srv.Store = blocking
	f.srv.Log = slog.New(slog.NewTextHandler(&logs, nil))
	h := f.srv.Handler()

	req := httptest.NewRequestWithContext(reqCtx, "POST", "/internal/deployment-ready/"+id, strings.NewReader(`{"status":"loading_model"}`))
	req.Header.Set(InternalSecretHeader, auth.CallbackSecret(f.srv.SigningKey, id).Reveal())
	rec := httptest.NewRecorder()
	served := make(chan struct{})
	go func() {
		defer close(served)
		h.ServeHTTP(rec, req)
	}()
	<-blocking.entered
	cancelReq() // the worker drops the request mid-write
	<-served

	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a dropped request logged an error:\n%s", logs.String())
	}
	if rec.Code != 200 {
		t.Errorf("callback = %d %s", rec.Code, rec.Body)
	}
	d, err := f.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != deployment.StatusLoadingModel {
		t.Errorf("status = %s, want the report applied (loading_model)", d.Status)
	}
	var logged bool
	for _, e := range d.Logs {
		logged = logged || strings.Contains(e.Message, "Loading model into GPU memory")
	}
	if !logged {
		t.Errorf("the report's server-log entry is missing: %+v", d.Logs)
	}
}
