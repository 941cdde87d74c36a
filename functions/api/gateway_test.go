package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/httpx"
)

// gatewayIDToken stands for the Google ID token API Gateway mints for the
// function (Cloud Run verified it before the request arrives; the function
// never reads it).
const gatewayIDToken = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2Z1bmN0aW9uIn0.gateway-signature"

// TestBehindGatewayReadsTheForwardedKey: behind API Gateway the caller's
// key arrives in X-Forwarded-Authorization and Authorization holds the
// gateway's ID token; only a valid key in the forwarded header passes.
// Without BehindGateway, Authorization is read as before.
func TestBehindGatewayReadsTheForwardedKey(t *testing.T) {
	for _, tc := range []struct {
		name          string
		behindGateway bool
		hdr           map[string]string
		want          int
	}{
		{"gateway layout, valid key", true, map[string]string{"Authorization": "Bearer " + gatewayIDToken, "X-Forwarded-Authorization": "Bearer " + keyA}, 200},
		{"gateway layout, scheme in lower case", true, map[string]string{"Authorization": "Bearer " + gatewayIDToken, "X-Forwarded-Authorization": "bearer " + keyB}, 200},
		{"gateway layout, caller sent no key", true, map[string]string{"Authorization": "Bearer " + gatewayIDToken}, 401},
		{"gateway layout, wrong key", true, map[string]string{"Authorization": "Bearer " + gatewayIDToken, "X-Forwarded-Authorization": "Bearer wrong-key-0123456789"}, 401},
		{"gateway layout, empty forwarded header", true, map[string]string{"Authorization": "Bearer " + gatewayIDToken, "X-Forwarded-Authorization": ""}, 401},
		// Authorization is the gateway's token, never a key: a key there
		// is not read, whatever else the request carries.
		{"behind the gateway, key in Authorization", true, map[string]string{"Authorization": "Bearer " + keyA}, 401},
		{"direct, key in Authorization", false, map[string]string{"Authorization": "Bearer " + keyA}, 200},
		{"direct, key only in the forwarded header", false, map[string]string{"X-Forwarded-Authorization": "Bearer " + keyA}, 401},
		{"direct, no key", false, nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.BehindGateway = tc.behindGateway
			f.h = f.srv.Handler()
			req := httptest.NewRequest("GET", "/v1/deployments", nil)
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			f.h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
}

// TestBehindGatewayWritesWithTheForwardedKey: a create through the gateway
// belongs to the forwarded key's owner, and another owner's forwarded key
// cannot read it.
func TestBehindGatewayWritesWithTheForwardedKey(t *testing.T) {
	f := newFixture(t)
	f.srv.BehindGateway = true
	f.h = f.srv.Handler()
	via := func(method, path, key, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+gatewayIDToken)
		req.Header.Set("X-Forwarded-Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		return rec
	}
	rec := via("POST", "/v1/deployments", keyA, validCreate)
	if rec.Code != 202 && rec.Code != 201 {
		t.Fatalf("create through the gateway = %d: %s", rec.Code, rec.Body)
	}
	id := body(t, rec)["deployment_id"].(string)
	if rec := via("GET", "/v1/deployments/"+id, keyA, ""); rec.Code != 200 {
		t.Errorf("owner's read = %d: %s", rec.Code, rec.Body)
	}
	if rec := via("GET", "/v1/deployments/"+id, keyB, ""); rec.Code != 404 {
		t.Errorf("another owner's read = %d, want 404: %s", rec.Code, rec.Body)
	}
}

// TestBehindGatewayLogsNoSecret: neither the caller's key nor the
// gateway's token reaches the log, at debug level, whether the key is
// valid, wrong or throttled.
func TestBehindGatewayLogsNoSecret(t *testing.T) {
	f, logs := throttledFixture(t, 2, func(r *http.Request) string { return httpx.ClientAddr(r, 1) })
	f.srv.BehindGateway = true
	f.h = f.srv.Handler()
	const wrong = "wrong-key-secret-0123456789"
	for _, key := range []string{keyA, wrong, wrong, wrong, keyA} {
		req := httptest.NewRequest("GET", "/v1/deployments", nil)
		req.Header.Set("Authorization", "Bearer "+gatewayIDToken)
		req.Header.Set("X-Forwarded-Authorization", "Bearer "+key)
		req.Header.Set("X-Forwarded-For", "203.0.113.7, 198.51.100.1")
		f.h.ServeHTTP(httptest.NewRecorder(), req)
	}
	out := logs.take()
	if !strings.Contains(out, "203.0.113.7") {
		t.Errorf("the log never names the client address (is the throttle logging?):\n%s", out)
	}
	for _, s := range []string{keyA, wrong, gatewayIDToken, "gateway-signature"} {
		if strings.Contains(out, s) {
			t.Errorf("the log contains the secret %q:\n%s", s, out)
		}
	}
}

// TestBehindGatewayThrottlesPerClient: behind the gateway the client is the
// entry before the gateway's own address (FORWARDED_HOPS=1). One client's
// wrong keys throttle it, whatever it writes on the left of
// X-Forwarded-For, and not another client behind the same gateway.
func TestBehindGatewayThrottlesPerClient(t *testing.T) {
	const limit = 5
	f, _ := throttledFixture(t, limit, func(r *http.Request) string { return httpx.ClientAddr(r, 1) })
	f.srv.BehindGateway = true
	f.h = f.srv.Handler()
	const gateway = "198.51.100.1"
	from := func(xff, key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/deployments", nil)
		req.RemoteAddr = "169.254.1.1:80" // Google's front end
		req.Header.Set("Authorization", "Bearer "+gatewayIDToken)
		req.Header.Set("X-Forwarded-Authorization", "Bearer "+key)
		req.Header.Set("X-Forwarded-For", xff)
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		return rec
	}
	var last *httptest.ResponseRecorder
	for i := range limit + 1 {
		last = from(fmt.Sprintf("10.0.0.%d, 203.0.113.9, %s", i, gateway), "wrong-key-0123456789")
	}
	checkThrottled(t, last)
	if rec := from("203.0.113.10, "+gateway, "wrong-key-0123456789"); rec.Code != 401 {
		t.Errorf("another client's first wrong key = %d, want 401", rec.Code)
	}
	if rec := from("10.9.9.9, 203.0.113.9, "+gateway, keyA); rec.Code != 200 {
		t.Errorf("the throttled client's valid key = %d, want 200", rec.Code)
	}
}
