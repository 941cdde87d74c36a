package provision_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/api"
	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/ratelimit"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

// eventsOf splits the receiver's requests by event type.
func eventsOf(t *testing.T, reqs []received) map[string][]received {
	t.Helper()
	out := map[string][]received{}
	for _, r := range reqs {
		var ev provision.Event
		if err := json.Unmarshal(r.body, &ev); err != nil {
			t.Fatalf("webhook body %s: %v", r.body, err)
		}
		out[ev.Type] = append(out[ev.Type], r)
	}
	return out
}

// expectDeletedByLimit waits for the deployment to settle and checks what a
// limit owes: deleted with reason, no endpoint left on RunPod, the
// deployment.deleted webhook delivered (signed, one message id, the reason
// in its body).
func expectDeletedByLimit(t *testing.T, e *env, id, reason string) *deployment.Deployment {
	t.Helper()
	// A live deployment's only work may be its spend reads (settled but
	// not deleted): wait for the deletion first.
	e.waitFor(id, "deleted", func(d *deployment.Deployment) bool { return d.Status == deployment.StatusDeleted })
	d := e.settle(id)
	if d.Status != deployment.StatusDeleted || d.DeletedReason != reason {
		t.Fatalf("status %s, reason %q; want deleted, %q\n%s", d.Status, d.DeletedReason, reason, logText(d))
	}
	if eps := e.endpointsOf(id); len(eps) != 0 {
		t.Errorf("RunPod still holds endpoints of %s: %+v", id, eps)
	}
	if !d.EndpointDeleted {
		t.Error("the teardown did not confirm the endpoint deleted")
	}
	if !d.Webhook.Delivered || d.Webhook.Event != deployment.EventDeleted {
		t.Errorf("webhook %+v, want %s delivered", d.Webhook, deployment.EventDeleted)
	}
	deleted := eventsOf(t, e.hook.received())[deployment.EventDeleted]
	if len(deleted) == 0 {
		t.Fatal("the receiver got no deployment.deleted event")
	}
	checkDeliveries(t, e, id, deployment.EventDeleted, deleted)
	var ev provision.Event
	if err := json.Unmarshal(deleted[0].body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Data.Status != deployment.StatusDeleted || ev.Data.DeletedReason == nil || *ev.Data.DeletedReason != reason {
		t.Errorf("event data: status %s, deleted_reason %v; want deleted, %s", ev.Data.Status, ev.Data.DeletedReason, reason)
	}
	return d
}

// TestMaxSpendReachedDeletes: the simulator bills the warm worker by time
// (sped up: a second bills an hour of its GPU); the spend step reads the
// billing API every few milliseconds and, once the spend reaches
// max_spend_usd, the deployment is deleted like a DELETE. Every task is
// delivered twice, concurrently and out of order.
func TestMaxSpendReachedDeletes(t *testing.T) {
	e := newEnv(t, options{
		rpOpts:   []runpodsim.Option{runpodsim.WithBillingSpeed(3600)},
		newQueue: newChaos(2),
		steps:    func(s *provision.Steps) { s.SpendInterval = 5 * time.Millisecond },
	})
	const limit = 0.05 // about 0.15 s of a GPU at this speed
	id := e.start("openai-community/gpt2", createOpts{
		scaling: deployment.Scaling{MinWorkers: 1, MaxWorkers: 1, IdleTimeoutSeconds: 5},
		limits:  deployment.Limits{MaxSpendUSD: limit},
	})
	d := expectDeletedByLimit(t, e, id, deployment.ReasonMaxSpend)
	if d.Spend.USD < limit || d.Spend.ReadAt.IsZero() || d.Spend.BucketSeconds != 3600 || d.Spend.Reads < 1 {
		t.Errorf("spend %+v: want at least %v, read, in hourly buckets", d.Spend, limit)
	}
	billed := e.rp.Spent(runpodKey, d.RunPodEndpointID)
	if billed < d.Spend.USD {
		t.Errorf("recorded spend %v is more than RunPod billed (%v)", d.Spend.USD, billed)
	}
	t.Logf("limit $%.4f: spend read at deletion $%.4f after %d reads; RunPod billed $%.4f in all (the overshoot is the time from the read to the endpoint's deletion)",
		limit, d.Spend.USD, d.Spend.Reads, billed)
	p := d.Public(true)
	if p.Spend == nil || p.Spend.USD != d.Spend.USD || p.Limits.MaxSpendUSD == nil || *p.Limits.MaxSpendUSD != limit {
		t.Errorf("public spend %+v, limits %+v", p.Spend, p.Limits)
	}
	if p.Price == nil || p.Price.PerHourUSD <= 0 || p.Price.Pool != d.GPUPools[0] {
		t.Errorf("public price %+v for pools %v", p.Price, d.GPUPools)
	}
	if !hasLog(d, "spend $") {
		t.Errorf("no log line says why:\n%s", logText(d))
	}
}

// TestExpiresAtDeletes: a deployment past its expires_at is deleted with
// its reason, its endpoint gone and its webhook delivered; every task is
// delivered twice.
func TestExpiresAtDeletes(t *testing.T) {
	e := newEnv(t, options{newQueue: newChaos(2)})
	// Far enough ahead that the endpoint exists when it comes (ready in
	// tens of milliseconds here), so that the teardown has one to delete.
	expires := time.Now().Add(2 * time.Second).UTC()
	id := e.start("openai-community/gpt2", createOpts{limits: deployment.Limits{ExpiresAt: expires}})
	d := expectDeletedByLimit(t, e, id, deployment.ReasonExpired)
	if d.DeletedAt.Before(expires) {
		t.Errorf("deleted at %v, before expires_at %v", d.DeletedAt, expires)
	}
	if !hasLog(d, "expires_at") {
		t.Errorf("no log line says why:\n%s", logText(d))
	}
}

// TestOwnerDeleteAfterReadyKeepsOneEvent: a deployment with an expiry
// still owes it once ready; a DELETE before it owes no deployment.deleted
// webhook (the owner asked for it) and ends the expiry.
func TestOwnerDeleteAfterReadyKeepsOneEvent(t *testing.T) {
	e := newEnv(t, options{})
	id := e.start("openai-community/gpt2", createOpts{limits: deployment.Limits{ExpiresAt: time.Now().Add(time.Hour)}})
	d := e.waitFor(id, "ready, scaled, webhook delivered", func(d *deployment.Deployment) bool {
		return d.Status == deployment.StatusReady && d.Scaled && d.Webhook.Delivered
	})
	if owed := d.Owes(); len(owed) != 2 || owed[0].Step != deployment.StepExpire || owed[1].Step != deployment.StepSpend {
		t.Fatalf("a ready deployment with an expiry owes %+v, want its expiry and its spend reads", owed)
	}
	e.deleteDeployment(id)
	d = e.settle(id)
	if d.Status != deployment.StatusDeleted || len(e.endpointsOf(id)) != 0 {
		t.Fatalf("status %s, endpoints %d", d.Status, len(e.endpointsOf(id)))
	}
	if got := eventsOf(t, e.hook.received()); len(got[deployment.EventDeleted]) != 0 || len(got[deployment.EventReady]) == 0 {
		t.Errorf("events %v: want the ready event only", got)
	}
}

// apiKey is the owner's API key in the tests that call the public API.
const apiKey = "test-api-key-owner-0123456789"

// publicAPI is the public API on the env's store, the owner's key bound to
// the owner of the env's deployments.
func (e *env) publicAPI() http.Handler {
	e.t.Helper()
	sum := sha256.Sum256([]byte(apiKey))
	keys, err := auth.ParseKeyring("", owner+":"+hex.EncodeToString(sum[:]))
	if err != nil {
		e.t.Fatal(err)
	}
	srv := &api.Server{Store: e.store, Sealer: e.sealer, Keys: keys, Limiter: ratelimit.NewMemory(1000, time.Minute, nil),
		RateLimit: 1000, GPUs: gpu.Default(), Log: quiet}
	return srv.Handler()
}

func (e *env) patch(h http.Handler, id, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPatch, "/v1/deployments/"+id, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestPatchScalesTheEndpoint: PATCH on a ready deployment changes the
// scaling of its RunPod endpoint (the scale step runs again, delivered
// twice); a bad value is a 422 that changes nothing on RunPod.
func TestPatchScalesTheEndpoint(t *testing.T) {
	e := newEnv(t, options{newQueue: newChaos(2)})
	id := e.start("openai-community/gpt2", createOpts{scaling: deployment.Scaling{MinWorkers: 0, MaxWorkers: 2, IdleTimeoutSeconds: 5}})
	e.expectReady(id)
	h := e.publicAPI()

	if rec := e.patch(h, id, `{"min_workers": 3, "max_workers": 2}`); rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("PATCH min above max = %d %s, want 422", rec.Code, rec.Body)
	}
	if rec := e.patch(h, id, `{"idle_timeout_seconds": 0}`); rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("PATCH idle 0 = %d %s, want 422", rec.Code, rec.Body)
	}
	if ep := e.endpointsOf(id)[0]; ep.WorkersMin != 0 || ep.WorkersMax != 2 || ep.IdleTimeout != 5 {
		t.Fatalf("refused PATCHes changed the endpoint: %d..%d idle %d", ep.WorkersMin, ep.WorkersMax, ep.IdleTimeout)
	}

	rec := e.patch(h, id, `{"min_workers": 1, "max_workers": 4, "idle_timeout_seconds": 30}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("PATCH = %d %s", rec.Code, rec.Body)
	}
	d := e.waitFor(id, "scaled again", func(d *deployment.Deployment) bool { return d.Scaled && d.ScalingChanges == 1 })
	// A late duplicate of the first scale task may still write the old
	// scaling after the record says scaled; it then re-reads the record and
	// applies it again (issue 23, item 2): the endpoint settles on the PATCH.
	var eps []runpodsim.Endpoint
	wait.Until(t, settleTimeout, "the endpoint to scale 1..4 idle 30", func() bool {
		eps = e.endpointsOf(id)
		return len(eps) == 1 && eps[0].WorkersMin == 1 && eps[0].WorkersMax == 4 && eps[0].IdleTimeout == 30
	}, func() string {
		var seen []string
		for _, ep := range eps {
			seen = append(seen, fmt.Sprintf("%d..%d idle %d", ep.WorkersMin, ep.WorkersMax, ep.IdleTimeout))
		}
		return fmt.Sprintf("%d endpoints: %v", len(eps), seen)
	})
	if d.Status != deployment.StatusReady || !hasLog(d, "Changed by the owner") {
		t.Errorf("status %s\n%s", d.Status, logText(d))
	}
	// The simulator runs min_workers workers: the new warm worker starts.
	wait.Until(t, settleTimeout, "a warm worker on the endpoint", func() bool {
		return len(e.endpointsOf(id)[0].Workers) == 1
	})
}

// TestPatchMovesTheExpiry: a later expires_at replaces the earlier one
// (whose task, when it comes, does nothing), a sooner one deletes the
// deployment then.
func TestPatchMovesTheExpiry(t *testing.T) {
	e := newEnv(t, options{newQueue: newChaos(2)})
	id := e.start("openai-community/gpt2", createOpts{limits: deployment.Limits{ExpiresAt: time.Now().Add(time.Hour)}})
	e.waitFor(id, "ready and scaled", func(d *deployment.Deployment) bool {
		return d.Status == deployment.StatusReady && d.Scaled && d.Webhook.Delivered
	})
	rec := e.patch(e.publicAPI(), id, `{"ttl_seconds": 60}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("PATCH = %d %s", rec.Code, rec.Body)
	}
	d := e.get(id)
	if d.Limits.Changes != 1 || d.Limits.ExpiresAt.After(time.Now().Add(61*time.Second)) {
		t.Fatalf("limits %+v", d.Limits)
	}
	// Bring the new expiry to now, as time would: the task owed for it
	// (seq 1) deletes the deployment; the first one (seq 0) never does.
	_, err := e.store.Update(context.Background(), id, func(d *deployment.Deployment) error {
		d.Limits.ExpiresAt = time.Now().Add(50 * time.Millisecond)
		d.Limits.Changes++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	expectDeletedByLimit(t, e, id, deployment.ReasonExpired)
}
