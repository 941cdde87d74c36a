package deployment

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestOwes(t *testing.T) {
	next := time.Date(2026, 12, 1, 10, 0, 30, 0, time.UTC)
	lease := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	hook := Webhook{URL: "https://example.com/hook"}
	// rec builds a record in st with the given changes.
	rec := func(st Status, change func(d *Deployment)) *Deployment {
		d := &Deployment{ID: "dep_2026_0a1b2c3d", Status: st, Webhook: hook}
		if change != nil {
			change(d)
		}
		return d
	}
	withEndpoint := func(d *Deployment) { d.RunPodEndpointID = "ep1" }
	tests := []struct {
		name string
		d    *Deployment
		want []Owed
	}{
		// Every provisioning status owes its step, and only it.
		{"validating", rec(StatusValidating, nil), []Owed{{Step: StepValidate}}},
		{"selecting_gpu", rec(StatusSelectingGPU, nil), []Owed{{Step: StepSelectGPU}}},
		{"creating_endpoint", rec(StatusCreatingEndpoint, nil), []Owed{{Step: StepCreateEndpoint}}},
		{"creating_endpoint holding the lease", rec(StatusCreatingEndpoint, func(d *Deployment) { d.EndpointLease = lease }),
			[]Owed{{Step: StepCreateEndpoint}}},
		{"downloading_model", rec(StatusDownloadingModel, withEndpoint), []Owed{{Step: StepWatch}, {Step: StepSpend}}},
		{"loading_model", rec(StatusLoadingModel, withEndpoint), []Owed{{Step: StepWatch}, {Step: StepSpend}}},

		// ready owes scaling and the ready webhook (and, like every live
		// endpoint, the reads of its spend).
		{"ready", rec(StatusReady, withEndpoint), []Owed{{Step: StepScale}, {Step: StepWebhook}, {Step: StepSpend}}},
		{"ready, scaled", rec(StatusReady, func(d *Deployment) { withEndpoint(d); d.Scaled = true }),
			[]Owed{{Step: StepWebhook}, {Step: StepSpend}}},
		{"ready, no endpoint recorded yet: nothing to scale", rec(StatusReady, nil), []Owed{{Step: StepWebhook}}},
		{"ready, webhook retry after two attempts", rec(StatusReady, func(d *Deployment) {
			withEndpoint(d)
			d.Scaled = true
			d.Webhook.Attempts, d.Webhook.NextAttemptAt = 2, next
		}), []Owed{{Step: StepWebhook, Seq: 2, NotBefore: next}, {Step: StepSpend}}},
		{"ready, webhook delivered", rec(StatusReady, func(d *Deployment) {
			withEndpoint(d)
			d.Scaled, d.Webhook.Delivered = true, true
		}), []Owed{{Step: StepSpend}}},
		{"ready, no webhook URL", rec(StatusReady, func(d *Deployment) { withEndpoint(d); d.Scaled, d.Webhook.URL = true, "" }), []Owed{{Step: StepSpend}}},

		// webhook_failed still owes scaling, never the webhook again.
		{"webhook_failed", rec(StatusWebhookFailed, func(d *Deployment) { withEndpoint(d); d.Webhook.GaveUp = true }),
			[]Owed{{Step: StepScale}, {Step: StepSpend}}},
		{"webhook_failed, scaled", rec(StatusWebhookFailed, func(d *Deployment) {
			withEndpoint(d)
			d.Webhook.GaveUp, d.Scaled = true, true
		}), []Owed{{Step: StepSpend}}},

		// failed owes the failure webhook and the teardown of what may exist.
		{"failed before any endpoint", rec(StatusFailed, nil), []Owed{{Step: StepWebhook}}},
		{"failed with no webhook URL", rec(StatusFailed, func(d *Deployment) { withEndpoint(d); d.Webhook.URL = "" }),
			[]Owed{{Step: StepTeardown}}},
		{"failed with an endpoint", rec(StatusFailed, withEndpoint), []Owed{{Step: StepWebhook}, {Step: StepTeardown}}},
		{"failed while a create held the lease", rec(StatusFailed, func(d *Deployment) { d.EndpointLease = lease }),
			[]Owed{{Step: StepWebhook}, {Step: StepTeardown}}},
		{"failed, torn down, webhook given up", rec(StatusFailed, func(d *Deployment) {
			withEndpoint(d)
			d.EndpointDeleted, d.Webhook.GaveUp = true, true
		}), nil},
		{"failed, endpoint learnt after the teardown", rec(StatusFailed, func(d *Deployment) {
			d.EndpointLease, d.EndpointDeleted, d.Webhook.Delivered = lease, true, true
			d.RunPodEndpointID = "ep1"
			d.EndpointLearnt()
		}), []Owed{{Step: StepTeardown, Seq: 1}}},

		// deleted owes the teardown only: no webhook, no scaling.
		{"deleted before any endpoint", rec(StatusDeleted, nil), nil},
		{"deleted with an endpoint", rec(StatusDeleted, withEndpoint), []Owed{{Step: StepTeardown}}},
		{"deleted, torn down", rec(StatusDeleted, func(d *Deployment) { withEndpoint(d); d.EndpointDeleted = true }), nil},
		{"deleted, two endpoints learnt", rec(StatusDeleted, func(d *Deployment) {
			d.EndpointLearnt()
			withEndpoint(d)
			d.EndpointLearnt()
		}), []Owed{{Step: StepTeardown, Seq: 2}}},
		{"deleted while ready and unscaled", rec(StatusDeleted, func(d *Deployment) { withEndpoint(d); d.Webhook.Delivered = true }),
			[]Owed{{Step: StepTeardown}}},

		{"unknown status", rec(Status("paused"), withEndpoint), nil},

		// Limits: a live deployment owes its expiry and, with an endpoint,
		// the reads of its spend; changes name new tasks.
		{"ready, scaling changed twice", rec(StatusReady, func(d *Deployment) {
			withEndpoint(d)
			d.Webhook.Delivered, d.ScalingChanges = true, 2
		}), []Owed{{Step: StepScale, Seq: 2}, {Step: StepSpend}}},
		{"loading with an expiry changed once", rec(StatusLoadingModel, func(d *Deployment) {
			withEndpoint(d)
			d.Limits.ExpiresAt, d.Limits.Changes = next, 1
		}), []Owed{{Step: StepWatch}, {Step: StepExpire, Seq: 1, NotBefore: next}, {Step: StepSpend}}},
		{"validating with max spend: no endpoint, no read", rec(StatusValidating, func(d *Deployment) { d.Limits.MaxSpendUSD = 5 }),
			[]Owed{{Step: StepValidate}}},
		{"ready with max spend, read 3 times", rec(StatusReady, func(d *Deployment) {
			withEndpoint(d)
			d.Scaled, d.Webhook.Delivered = true, true
			d.Limits.MaxSpendUSD, d.Spend.Reads, d.Spend.NextReadAt = 5, 3, next
		}), []Owed{{Step: StepSpend, Seq: 3, NotBefore: next}}},
		{"ready without max spend, read twice: spend owed all the same", rec(StatusReady, func(d *Deployment) {
			withEndpoint(d)
			d.Scaled, d.Webhook.Delivered = true, true
			d.Spend.Reads, d.Spend.NextReadAt = 2, next
		}), []Owed{{Step: StepSpend, Seq: 2, NotBefore: next}}},
		{"failed with limits: only the failure's work", rec(StatusFailed, func(d *Deployment) {
			withEndpoint(d)
			d.Limits.MaxSpendUSD, d.Limits.ExpiresAt = 5, next
		}), []Owed{{Step: StepWebhook}, {Step: StepTeardown}}},
		{"deleted by the owner: teardown, no webhook", rec(StatusDeleted, func(d *Deployment) {
			withEndpoint(d)
			d.DeletedReason, d.Limits.ExpiresAt = ReasonOwner, next
		}), []Owed{{Step: StepTeardown}}},
		{"deleted at the spend limit after a delivered ready webhook", rec(StatusReady, func(d *Deployment) {
			withEndpoint(d)
			d.Scaled, d.Webhook.Delivered, d.Webhook.Attempts = true, true, 2
			d.Limits.MaxSpendUSD = 1
			if err := d.LimitReached(next, ReasonMaxSpend, "spend reached"); err != nil {
				panic(err)
			}
		}), []Owed{{Step: StepWebhook, Seq: 3}, {Step: StepTeardown}}},
		{"deleted at the spend limit while the ready webhook's first attempt was queued", rec(StatusReady, func(d *Deployment) {
			withEndpoint(d)
			d.Scaled, d.Limits.MaxSpendUSD = true, 1
			if err := d.LimitReached(next, ReasonMaxSpend, "spend reached"); err != nil {
				panic(err)
			}
		}), []Owed{{Step: StepWebhook, Seq: 1}, {Step: StepTeardown}}},
	}
	covered := map[Status]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			covered[tc.d.Status] = true
			got := tc.d.Owes()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Owes() (-want +got):\n%s", diff)
			}
			if tc.d.NeedsWork() != (len(tc.want) > 0) {
				t.Errorf("NeedsWork() = %v with %d owed", tc.d.NeedsWork(), len(tc.want))
			}
		})
	}
	for _, st := range Statuses {
		if !covered[st] {
			t.Errorf("status %s has no case", st)
		}
	}
}

