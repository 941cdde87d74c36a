package storelog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/store/bolt"
	"github.com/visgate/deployment-orchestrator/shared/store/storelog"
)

// line is what a test reads back from one server log line.
type line struct {
	Level        string `json:"level"`
	Msg          string `json:"msg"`
	DeploymentID string `json:"deployment_id"`
	Status       string `json:"status"`
	From         string `json:"from,omitempty"`
	Owner        string `json:"owner,omitempty"`
}

func setup(t *testing.T) (storelog.Store, *bytes.Buffer, *deployment.Deployment) {
	t.Helper()
	bs, err := bolt.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	var buf bytes.Buffer
	s := storelog.New(bs, slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	now := time.Now().UTC()
	d := &deployment.Deployment{
		ID:              deployment.NewID(now),
		Owner:           "alice",
		Status:          deployment.StatusValidating,
		CreatedAt:       now,
		StatusChangedAt: now,
		Request:         deployment.Request{RequestedModel: "org/model"},
	}
	d.Log(now, deployment.LevelInfo, "Validating Hugging Face model")
	return s, &buf, d
}

func lines(t *testing.T, buf *bytes.Buffer) []line {
	t.Helper()
	var out []line
	for _, b := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if len(b) == 0 {
			continue
		}
		var l line
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		out = append(out, l)
	}
	buf.Reset()
	return out
}

