package cloudtasks

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/queue"
)

// logRecorder is a slog.Handler that keeps the level and message of every record.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

type call struct {
	Task     queue.Task
	Delivery queue.Delivery
}

func TestHandler(t *testing.T) {
	const validBody = `{"deployment_id":"dep_2026_0a1b2c3d","step":"select_gpu","seq":2}`
	validTask := queue.Task{DeploymentID: "dep_2026_0a1b2c3d", Step: "select_gpu", Seq: 2}
	fromTasks := map[string]string{HeaderTaskName: "dep_2026_0a1b2c3d-select_gpu-2", HeaderQueueName: "provision"}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{}
		for k, v := range fromTasks {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}

	tests := []struct {
		name    string
		method  string
		body    string
		headers map[string]string
		// result is what the handler returns; panics makes it panic instead.
		result     error
		panics     bool
		wantStatus int
		wantCalls  []call
		wantLogs   []string
	}{
		{
			name:       "first attempt",
			body:       validBody,
			headers:    with(map[string]string{HeaderTaskRetryCount: "0", HeaderTaskExecutionCount: "0"}),
			wantStatus: http.StatusOK,
			wantCalls:  []call{{validTask, queue.Delivery{Attempt: 1}}},
		},
		{
			name:       "third attempt counts every dispatch",
			body:       validBody,
			headers:    with(map[string]string{HeaderTaskRetryCount: "2", HeaderTaskExecutionCount: "1"}),
			wantStatus: http.StatusOK,
			wantCalls:  []call{{validTask, queue.Delivery{Attempt: 3}}},
		},
		{
			name:       "execution count without retry count",
			body:       validBody,
			headers:    with(map[string]string{HeaderTaskExecutionCount: "4"}),
			wantStatus: http.StatusOK,
			wantCalls:  []call{{validTask, queue.Delivery{Attempt: 5}}},
		},
		{
			name:       "unreadable counters",
			body:       validBody,
			headers:    with(map[string]string{HeaderTaskRetryCount: "x", HeaderTaskExecutionCount: "-3"}),
			wantStatus: http.StatusOK,
			wantCalls:  []call{{validTask, queue.Delivery{Attempt: 1}}},
		},
		{
			name:       "no Cloud Tasks headers",
			body:       validBody,
			wantStatus: http.StatusOK,
			wantCalls:  []call{{validTask, queue.Delivery{Attempt: 1}}},
		},
		{
			name:       "a step's next run",
			body:       `{"deployment_id":"dep_2026_0a1b2c3d","step":"select_gpu","seq":2,"run":3}`,
			headers:    fromTasks,
			wantStatus: http.StatusOK,
			wantCalls:  []call{{queue.Task{DeploymentID: validTask.DeploymentID, Step: validTask.Step, Seq: 2, Run: 3}, queue.Delivery{Attempt: 1}}},
		},
		{
			name:       "unknown fields are ignored",
			body:       `{"deployment_id":"d","step":"s","seq":0,"added_later":true}`,
			headers:    fromTasks,
			wantStatus: http.StatusOK,
			wantCalls:  []call{{queue.Task{DeploymentID: "d", Step: "s"}, queue.Delivery{Attempt: 1}}},
		},
		{
			name:       "handler error asks for a retry",
			body:       validBody,
			headers:    with(map[string]string{HeaderTaskRetryCount: "1"}),
			result:     errors.New("runpod: 503"),
			wantStatus: http.StatusInternalServerError,
			wantCalls:  []call{{validTask, queue.Delivery{Attempt: 2}}},
			wantLogs:   []string{"WARN queue: task failed, Cloud Tasks will retry"},
		},
		{
			name:       "handler panic asks for a retry",
			body:       validBody,
			headers:    fromTasks,
			panics:     true,
			wantStatus: http.StatusInternalServerError,
			wantCalls:  []call{{validTask, queue.Delivery{Attempt: 1}}},
			wantLogs:   []string{"ERROR queue: handler panicked", "WARN queue: task failed, Cloud Tasks will retry"},
		},
		{
			name:       "garbage from Cloud Tasks is dropped",
			body:       `not json`,
			headers:    fromTasks,
			wantStatus: http.StatusOK,
			wantLogs:   []string{"ERROR queue: dropping a task whose body can never be valid"},
		},
		{
			name:       "missing deployment_id from Cloud Tasks is dropped",
			body:       `{"step":"validate","seq":0}`,
			headers:    fromTasks,
			wantStatus: http.StatusOK,
			wantLogs:   []string{"ERROR queue: dropping a task whose body can never be valid"},
		},
		{
			name:       "too large a body from Cloud Tasks is dropped",
			body:       `{"deployment_id":"` + strings.Repeat("a", maxBodyBytes) + `","step":"s","seq":0}`,
			headers:    fromTasks,
			wantStatus: http.StatusOK,
			wantLogs:   []string{"ERROR queue: dropping a task whose body can never be valid"},
		},
		{
			name:       "garbage from anyone else",
			body:       `not json`,
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "missing step",
			body:       `{"deployment_id":"d","seq":0}`,
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "negative seq",
			body:       `{"deployment_id":"d","step":"s","seq":-1}`,
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "negative run",
			body:       `{"deployment_id":"d","step":"s","seq":0,"run":-1}`,
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "trailing data",
			body:       validBody + `{}`,
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "null",
			body:       `null`,
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "GET",
			method:     http.MethodGet,
			headers:    fromTasks,
			wantStatus: http.StatusMethodNotAllowed,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls []call
			h := func(ctx context.Context, task queue.Task, d queue.Delivery) error {
				calls = append(calls, call{task, d})
				if tc.panics {
					panic("boom")
				}
				return tc.result
			}
			logs := &logRecorder{}
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, "/", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			Handler(h, slog.New(logs)).ServeHTTP(rec, req)

			if rec.Code != tc.wantStatus {
				t.Errorf("status %d, want %d; body %q", rec.Code, tc.wantStatus, rec.Body.String())
			}
			if diff := cmp.Diff(tc.wantCalls, calls); diff != "" {
				t.Errorf("handler calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantLogs, logs.all()); diff != "" {
				t.Errorf("log lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHandlerPassesTheRequestContext(t *testing.T) {
	type key struct{}
	var got any
	h := Handler(func(ctx context.Context, _ queue.Task, _ queue.Delivery) error {
		got = ctx.Value(key{})
		return nil
	}, nil)
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"deployment_id":"d","step":"s","seq":0}`))
	req = req.WithContext(context.WithValue(req.Context(), key{}, "request"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || got != "request" {
		t.Errorf("status %d, context value %v; want 200 and the request's context", rec.Code, got)
	}
}
