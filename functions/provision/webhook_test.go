package provision_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

// checkDeliveries verifies every request the receiver got: the same
// webhook-id, a valid Standard Webhooks signature under the owner's secret,
// the event and the deployment, and no secret in the body.
func checkDeliveries(t *testing.T, e *env, id, event string, reqs []received) {
	t.Helper()
	whsec := webhook.OwnerSecret(e.signingKey, owner)
	wantID := provision.MessageID(id, event)
	for i, r := range reqs {
		if got := r.header.Get(webhook.HeaderID); got != wantID {
			t.Errorf("attempt %d: webhook-id %q, want %q", i+1, got, wantID)
		}
		if err := webhook.Verify(whsec, r.header, r.body, 0, time.Now()); err != nil {
			t.Errorf("attempt %d: signature: %v", i+1, err)
		}
		var ev provision.Event
		if err := json.Unmarshal(r.body, &ev); err != nil {
			t.Fatalf("attempt %d: body %s: %v", i+1, r.body, err)
		}
		if ev.Type != event || ev.Data.DeploymentID != id {
			t.Errorf("attempt %d: event %q for %q", i+1, ev.Type, ev.Data.DeploymentID)
		}
		if strings.Contains(string(r.body), runpodKey) {
			t.Errorf("attempt %d: the body carries the RunPod key", i+1)
		}
	}
}

func TestWebhookRetriedWithStableIDThenDelivered(t *testing.T) {
	const failures = 2
	e := newEnv(t, options{respond: func(n int) int {
		if n <= failures {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}})
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.expectReady(id)
	reqs := e.hook.received()
	if len(reqs) != failures+1 || d.Webhook.Attempts != failures+1 {
		t.Fatalf("%d requests, %d attempts recorded; want %d", len(reqs), d.Webhook.Attempts, failures+1)
	}
	checkDeliveries(t, e, id, deployment.EventReady, reqs)
	var ev provision.Event
	_ = json.Unmarshal(reqs[len(reqs)-1].body, &ev)
	if ev.Data.Status != deployment.StatusReady || ev.Data.EndpointURL == nil || *ev.Data.EndpointURL != d.EndpointURL {
		t.Errorf("ready event data: status %s endpoint_url %v", ev.Data.Status, ev.Data.EndpointURL)
	}
	if d.Webhook.LastStatusCode != http.StatusOK || d.Webhook.MessageID != provision.MessageID(id, deployment.EventReady) {
		t.Errorf("webhook state %+v", d.Webhook)
	}
}

func TestWebhookAlwaysFailingEndsWebhookFailed(t *testing.T) {
	schedule := []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond}
	e := newEnv(t, options{
		respond: func(int) int { return http.StatusServiceUnavailable },
		steps:   func(s *provision.Steps) { s.WebhookSchedule = schedule },
	})
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.settle(id)
	if d.Status != deployment.StatusWebhookFailed {
		t.Fatalf("status %s, want webhook_failed\n%s", d.Status, logText(d))
	}
	if d.Webhook.Attempts != len(schedule) || !d.Webhook.GaveUp || d.Webhook.Delivered {
		t.Errorf("webhook %+v, want %d attempts and given up", d.Webhook, len(schedule))
	}
	if d.Webhook.LastStatusCode != http.StatusServiceUnavailable {
		t.Errorf("last status code %d, want 503", d.Webhook.LastStatusCode)
	}
	reqs := e.hook.received()
	if len(reqs) != len(schedule) {
		t.Errorf("the receiver got %d requests, want %d", len(reqs), len(schedule))
	}
	checkDeliveries(t, e, id, deployment.EventReady, reqs)
	// The endpoint is ready all the same: it stays, scaled as asked.
	if eps := e.endpointsOf(id); len(eps) != 1 || !d.Scaled {
		t.Errorf("%d endpoints, scaled %v", len(eps), d.Scaled)
	}
}

