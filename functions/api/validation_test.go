package api

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// createWith is validCreate with fields replaced (a nil value deletes one).
func createWith(t *testing.T, fields map[string]any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(validCreate), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNullIsAWrongType: no field of the create body is nullable (the
// OpenAPI document says so), so a null is a 422 naming the field, not an
// absent field: required ones are not "missing and defaulted", optional ones
// not silently dropped.
func TestNullIsAWrongType(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ field, body string }{
		{"hf_model_id", `{"hf_model_id":null,"user_runpod_key":"rpa_x","user_webhook_url":"https://example.com/h"}`},
		{"user_runpod_key", `{"hf_model_id":"a/b","user_runpod_key":null,"user_webhook_url":"https://example.com/h"}`},
		{"user_webhook_url", `{"hf_model_id":"a/b","user_runpod_key":"rpa_x","user_webhook_url":null}`},
		{"model_name", `{"model_name":null,"provider":"fal","user_runpod_key":"rpa_x","user_webhook_url":"https://example.com/h"}`},
		{"provider", `{"model_name":"veo3","provider":null,"user_runpod_key":"rpa_x","user_webhook_url":"https://example.com/h"}`},
		{"gpu_tier", createWith(t, map[string]any{"gpu_tier": json.RawMessage("null")})},
		{"hf_token", createWith(t, map[string]any{"hf_token": json.RawMessage("null")})},
		{"min_workers", createWith(t, map[string]any{"min_workers": json.RawMessage("null")})},
		{"max_workers", createWith(t, map[string]any{"max_workers": json.RawMessage("null")})},
		{"idle_timeout_seconds", createWith(t, map[string]any{"idle_timeout_seconds": json.RawMessage("null")})},
	} {
		t.Run(tc.field, func(t *testing.T) {
			rec := f.do(t, "POST", "/v1/deployments", keyA, tc.body)
			if rec.Code != 422 {
				t.Fatalf("%s: null = %d %s, want 422", tc.field, rec.Code, rec.Body)
			}
			if _, ok := body(t, rec)["details"].(map[string]any)[tc.field]; !ok {
				t.Errorf("details do not name %s: %s", tc.field, rec.Body)
			}
		})
	}
	// The body: every required field null.
	rec := f.do(t, "POST", "/v1/deployments", keyA, `{"hf_model_id":null,"user_runpod_key":null,"user_webhook_url":null}`)
	if rec.Code != 422 || len(body(t, rec)["details"].(map[string]any)) != 3 {
		t.Errorf("all null = %d %s, want a 422 naming the three", rec.Code, rec.Body)
	}
	// The callback's fields too.
	if rec := f.do(t, "POST", "/internal/deployment-ready/dep_2026_00000000", "", `{"status":null}`, InternalSecretHeader, "x"); rec.Code == 200 || rec.Code == 202 {
		t.Errorf("callback status null = %d", rec.Code)
	}
	// Nothing stored, so nothing owed: the change feed enqueues nothing.
	if n := len(body(t, f.do(t, "GET", "/v1/deployments", keyA, ""))["deployments"].([]any)); n != 0 {
		t.Errorf("null input created %d deployments", n)
	}
}

// TestNumericStringsAreNotIntegers: "3" is a string, a 422 for an integer field.
func TestNumericStringsAreNotIntegers(t *testing.T) {
	f := newFixture(t)
	for _, field := range []string{"min_workers", "max_workers", "idle_timeout_seconds"} {
		for _, v := range []string{`"3"`, `"60"`, `" 1"`, `"1e1"`, `true`, `[1]`} {
			rec := f.do(t, "POST", "/v1/deployments", keyA, createWith(t, map[string]any{field: json.RawMessage(v)}))
			if rec.Code != 422 {
				t.Errorf("%s=%s: %d %s, want 422", field, v, rec.Code, rec.Body)
				continue
			}
			reason, ok := body(t, rec)["details"].(map[string]any)[field].(string)
			if !ok {
				t.Errorf("%s=%s: details do not name it: %s", field, v, rec.Body)
			}
			// The reason says a string is not a number only to a string.
			if isString := strings.HasPrefix(v, `"`); strings.Contains(reason, "not a string") != isString {
				t.Errorf("%s=%s: reason %q", field, v, reason)
			}
		}
	}
	if rec := f.do(t, "POST", "/v1/deployments", keyA, createWith(t, map[string]any{"min_workers": 1, "max_workers": 3, "idle_timeout_seconds": 60})); rec.Code != 202 {
		t.Errorf("numbers = %d %s", rec.Code, rec.Body)
	}
}

// TestMalformedQueryIs422: what url.ParseQuery refuses is an error, not
// silently dropped; so is a repeated parameter.
func TestMalformedQueryIs422(t *testing.T) {
	f := newFixture(t)
	for _, q := range []string{"?%zz=1", "?a;b=c", "?limit=5;x=1", "?limit=%", "?limit=1&limit=2", "?nope=1",
		// given but empty: not the default, a value that is not one
		"?limit=", "?limit", "?status=", "?include_deleted=", "?cursor=", "?=1"} {
		rec := f.do(t, "GET", "/v1/deployments"+q, keyA, "")
		b := body(t, rec)
		if rec.Code != 422 || b["error"] != "ValidationError" {
			t.Errorf("GET /v1/deployments%s = %d %s, want a 422 ValidationError", q, rec.Code, rec.Body)
		}
		if d, _ := b["details"].(map[string]any); d[""] != nil {
			t.Errorf("GET /v1/deployments%s names no field: %s", q, rec.Body)
		}
	}
	for _, q := range []string{"", "?limit=5", "?status=ready&limit=1", "?include_deleted=true", "?limit=5&"} {
		if rec := f.do(t, "GET", "/v1/deployments"+q, keyA, ""); rec.Code != 200 {
			t.Errorf("GET /v1/deployments%s = %d %s", q, rec.Code, rec.Body)
		}
	}
}

// TestModelIDRuleIsTheHubs: the API accepts what the Hub accepts (the rule
// lives in huggingface.ValidID) and refuses what it refuses.
func TestModelIDRuleIsTheHubs(t *testing.T) {
	f := newFixture(t)
	for id, ok := range map[string]bool{
		"org/name_": true, "_org/model": true, "gpt2": true, "org/a": true,
		"org/name-": false, "org/.name": false, "org/x--y": false, "org/name.git": false, "a/b/c": false,
	} {
		rec := f.do(t, "POST", "/v1/deployments", keyA, createWith(t, map[string]any{"hf_model_id": id}))
		if got := rec.Code == 202; got != ok {
			t.Errorf("hf_model_id %q = %d %s, want accepted=%v", id, rec.Code, rec.Body, ok)
		}
	}
}

// TestGPUTierCheckedAgainstTheAccountsCatalogue: gpu_tier is validated
// against the caller's own live catalogue, the one select_gpu chooses from:
// a pool the account cannot use is refused at POST, a pool only the account
// has is accepted; another account's view decides nothing.
func TestGPUTierCheckedAgainstTheAccountsCatalogue(t *testing.T) {
	f := newFixture(t)
	var reads atomic.Int32
	f.srv.LiveGPUs = &gpu.Live{Base: gpu.Default(), Source: func(_ context.Context, key secret.Secret) ([]gpu.Offer, error) {
		reads.Add(1)
		if key.Reveal() == "rpa_no_a40" {
			// The account's A40-class cards have no serverless price: the pool is not available to it.
			return []gpu.Offer{{ID: "NVIDIA A40", Name: "A40", Pool: "AMPERE_48", MemoryGB: 48}, {ID: "NVIDIA RTX A6000", Name: "RTX A6000", Pool: "AMPERE_48", MemoryGB: 48}}, nil
		}
		return []gpu.Offer{{ID: "NVIDIA X64", Name: "X64", Pool: "NEW_64", MemoryGB: 64, PricePerHour: 2}}, nil
	}}
	for _, tc := range []struct {
		key, tier string
		status    int
	}{
		{"rpa_no_a40", "A40", 422},
		{"rpa_no_a40", "AMPERE_48", 422},
		{"rpa_has_x64", "A40", 202},
		{"rpa_has_x64", "NEW_64", 202},
		{"rpa_no_a40", "NEW_64", 422},
	} {
		rec := f.do(t, "POST", "/v1/deployments", keyA, createWith(t, map[string]any{"user_runpod_key": tc.key, "gpu_tier": tc.tier}))
		if rec.Code != tc.status {
			t.Errorf("key %s tier %s = %d %s, want %d", tc.key, tc.tier, rec.Code, rec.Body, tc.status)
		}
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("%d reads of the live catalogue for two accounts, want 2 (cached per account)", n)
	}
	// An invalid request costs no read.
	reads.Store(0)
	if rec := f.do(t, "POST", "/v1/deployments", keyA, createWith(t, map[string]any{"user_runpod_key": "rpa_third", "gpu_tier": "A40", "min_workers": -1})); rec.Code != 422 || reads.Load() != 0 {
		t.Errorf("invalid request: %d, %d reads", rec.Code, reads.Load())
	}
}

// TestQueryOnRoutesWithoutParameters: a route that takes no query
// parameter refuses one (unknown or malformed) with a 422 and changes
// nothing, as the list does, instead of serving as if it were absent.
func TestQueryOnRoutesWithoutParameters(t *testing.T) {
	f := newFixture(t)
	rec := f.do(t, "POST", "/v1/deployments", keyA, validCreate)
	if rec.Code != 202 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	id := body(t, rec)["deployment_id"].(string)
	for _, q := range []string{"?x=1", "?%zz=1", "?a;b=c", "?&", "?&&&"} {
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/v1/deployments", createWith(t, map[string]any{"hf_model_id": "org/other"})},
			{"GET", "/v1/deployments/" + id, ""},
			{"PATCH", "/v1/deployments/" + id, `{"max_workers":3}`},
			{"DELETE", "/v1/deployments/" + id, ""},
			{"GET", "/v1/webhook-secret", ""},
			{"GET", "/v1/gpus", ""},
			{"GET", "/v1/models", ""},
		} {
			rec := f.do(t, c.method, c.path+q, keyA, c.body)
			if rec.Code != 422 || body(t, rec)["error"] != "ValidationError" {
				t.Errorf("%s %s%s = %d %s, want a 422 ValidationError", c.method, c.path, q, rec.Code, rec.Body)
			}
		}
	}
	for _, path := range []string{"/v1/gpus?", "/v1/deployments/" + id + "?"} {
		if rec := f.do(t, "GET", path, keyA, ""); rec.Code != 200 {
			t.Errorf("GET %s (a bare '?', no query) = %d %s, want 200", path, rec.Code, rec.Body)
		}
	}
	rec = f.do(t, "GET", "/v1/deployments?include_deleted=true", keyA, "")
	if n := len(body(t, rec)["deployments"].([]any)); n != 1 {
		t.Errorf("after the refused calls: %d deployments, want the one made first", n)
	}
	rec = f.do(t, "GET", "/v1/deployments/"+id, keyA, "")
	if b := body(t, rec); b["status"] == "deleted" {
		t.Errorf("a refused DELETE deleted the deployment: %s", rec.Body)
	} else if sc, _ := b["scaling"].(map[string]any); sc != nil && sc["max_workers"] == 3.0 {
		t.Errorf("a refused PATCH changed the deployment: %s", rec.Body)
	}
}
