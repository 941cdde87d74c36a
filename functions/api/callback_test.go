package api

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/ratelimit"
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

// countingWrites counts the store writes that changed a record.
type countingWrites struct {
	Store
	writes atomic.Int32
}

func (c *countingWrites) Update(ctx context.Context, id string, fn store.UpdateFunc) (*deployment.Deployment, error) {
	d, err := c.Store.Update(ctx, id, fn)
	if err == nil {
		c.writes.Add(1)
	}
	return d, err
}

// TestProgressReportsAreThrottled: a worker that reports its download
// 300 times in 0.9 s gets ProgressReportsPerMinute of them taken and a 429
// with Retry-After for the rest, and its progress is written once; later
// reports are written at most every deployment.ProgressWriteInterval, except the one
// that completes the download; a status change is never limited.
func TestProgressReportsAreThrottled(t *testing.T) {
	f := newFixture(t)
	id := f.downloading(t)
	st := &countingWrites{Store: f.srv.Store}
	f.srv.Store = st
	f.srv.ProgressReports = ratelimit.NewMemory(ProgressReportsPerMinute, time.Minute, func() time.Time { return *f.clock })
	f.h = f.srv.Handler()
	sec := auth.CallbackSecret(f.srv.SigningKey, id).Reveal()
	post := func(b string) *httptest.ResponseRecorder {
		return f.do(t, "POST", "/internal/deployment-ready/"+id, "", b, InternalSecretHeader, sec)
	}
	report := func(done int64) *httptest.ResponseRecorder {
		return post(fmt.Sprintf(`{"status":"downloading_model","bytes_done":%d,"bytes_total":1000000000}`, done))
	}

	codes := map[int]int{}
	var refused *httptest.ResponseRecorder
	for i := range 300 {
		rec := report(int64(i) * 1000)
		codes[rec.Code]++
		if rec.Code == 429 && refused == nil {
			refused = rec
		}
		*f.clock = f.clock.Add(3 * time.Millisecond)
	}
	if want := map[int]int{200: ProgressReportsPerMinute, 429: 300 - ProgressReportsPerMinute}; !maps.Equal(codes, want) {
		t.Errorf("300 reports in 0.9 s answered %v, want %v", codes, want)
	}
	if refused != nil {
		checkThrottled(t, refused)
	}
	if n := st.writes.Load(); n != 1 {
		t.Errorf("300 reports in 0.9 s made %d store writes, want 1", n)
	}

	*f.clock = f.clock.Add(time.Minute)
	st.writes.Store(0)
	for i, step := range []struct {
		advance time.Duration
		done    int64
		want    float64
	}{
		{0, 500_000_000, 500_000_000}, // a minute later: written
		{time.Second, 600_000_000, 500_000_000},
		{deployment.ProgressWriteInterval, 700_000_000, 700_000_000},
		{deployment.ProgressWriteInterval, 10, 700_000_000}, // backwards: kept
		{time.Second, 1_000_000_000, 1_000_000_000},         // complete: written at once
	} {
		*f.clock = f.clock.Add(step.advance)
		if rec := report(step.done); rec.Code != 200 {
			t.Fatalf("report %d: %d %s", i, rec.Code, rec.Body)
		}
		p := body(t, f.do(t, "GET", "/v1/deployments/"+id, keyA, ""))["progress"].(map[string]any)
		if p["bytes_done"] != step.want || p["bytes_total"] != 1e9 {
			t.Errorf("after report %d (%d bytes): progress %v, want %.0f of 1e9", i, step.done, p, step.want)
		}
	}
	if n := st.writes.Load(); n != 3 {
		t.Errorf("5 reports made %d store writes, want 3", n)
	}

	for range ProgressReportsPerMinute {
		report(1_000_000_000)
	}
	rec := post(`{"status":"loading_model"}`)
	if rec.Code != 200 || body(t, rec)["status"] != "loading_model" {
		t.Errorf("loading_model after the progress limit = %d %s, want 200 (status changes are not limited)", rec.Code, rec.Body)
	}
}

// TestProgressIsBounded: bytes_done needs bytes_total and stays within it;
// a refused report changes nothing.
func TestProgressIsBounded(t *testing.T) {
	f := newFixture(t)
	id := f.downloading(t)
	sec := auth.CallbackSecret(f.srv.SigningKey, id).Reveal()
	for body_, field := range map[string]string{
		`{"status":"downloading_model","bytes_done":5}`:                  "bytes_total",
		`{"status":"downloading_model","bytes_done":5,"bytes_total":0}`:  "bytes_done",
		`{"status":"downloading_model","bytes_done":5,"bytes_total":4}`:  "bytes_done",
		`{"status":"downloading_model","bytes_done":5,"bytes_total":-1}`: "bytes_total",
	} {
		rec := f.do(t, "POST", "/internal/deployment-ready/"+id, "", body_, InternalSecretHeader, sec)
		if rec.Code != 422 {
			t.Errorf("%s = %d %s, want 422", body_, rec.Code, rec.Body)
			continue
		}
		if _, ok := body(t, rec)["details"].(map[string]any)[field]; !ok {
			t.Errorf("%s: details lack %s: %s", body_, field, rec.Body)
		}
	}
	if p := body(t, f.do(t, "GET", "/v1/deployments/"+id, keyA, ""))["progress"]; p != nil {
		t.Errorf("refused reports changed progress to %v", p)
	}
}

// downloading creates a deployment of keyA's whose endpoint exists and whose
// model is downloading: what a worker's reports apply to.
func (f *fixture) downloading(t *testing.T) string {
	t.Helper()
	id := body(t, f.do(t, "POST", "/v1/deployments", keyA, validCreate))["deployment_id"].(string)
	if _, err := f.store.Update(context.Background(), id, func(d *deployment.Deployment) error {
		d.RunPodEndpointID, d.Status = "ep123", deployment.StatusDownloadingModel
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return id
}
