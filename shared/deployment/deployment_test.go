package deployment

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCanTransition(t *testing.T) {
	allowed := map[[2]Status]bool{}
	chain := []Status{StatusValidating, StatusSelectingGPU, StatusCreatingEndpoint, StatusDownloadingModel, StatusLoadingModel, StatusReady}
	for i, from := range chain {
		for _, to := range chain[i+1:] {
			allowed[[2]Status{from, to}] = true
		}
		if from != StatusReady {
			allowed[[2]Status{from, StatusFailed}] = true
		}
	}
	allowed[[2]Status{StatusReady, StatusWebhookFailed}] = true
	for _, from := range Statuses {
		if from != StatusDeleted {
			allowed[[2]Status{from, StatusDeleted}] = true
		}
	}
	for _, from := range Statuses {
		for _, to := range Statuses {
			want := allowed[[2]Status{from, to}]
			if got := from.CanTransition(to); got != want {
				t.Errorf("%s -> %s: CanTransition = %v, want %v", from, to, got, want)
			}
		}
	}
	if Status("bogus").CanTransition(StatusDeleted) || StatusReady.CanTransition("bogus") {
		t.Error("unknown statuses must never transition")
	}
}

func TestTransitionRefusedChangesNothing(t *testing.T) {
	now := time.Date(2026, 2, 14, 13, 28, 55, 0, time.UTC)
	d := &Deployment{ID: "dep_2026_c1badc17", Status: StatusLoadingModel, StatusChangedAt: now}
	err := d.Transition(now.Add(time.Second), StatusSelectingGPU)
	var te *TransitionError
	if !errors.As(err, &te) || te.From != StatusLoadingModel || te.To != StatusSelectingGPU {
		t.Fatalf("Transition backwards: err = %v, want *TransitionError", err)
	}
	if d.Status != StatusLoadingModel || !d.StatusChangedAt.Equal(now) {
		t.Errorf("refused transition changed the record: %+v", d)
	}
	if err := d.Transition(now.Add(2*time.Second), StatusReady); err != nil {
		t.Fatal(err)
	}
	if !d.ReadyAt.Equal(now.Add(2 * time.Second)) {
		t.Errorf("ReadyAt = %v", d.ReadyAt)
	}
	if err := d.Fail(now, "x"); err == nil {
		t.Error("ready deployment must not fail")
	}
}

func TestFailRecordsMessage(t *testing.T) {
	now := time.Now()
	d := &Deployment{Status: StatusCreatingEndpoint}
	if err := d.Fail(now, "RunPod rejected the API key"); err != nil {
		t.Fatal(err)
	}
	if d.Status != StatusFailed || d.Error != "RunPod rejected the API key" {
		t.Errorf("got %s %q", d.Status, d.Error)
	}
	if last := d.Logs[len(d.Logs)-1]; last.Level != LevelError || !strings.Contains(last.Message, "RunPod rejected") {
		t.Errorf("last log = %+v", last)
	}
}

func TestLogIsBounded(t *testing.T) {
	d := &Deployment{}
	now := time.Now()
	d.Log(now, LevelInfo, "first")
	for i := 0; i < 3*MaxLogs; i++ {
		d.Log(now, LevelInfo, "line %d", i)
	}
	if len(d.Logs) != MaxLogs {
		t.Fatalf("len(Logs) = %d, want %d", len(d.Logs), MaxLogs)
	}
	if d.Logs[0].Message != "first" || d.Logs[MaxLogs-1].Message != "line 599" {
		t.Errorf("kept %q ... %q", d.Logs[0].Message, d.Logs[MaxLogs-1].Message)
	}
}

func TestNewID(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewID(now)
		if !ValidID(id) || !strings.HasPrefix(id, "dep_2026_") {
			t.Fatalf("NewID = %q", id)
		}
		seen[id] = true
	}
	if len(seen) < 999 {
		t.Errorf("only %d distinct ids of 1000", len(seen))
	}
	for _, bad := range []string{"dep_fake_123", "dep_2026_C1BADC17", "dep_2026_c1badc1", "x"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

// TestEndpointURLOnlyWhileTheEndpointExists: a failed or deleted
// deployment, or one whose endpoint teardown removed, shows no endpoint_url.
func TestEndpointURLOnlyWhileTheEndpointExists(t *testing.T) {
	const url = "https://api.runpod.ai/v2/ep123"
	for _, st := range Statuses {
		for _, deleted := range []bool{false, true} {
			d := &Deployment{ID: "dep_2026_00000000", Status: st, Endpoint: Endpoint{RunPodEndpointID: "ep123", EndpointURL: url, EndpointDeleted: deleted}}
			p := d.Public(false)
			live := !deleted && st != StatusFailed && st != StatusDeleted
			if got := p.EndpointURL != nil; got != live {
				t.Errorf("status %s, endpoint deleted %v: endpoint_url %v, want shown=%v", st, deleted, p.EndpointURL, live)
			}
			if live && *p.EndpointURL != url {
				t.Errorf("status %s: endpoint_url %q", st, *p.EndpointURL)
			}
		}
	}
}

// TestPublicTaskAndWebhook: the owner's view says the model's task once
// validate has read it, and null for a webhook URL that was never given.
func TestPublicTaskAndWebhook(t *testing.T) {
	for _, tc := range []struct {
		name              string
		d                 Deployment
		wantTask, wantURL string // "" means null
	}{
		{"before validate, no webhook", Deployment{ID: "dep_2026_0a1b2c3d"}, "", ""},
		{"validated, with webhook", Deployment{
			ID:      "dep_2026_0a1b2c3d",
			Webhook: Webhook{URL: "https://example.com/h"},
			Model:   Model{PipelineTag: "text-to-image"},
		}, "text-to-image", "https://example.com/h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.d.Public(false)
			if got := deref(p.Task); got != tc.wantTask || (p.Task == nil) != (tc.wantTask == "") {
				t.Errorf("task = %v, want %q", p.Task, tc.wantTask)
			}
			if got := deref(p.WebhookURL); got != tc.wantURL || (p.WebhookURL == nil) != (tc.wantURL == "") {
				t.Errorf("webhook_url = %v, want %q", p.WebhookURL, tc.wantURL)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