// TestDeleteStopsPendingWebhookRetries: a deployment deleted while its
// webhook waits for a retry gets no more attempts, neither from the retry
// already queued nor after a restart (nothing is left to resume).
func TestDeleteStopsPendingWebhookRetries(t *testing.T) {
	e := newEnv(t, options{
		respond: func(int) int { return http.StatusServiceUnavailable },
		steps:   func(s *provision.Steps) { s.WebhookSchedule = []time.Duration{0, time.Hour} },
	})
	id := e.start("openai-community/gpt2", createOpts{})
	e.waitFor(id, "first webhook attempt failed", func(d *deployment.Deployment) bool {
		return d.Webhook.Attempts == 1 && !d.Webhook.NextAttemptAt.IsZero()
	})
	e.deleteDeployment(id)
	d := e.settle(id)
	if d.Status != deployment.StatusDeleted || d.NeedsWork() {
		t.Fatalf("status %s, needs work %v: a restart would resume it", d.Status, d.NeedsWork())
	}
	// The queued retry comes due.
	e.steps.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := e.handle(context.Background(), queue.Task{DeploymentID: id, Step: deployment.StepWebhook, Seq: 1}, queue.Delivery{Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.hook.received()); n != 1 {
		t.Errorf("the receiver got %d requests, want 1 (none after the delete)", n)
	}
	if d := e.get(id); d.Webhook.Attempts != 1 {
		t.Errorf("%d attempts recorded, want 1", d.Webhook.Attempts)
	}
}

func TestWebhookNonRetryableEndsAtOnce(t *testing.T) {
	e := newEnv(t, options{respond: func(int) int { return http.StatusGone }})
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.settle(id)
	if d.Status != deployment.StatusWebhookFailed {
		t.Fatalf("status %s, want webhook_failed", d.Status)
	}
	if d.Webhook.Attempts != 1 || d.Webhook.LastStatusCode != http.StatusGone || !d.Webhook.GaveUp {
		t.Errorf("webhook %+v, want one attempt ending in 410", d.Webhook)
	}
	if n := len(e.hook.received()); n != 1 {
		t.Errorf("the receiver got %d requests, want 1", n)
	}
}

func TestFailedDeploymentWebhookGivesUpButStaysFailed(t *testing.T) {
	e := newEnv(t, options{respond: func(int) int { return http.StatusInternalServerError }})
	e.rp.AddAccount(runpodKey, 0)
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.settle(id)
	if d.Status != deployment.StatusFailed || !d.Webhook.GaveUp || d.Webhook.Event != deployment.EventFailed {
		t.Fatalf("status %s webhook %+v", d.Status, d.Webhook)
	}
	reqs := e.hook.received()
	if len(reqs) != len(e.steps.WebhookSchedule) {
		t.Errorf("%d requests, want %d", len(reqs), len(e.steps.WebhookSchedule))
	}
	checkDeliveries(t, e, id, deployment.EventFailed, reqs)
	var ev provision.Event
	_ = json.Unmarshal(reqs[0].body, &ev)
	if ev.Data.Error == nil || *ev.Data.Error != d.Error {
		t.Errorf("failed event error %v, want %q", ev.Data.Error, d.Error)
	}
}

func TestWebhookUnderDuplicatedDelivery(t *testing.T) {
	e := newEnv(t, options{
		newQueue: newChaos(3),
		respond: func(n int) int {
			if n == 1 {
				return http.StatusBadGateway
			}
			return http.StatusOK
		},
		rpOpts: []runpodsim.Option{runpodsim.WithSilentContainer()},
	})
	id := e.start("openai-community/gpt2", createOpts{})
	d := e.expectReady(id)
	reqs := e.hook.received()
	// Copies of one attempt's task may each POST before either records
	// the result (at least once, as Standard Webhooks allows), but every
	// POST carries the same id and no attempt is counted twice.
	if len(reqs) < 2 || d.Webhook.Attempts > len(reqs) {
		t.Errorf("%d requests, %d attempts", len(reqs), d.Webhook.Attempts)
	}
	checkDeliveries(t, e, id, deployment.EventReady, reqs)
}

// TestWebhookErrorTellsTheOwnerASentence: a webhook host that resolves to an
// internal address is refused, and the owner's view (last_error, the log)
// says so in a sentence without what the name resolved to or the dial error.
func TestWebhookErrorTellsTheOwnerASentence(t *testing.T) {
	e := newEnv(t, options{steps: func(s *provision.Steps) {
		s.Sender = webhook.NewSender(webhook.Options{Timeout: 5 * time.Second,
			LookupNetIP: func(context.Context, string, string) ([]netip.Addr, error) {
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
			}})
	}})
	id := e.start("openai-community/gpt2", createOpts{webhook: "https://hooks.internal.example:18940/h"})
	d := e.settle(id)
	if d.Status != deployment.StatusWebhookFailed || d.Webhook.LastError == "" {
		t.Fatalf("status %s, webhook %+v", d.Status, d.Webhook)
	}
	view := d.Public(true)
	view.EndpointURL = nil // the simulator's job API, on loopback: not the webhook's address
	pub, err := json.Marshal(view)
	if err != nil {
		t.Fatal(err)
	}
	for _, internal := range []string{"127.0.0.1", "dial", "prohibited", "18940:"} {
		if strings.Contains(string(pub), internal) {
			t.Errorf("the owner's view carries %q:\nlast_error %q\n%s", internal, d.Webhook.LastError, logText(d))
		}
	}
	if !strings.Contains(d.Webhook.LastError, "not a public address") {
		t.Errorf("last_error %q does not say why", d.Webhook.LastError)
	}
}
