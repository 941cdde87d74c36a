package deployment

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
		{"downloading_model", rec(StatusDownloadingModel, withEndpoint), []Owed{{Step: StepWatch}}},
		{"loading_model", rec(StatusLoadingModel, withEndpoint), []Owed{{Step: StepWatch}}},

		// ready owes scaling and the ready webhook.
		{"ready", rec(StatusReady, withEndpoint), []Owed{{Step: StepScale}, {Step: StepWebhook}}},
		{"ready, scaled", rec(StatusReady, func(d *Deployment) { withEndpoint(d); d.Scaled = true }),
			[]Owed{{Step: StepWebhook}}},
		{"ready, no endpoint recorded yet: nothing to scale", rec(StatusReady, nil), []Owed{{Step: StepWebhook}}},
		{"ready, webhook retry after two attempts", rec(StatusReady, func(d *Deployment) {
			withEndpoint(d)
			d.Scaled = true
			d.Webhook.Attempts, d.Webhook.NextAttemptAt = 2, next
		}), []Owed{{Step: StepWebhook, Seq: 2, NotBefore: next}}},
		{"ready, webhook delivered", rec(StatusReady, func(d *Deployment) {
			withEndpoint(d)
			d.Scaled, d.Webhook.Delivered = true, true
		}), nil},
		{"ready, no webhook URL", rec(StatusReady, func(d *Deployment) { withEndpoint(d); d.Scaled, d.Webhook.URL = true, "" }), nil},

		// webhook_failed still owes scaling, never the webhook again.
		{"webhook_failed", rec(StatusWebhookFailed, func(d *Deployment) { withEndpoint(d); d.Webhook.GaveUp = true }),
			[]Owed{{Step: StepScale}}},
		{"webhook_failed, scaled", rec(StatusWebhookFailed, func(d *Deployment) {
			withEndpoint(d)
			d.Webhook.GaveUp, d.Scaled = true, true
		}), nil},

		// failed owes the failure webhook and the teardown of what may exist.
		{"failed before any endpoint", rec(StatusFailed, nil), []Owed{{Step: StepWebhook}}},
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