func TestStepValid(t *testing.T) {
	for _, s := range Steps {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
	}
	for _, s := range []Step{"", "Validate", "deploy"} {
		if s.Valid() {
			t.Errorf("%q valid", s)
		}
	}
}

func TestLimitReached(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	d := &Deployment{
		ID:       "dep_2026_0a1b2c3d",
		Status:   StatusReady,
		Webhook:  Webhook{URL: "https://example.com/hook", Event: EventReady, Delivered: true, Attempts: 1, MessageID: "m"},
		Endpoint: Endpoint{RunPodEndpointID: "ep1"},
	}
	if err := d.LimitReached(now, ReasonExpired, "expires_at passed"); err != nil {
		t.Fatal(err)
	}
	if d.Status != StatusDeleted || d.DeletedReason != ReasonExpired || !d.DeletedAt.Equal(now) {
		t.Errorf("status %s reason %q deleted at %v", d.Status, d.DeletedReason, d.DeletedAt)
	}
	want := Webhook{URL: "https://example.com/hook", SeqBase: 2}
	if diff := cmp.Diff(want, d.Webhook); diff != "" {
		t.Errorf("webhook state (-want +got):\n%s", diff)
	}
	if d.WebhookEvent() != EventDeleted || !d.WebhookPending() {
		t.Errorf("event %q pending %v", d.WebhookEvent(), d.WebhookPending())
	}
	p := d.Public(false)
	if p.DeletedReason == nil || *p.DeletedReason != ReasonExpired {
		t.Errorf("public deleted_reason = %v", p.DeletedReason)
	}
	// A second limit on a deleted deployment changes nothing.
	before := *d
	if err := d.LimitReached(now.Add(time.Second), ReasonMaxSpend, "spend"); err == nil {
		t.Error("LimitReached on a deleted deployment succeeded")
	}
	if d.DeletedReason != before.DeletedReason || !d.DeletedAt.Equal(before.DeletedAt) {
		t.Error("a refused LimitReached changed the record")
	}
	for _, st := range []Status{StatusFailed, StatusDeleted} {
		x := &Deployment{Status: st}
		if x.LimitReached(now, ReasonExpired, "x") == nil {
			t.Errorf("%s: LimitReached succeeded", st)
		}
	}
}

