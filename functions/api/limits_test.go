package api

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// TestCreateLimits: max_spend_usd and one of ttl_seconds or expires_at are
// stored as the deployment's limits; bad values are a 422 naming the field
// and store nothing.
func TestCreateLimits(t *testing.T) {
	f := newFixture(t)
	now := *f.clock
	in := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	ok := []struct {
		name   string
		fields map[string]any
		want   deployment.Limits
	}{
		{"none", nil, deployment.Limits{}},
		{"max spend", map[string]any{"max_spend_usd": 2.5}, deployment.Limits{MaxSpendUSD: 2.5}},
		{"ttl", map[string]any{"ttl_seconds": 3600}, deployment.Limits{ExpiresAt: now.Add(time.Hour)}},
		{"expires_at and max spend", map[string]any{"expires_at": in(48 * time.Hour), "max_spend_usd": 10},
			deployment.Limits{MaxSpendUSD: 10, ExpiresAt: now.Add(48 * time.Hour)}},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(t, "POST", "/v1/deployments", keyA, createWith(t, tc.fields))
			if rec.Code != http.StatusAccepted {
				t.Fatalf("POST = %d %s", rec.Code, rec.Body)
			}
			d, err := f.store.Get(context.Background(), body(t, rec)["deployment_id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, d.Limits); diff != "" {
				t.Errorf("limits (-want +got):\n%s", diff)
			}
		})
	}
	bad := []struct {
		name   string
		fields map[string]any
		field  string
	}{
		{"zero spend", map[string]any{"max_spend_usd": 0}, "max_spend_usd"},
		{"negative spend", map[string]any{"max_spend_usd": -1}, "max_spend_usd"},
		{"huge spend", map[string]any{"max_spend_usd": 1e9}, "max_spend_usd"},
		{"spend as a string", map[string]any{"max_spend_usd": "5"}, "max_spend_usd"},
		{"spend null", map[string]any{"max_spend_usd": json.RawMessage("null")}, "max_spend_usd"},
		{"ttl too short", map[string]any{"ttl_seconds": 59}, "ttl_seconds"},
		{"ttl over a year", map[string]any{"ttl_seconds": 366 * 24 * 3600}, "ttl_seconds"},
		{"ttl fractional", map[string]any{"ttl_seconds": 90.5}, "ttl_seconds"},
		{"ttl as a string", map[string]any{"ttl_seconds": "3600"}, "ttl_seconds"},
		{"expires_at in the past", map[string]any{"expires_at": in(-time.Hour)}, "expires_at"},
		{"expires_at too soon", map[string]any{"expires_at": in(30 * time.Second)}, "expires_at"},
		{"expires_at without a zone", map[string]any{"expires_at": now.Add(time.Hour).Format("2006-01-02T15:04:05")}, "expires_at"},
		{"expires_at a number", map[string]any{"expires_at": 1767225600}, "expires_at"},
		{"both ttl and expires_at", map[string]any{"ttl_seconds": 3600, "expires_at": in(2 * time.Hour)}, "ttl_seconds"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(t, "POST", "/v1/deployments", keyA, createWith(t, tc.fields))
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("POST = %d %s, want 422", rec.Code, rec.Body)
			}
			if _, named := body(t, rec)["details"].(map[string]any)[tc.field]; !named {
				t.Errorf("details do not name %s: %s", tc.field, rec.Body)
			}
		})
	}
}

// TestDefaultTTL: the operator's default time limit applies when the owner
// sets none, and is shown as such; an owner's own limit wins.
func TestDefaultTTL(t *testing.T) {
	f := newFixture(t)
	f.srv.DefaultTTL = 72 * time.Hour
	now := *f.clock
	rec := f.do(t, "POST", "/v1/deployments", keyA, validCreate)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", rec.Code, rec.Body)
	}
	lim := body(t, rec)["limits"].(map[string]any)
	want := map[string]any{"expires_at": now.Add(72 * time.Hour).Format(time.RFC3339), "expiry_source": "operator_default", "max_spend_usd": nil}
	if diff := cmp.Diff(want, lim); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}
	rec = f.do(t, "POST", "/v1/deployments", keyA, createWith(t, map[string]any{"ttl_seconds": 600}))
	lim = body(t, rec)["limits"].(map[string]any)
	want = map[string]any{"expires_at": now.Add(10 * time.Minute).Format(time.RFC3339), "expiry_source": "owner", "max_spend_usd": nil}
	if diff := cmp.Diff(want, lim); diff != "" {
		t.Errorf("owner's ttl (-want +got):\n%s", diff)
	}
}

// TestGPUsShowPrices: GET /v1/gpus gives each pool's price per hour and per
// second, and says where the prices come from.
func TestGPUsShowPrices(t *testing.T) {
	f := newFixture(t)
	rec := f.do(t, "GET", "/v1/gpus", "", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /v1/gpus = %d", rec.Code)
	}
	got := body(t, rec)
	if got["catalog_source"] != "embedded" || got["catalog_at"] != nil || got["prices_note"] != GPUPricesNote {
		t.Errorf("catalogue: %v %v %v", got["catalog_source"], got["catalog_at"], got["prices_note"])
	}
	gpus := got["gpus"].([]any)
	if len(gpus) != len(f.srv.GPUs.Pools()) {
		t.Fatalf("%d pools listed, catalogue has %d", len(gpus), len(f.srv.GPUs.Pools()))
	}
	for _, g := range gpus {
		p := g.(map[string]any)
		perHour, perSecond := p["price_per_hour"].(float64), p["price_per_second"].(float64)
		if perHour <= 0 || math.Abs(perSecond*3600-perHour) > 1e-9 {
			t.Errorf("%v: %v an hour, %v a second", p["pool"], perHour, perSecond)
		}
	}
}

// TestCreatePriceFromTheAccountsCatalogue: with the account's live
// catalogue, the 202's price is the account's price of the tier's pool,
// with the time the catalogue was read.
func TestCreatePriceFromTheAccountsCatalogue(t *testing.T) {
	f := newFixture(t)
	read := *f.clock
	f.srv.LiveGPUs = &gpu.Live{Base: gpu.Default(), Now: func() time.Time { return read },
		Source: func(context.Context, secret.Secret) ([]gpu.Offer, error) {
			return []gpu.Offer{{ID: "NVIDIA A40", Name: "A40", Pool: "AMPERE_48", MemoryGB: 48, PricePerHour: 0.9}}, nil
		}}
	rec := f.do(t, "POST", "/v1/deployments", keyA, validCreate)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", rec.Code, rec.Body)
	}
	p := body(t, rec)["price"].(map[string]any)
	if p["pool"] != "AMPERE_48" || p["per_hour_usd"] != 0.9 || p["catalog_source"] != "runpod" || p["catalog_at"] != read.Format(time.RFC3339) {
		t.Errorf("price %v: want the account's 0.9 an hour for AMPERE_48, read at %v", p, read)
	}
}
