package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
)

// createOne creates a deployment for key and returns its id.
func createOne(t *testing.T, f *fixture, key, body string) string {
	t.Helper()
	rec := f.do(t, "POST", "/v1/deployments", key, body)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", rec.Code, rec.Body)
	}
	return body2id(t, rec.Body.Bytes())
}

func body2id(t *testing.T, b []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m["deployment_id"].(string)
}

// setStatus moves a stored deployment to st (as the chain would).
func setStatus(t *testing.T, f *fixture, id string, st deployment.Status, change func(d *deployment.Deployment)) {
	t.Helper()
	_, err := f.store.Update(context.Background(), id, func(d *deployment.Deployment) error {
		d.Status = st
		if change != nil {
			change(d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPatchChangesLimitsAndScaling: PATCH changes what it names, leaves the
// rest, and makes the change owed work (scale with a new sequence number,
// expire for the new time); the same values again write nothing.
func TestPatchChangesLimitsAndScaling(t *testing.T) {
	f := newFixture(t)
	now := *f.clock
	id := createOne(t, f, keyA, createWith(t, map[string]any{"min_workers": 0, "max_workers": 2, "ttl_seconds": 3600}))
	setStatus(t, f, id, deployment.StatusReady, func(d *deployment.Deployment) {
		d.RunPodEndpointID, d.Scaled = "ep1", true
	})
	before, _ := f.store.Get(context.Background(), id)

	rec := f.do(t, "PATCH", "/v1/deployments/"+id, keyA, `{"min_workers": 1, "max_workers": 3, "max_spend_usd": 12.5, "ttl_seconds": 7200}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("PATCH = %d %s", rec.Code, rec.Body)
	}
	got := body(t, rec)
	if diff := cmp.Diff(map[string]any{"min_workers": 1.0, "max_workers": 3.0, "idle_timeout_seconds": float64(DefaultIdleTimeoutSeconds)}, got["scaling"]); diff != "" {
		t.Errorf("scaling (-want +got):\n%s", diff)
	}
	wantLimits := map[string]any{"max_spend_usd": 12.5, "expires_at": now.Add(2 * time.Hour).Format(time.RFC3339), "expiry_source": "owner"}
	if diff := cmp.Diff(wantLimits, got["limits"]); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}
	d, _ := f.store.Get(context.Background(), id)
	if d.Scaled || d.ScalingChanges != before.ScalingChanges+1 || d.Limits.Changes != before.Limits.Changes+1 {
		t.Errorf("scaled %v, scaling changes %d, limit changes %d", d.Scaled, d.ScalingChanges, d.Limits.Changes)
	}
	owed := map[deployment.Step]int{}
	for _, o := range d.Owes() {
		owed[o.Step] = o.Seq
	}
	if seq, ok := owed[deployment.StepScale]; !ok || seq != 1 {
		t.Errorf("owes %v: want scale with seq 1", d.Owes())
	}
	if seq, ok := owed[deployment.StepExpire]; !ok || seq != 1 {
		t.Errorf("owes %v: want expire with seq 1", d.Owes())
	}
	if _, ok := owed[deployment.StepSpend]; !ok {
		t.Errorf("owes %v: want the spend reads of a deployment with max_spend_usd", d.Owes())
	}

	// The same values again: 200, nothing written.
	rec = f.do(t, "PATCH", "/v1/deployments/"+id, keyA, `{"min_workers": 1, "max_spend_usd": 12.5}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("PATCH again = %d %s", rec.Code, rec.Body)
	}
	if again, _ := f.store.Get(context.Background(), id); again.Version != d.Version {
		t.Errorf("an unchanged PATCH wrote the record (version %d -> %d)", d.Version, again.Version)
	}
}

// TestPatchRefusals: bad values are 422 naming the field, another owner's
// or an unknown deployment 404, a deleted one 409; none changes anything.
func TestPatchRefusals(t *testing.T) {
	f := newFixture(t)
	id := createOne(t, f, keyA, createWith(t, map[string]any{"max_workers": 2}))
	gone := createOne(t, f, keyA, validCreate)
	setStatus(t, f, gone, deployment.StatusDeleted, nil)
	before, _ := f.store.Get(context.Background(), id)
	tests := []struct {
		name, key, id, body string
		code                int
		field               string
	}{
		{"empty body", keyA, id, `{}`, 422, "body"},
		{"unknown field", keyA, id, `{"gpu_tier": "H100"}`, 422, "gpu_tier"},
		{"min above max", keyA, id, `{"min_workers": 3}`, 422, "min_workers"},
		{"max below min", keyA, id, `{"min_workers": 2, "max_workers": 1}`, 422, "max_workers"},
		{"min out of range", keyA, id, `{"min_workers": 11}`, 422, "min_workers"},
		{"max zero", keyA, id, `{"max_workers": 0}`, 422, "max_workers"},
		{"idle too short", keyA, id, `{"idle_timeout_seconds": 1}`, 422, "idle_timeout_seconds"},
		{"workers as a string", keyA, id, `{"max_workers": "2"}`, 422, "max_workers"},
		{"null", keyA, id, `{"max_spend_usd": null}`, 422, "max_spend_usd"},
		{"negative spend", keyA, id, `{"max_spend_usd": -5}`, 422, "max_spend_usd"},
		{"expiry in the past", keyA, id, `{"expires_at": "2020-01-01T00:00:00Z"}`, 422, "expires_at"},
		{"ttl and expires_at", keyA, id, `{"ttl_seconds": 600, "expires_at": "2099-01-01T00:00:00Z"}`, 422, "ttl_seconds"},
		{"not an object", keyA, id, `[1]`, 400, ""},
		{"another owner", keyB, id, `{"max_workers": 3}`, 404, ""},
		{"unknown id", keyA, "dep_2026_00000000", `{"max_workers": 3}`, 404, ""},
		{"no key", "", id, `{"max_workers": 3}`, 401, ""},
		{"deleted", keyA, gone, `{"max_workers": 3}`, 409, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(t, "PATCH", "/v1/deployments/"+tc.id, tc.key, tc.body)
			if rec.Code != tc.code {
				t.Fatalf("PATCH = %d %s, want %d", rec.Code, rec.Body, tc.code)
			}
			if tc.field != "" {
				if _, named := body(t, rec)["details"].(map[string]any)[tc.field]; !named {
					t.Errorf("details do not name %s: %s", tc.field, rec.Body)
				}
			}
		})
	}
	after, err := f.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version {
		t.Errorf("refused PATCHes changed the record (version %d -> %d)", before.Version, after.Version)
	}
	if d, err := f.store.Get(context.Background(), gone); err != nil || d.Scaling.MaxWorkers == 3 {
		t.Errorf("the deleted deployment was changed (%v)", err)
	}
}