func TestEachCommittedEntryOnceAtItsLevel(t *testing.T) {
	ctx := context.Background()
	s, buf, d := setup(t)
	if err := s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	want := []line{{Level: "INFO", Msg: "Validating Hugging Face model", DeploymentID: d.ID, Status: "validating", Owner: "alice"}}
	if diff := cmp.Diff(want, lines(t, buf)); diff != "" {
		t.Errorf("create (-want +got):\n%s", diff)
	}

	// A retry is a warning; the next write logs only its own entries.
	for _, msg := range []string{"Hub unreachable; retrying in 2s", "Hub unreachable; retrying in 4s"} {
		if _, err := s.Update(ctx, d.ID, func(d *deployment.Deployment) error {
			d.Log(time.Now(), deployment.LevelWarn, "%s", msg)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want = []line{{Level: "WARN", Msg: msg, DeploymentID: d.ID, Status: "validating"}}
		if diff := cmp.Diff(want, lines(t, buf)); diff != "" {
			t.Errorf("retry (-want +got):\n%s", diff)
		}
	}

	// A failure is an error, and says which status it left.
	if _, err := s.Update(ctx, d.ID, func(d *deployment.Deployment) error { return d.Fail(time.Now(), "model not found") }); err != nil {
		t.Fatal(err)
	}
	want = []line{{Level: "ERROR", Msg: "Deployment failed: model not found", DeploymentID: d.ID, Status: "failed", From: "validating"}}
	if diff := cmp.Diff(want, lines(t, buf)); diff != "" {
		t.Errorf("failure (-want +got):\n%s", diff)
	}
}

func TestNothingLoggedForWhatIsNotStored(t *testing.T) {
	ctx := context.Background()
	s, buf, d := setup(t)
	if err := s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, d); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	lines(t, buf)
	for _, abort := range []error{store.ErrNoChange, errors.New("boom")} {
		_, err := s.Update(ctx, d.ID, func(d *deployment.Deployment) error {
			d.Log(time.Now(), deployment.LevelWarn, "never stored")
			return abort
		})
		if !errors.Is(err, abort) {
			t.Fatalf("update: %v, want %v", err, abort)
		}
	}
	if got := lines(t, buf); len(got) != 0 {
		t.Errorf("aborted updates logged %+v", got)
	}
}

// retrying runs each update function once on a throwaway copy before the
// real update, as a store does when a transaction is retried.
type retrying struct{ storelog.Store }

func (r retrying) Update(ctx context.Context, id string, fn store.UpdateFunc) (*deployment.Deployment, error) {
	d, err := r.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	_ = fn(d.Clone())
	return r.Store.Update(ctx, id, fn)
}

func TestRetriedTransactionLogsOnce(t *testing.T) {
	ctx := context.Background()
	bs, err := bolt.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	var buf bytes.Buffer
	s := storelog.New(retrying{bs}, slog.New(slog.NewJSONHandler(&buf, nil)))
	now := time.Now().UTC()
	d := &deployment.Deployment{ID: deployment.NewID(now), Owner: "alice", Status: deployment.StatusValidating, CreatedAt: now}
	if err := s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		d.Log(time.Now(), deployment.LevelInfo, "Selecting GPU")
		return d.Transition(time.Now(), deployment.StatusSelectingGPU)
	}); err != nil {
		t.Fatal(err)
	}
	want := []line{{Level: "INFO", Msg: "Selecting GPU", DeploymentID: d.ID, Status: "selecting_gpu", From: "validating"}}
	if diff := cmp.Diff(want, lines(t, &buf)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestFullLogStillLogsOnlyTheNewEntry(t *testing.T) {
	ctx := context.Background()
	s, buf, d := setup(t)
	for i := len(d.Logs); i < deployment.MaxLogs; i++ {
		d.Log(d.CreatedAt.Add(time.Duration(i)*time.Millisecond), deployment.LevelInfo, "Workers: %d initializing", i)
	}
	if err := s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := len(lines(t, buf)); got != deployment.MaxLogs {
		t.Fatalf("create logged %d lines, want %d", got, deployment.MaxLogs)
	}
	for i := range 3 {
		msg := fmt.Sprintf("Workers: 1 idle (%d)", i)
		got, err := s.Update(ctx, d.ID, func(d *deployment.Deployment) error {
			d.Log(time.Now(), deployment.LevelInfo, "%s", msg)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Logs) != deployment.MaxLogs {
			t.Fatalf("the deployment keeps %d entries, want %d", len(got.Logs), deployment.MaxLogs)
		}
		want := []line{{Level: "INFO", Msg: msg, DeploymentID: d.ID, Status: "validating"}}
		if diff := cmp.Diff(want, lines(t, buf)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
}

func TestDetailGoesOnTheEntrysLineOnly(t *testing.T) {
	ctx := context.Background()
	s, buf, d := setup(t)
	if err := s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	lines(t, buf)
	detailed := storelog.WithDetail(ctx, slog.String("error", "dial tcp 10.0.0.7:443: connection refused"))
	got, err := s.Update(detailed, d.ID, func(d *deployment.Deployment) error {
		d.Log(time.Now(), deployment.LevelWarn, "Webhook attempt 1 of 6 failed (the connection was refused); retrying in 5s")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Level, Msg, Error string
	}
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &l); err != nil {
		t.Fatalf("%s: %v", buf, err)
	}
	if l.Level != "WARN" || l.Error != "dial tcp 10.0.0.7:443: connection refused" {
		t.Errorf("server log line %+v, want the warning with the error detail", l)
	}
	if last := got.Logs[len(got.Logs)-1].Message; strings.Contains(last, "10.0.0.7") {
		t.Errorf("the owner's log shows the detail: %q", last)
	}
}

// TestViewReadsThroughAndLogsNothing: the wrapper is a store.Viewer that
// reads through to the wrapped store, and a read adds no log line.
func TestViewReadsThroughAndLogsNothing(t *testing.T) {
	s, buf, d := setup(t)
	ctx := context.Background()
	if err := s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if _, ok := s.(store.Viewer); !ok {
		t.Fatal("the wrapper is not a store.Viewer")
	}
	var seen string
	if err := store.View(ctx, s, d.ID, func(got *deployment.Deployment) error { seen = got.Owner; return nil }); err != nil {
		t.Fatal(err)
	}
	if seen != "alice" {
		t.Errorf("View saw owner %q", seen)
	}
	if buf.Len() != 0 {
		t.Errorf("a read logged %s", buf)
	}
}
