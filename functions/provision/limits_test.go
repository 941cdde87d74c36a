package provision_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
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
	if billed := e.rp.Spent(runpodKey, d.RunPodEndpointID); billed < d.Spend.USD {
		t.Errorf("recorded spend %v is more than RunPod billed (%v)", d.Spend.USD, billed)
	}
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
	expires := time.Now().Add(400 * time.Millisecond).UTC()
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
	if owed := d.Owes(); len(owed) != 1 || owed[0].Step != deployment.StepExpire {
		t.Fatalf("a ready deployment with an expiry owes %+v, want its expiry", owed)
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