func TestPublicPrice(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	d := &Deployment{
		Status:  StatusReady,
		Price:   &Price{Pool: "AMPERE_48", PerHourUSD: 1.8, FallbackMaxPerHourUSD: 2.7, CatalogAt: at, CatalogSource: "runpod"},
		Request: Request{Scaling: Scaling{MinWorkers: 1, MaxWorkers: 3}},
	}
	p := d.Public(false).Price
	f := 2.7
	want := &PublicPrice{Pool: "AMPERE_48", PerHourUSD: 1.8, PerSecondUSD: 0.0005, LoadingPerHourUSD: 1.8,
		IdlePerHourUSD: 1.8, MaxPerHourUSD: 5.4, FallbackMaxPerHourUSD: &f, CatalogSource: "runpod", CatalogAt: &at, Assumes: PriceAssumes}
	if diff := cmp.Diff(want, p, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
		t.Errorf("price (-want +got):\n%s", diff)
	}
	if (&Deployment{}).Public(false).Price != nil {
		t.Error("price shown before a pool was chosen")
	}
}

// TestOverdue: each piece of owed work is judged on its own due time and
// progress, and the spend reads' writes are no progress of the rest (issue
// 23, item 3: a deployment with max_spend_usd, written by every read, was
// never found stuck).
func TestOverdue(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	const grace = 5 * time.Minute
	long := now.Add(-2 * time.Hour)
	ready := func(change func(d *Deployment)) *Deployment {
		d := &Deployment{
			ID:        "dep_2026_0a1b2c3d",
			Status:    StatusReady,
			Webhook:   Webhook{URL: "https://example.com/hook", Delivered: true},
			UpdatedAt: long,
			Version:   7,
			Endpoint:  Endpoint{RunPodEndpointID: "ep1"},
			Runs:      Runs{Scaled: true},
		}
		d.Spend.NextReadAt = now.Add(time.Minute) // every live endpoint owes spend reads: the next one is due later
		change(d)
		return d
	}
	// spendWrote is the record after a spend read wrote it just now.
	spendWrote := func(d *Deployment) {
		d.Limits.MaxSpendUSD = 100
		if err := d.RecordSpend(now.Add(-time.Minute), SpendRead{USD: 0, Since: long}); err != nil {
			t.Fatal(err)
		}
		d.Spend.NextReadAt = now.Add(4 * time.Minute)
		d.Version++
		d.UpdatedAt = now.Add(-time.Minute)
	}
	for _, tc := range []struct {
		name string
		d    *Deployment
		want []Step
	}{
		{"nothing owed", ready(func(*Deployment) {}), nil},
		{"an expiry in three days", ready(func(d *Deployment) { d.Limits.ExpiresAt = now.Add(72 * time.Hour) }), nil},
		{"an expiry just passed", ready(func(d *Deployment) { d.Limits.ExpiresAt = now.Add(-time.Second) }), nil},
		{"an expiry passed long ago", ready(func(d *Deployment) { d.Limits.ExpiresAt = now.Add(-grace) }), []Step{StepExpire}},
		{"an expiry passed long ago, spend read just now", ready(func(d *Deployment) {
			d.Limits.ExpiresAt = now.Add(-time.Hour)
			spendWrote(d)
		}), []Step{StepExpire}},
		{"a spend read due later", ready(func(d *Deployment) { d.Limits.MaxSpendUSD, d.Spend.NextReadAt = 1, now.Add(time.Minute) }), nil},
		{"a spend read overdue", ready(func(d *Deployment) { d.Limits.MaxSpendUSD, d.Spend.NextReadAt = 1, now.Add(-time.Hour) }), []Step{StepSpend}},
		{"the first spend read, owed long ago", ready(func(d *Deployment) { d.Spend.NextReadAt = time.Time{} }), []Step{StepSpend}},
		{"scaling owed, record written long ago", ready(func(d *Deployment) { d.Scaled = false }), []Step{StepScale}},
		{"scaling owed, record written just now", ready(func(d *Deployment) { d.Scaled = false; d.UpdatedAt = now }), nil},
		{"scaling owed, only spend reads since", ready(func(d *Deployment) { d.Scaled = false; spendWrote(d) }), []Step{StepScale}},
		{"downloading for two hours, spend read just now", ready(func(d *Deployment) {
			d.Status, d.StatusChangedAt, d.Scaled = StatusDownloadingModel, long, false
			spendWrote(d)
		}), []Step{StepWatch}},
	} {
		var got []Step
		for _, o := range tc.d.Overdue(now, grace) {
			got = append(got, o.Step)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: overdue (-want +got):\n%s", tc.name, diff)
		}
	}
}
