package webhook_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

func TestSchedule(t *testing.T) {
	want := []time.Duration{0, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute}
	got := webhook.Schedule()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Schedule() mismatch (-want +got):\n%s", diff)
	}
	got[1] = time.Hour
	if webhook.Schedule()[1] != 5*time.Second {
		t.Error("Schedule() hands out its own storage")
	}
}

func TestNextDelay(t *testing.T) {
	retryable := webhook.Result{StatusCode: 503, Retryable: true}
	tests := []struct {
		name      string
		attempts  int
		last      webhook.Result
		wantDelay time.Duration
		wantOK    bool
	}{
		{"after first failure", 1, retryable, 5 * time.Second, true},
		{"after fifth failure", 5, retryable, 30 * time.Minute, true},
		{"schedule used up", 6, retryable, 0, false},
		{"no attempt yet", 0, retryable, 0, false},
		{"delivered", 1, webhook.Result{StatusCode: 200, Delivered: true}, 0, false},
		{"final failure", 1, webhook.Result{StatusCode: 404}, 0, false},
		{"longer Retry-After wins", 1, webhook.Result{StatusCode: 429, Retryable: true, RetryAfter: time.Minute}, time.Minute, true},
		{"shorter Retry-After loses", 3, webhook.Result{StatusCode: 429, Retryable: true, RetryAfter: time.Second}, 2 * time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := webhook.NextDelay(tt.attempts, tt.last)
			if d != tt.wantDelay || ok != tt.wantOK {
				t.Errorf("NextDelay(%d, %+v) = %s, %v; want %s, %v", tt.attempts, tt.last, d, ok, tt.wantDelay, tt.wantOK)
			}
		})
	}
}
