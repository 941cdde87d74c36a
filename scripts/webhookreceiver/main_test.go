package main

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

func TestVerifiesSignatures(t *testing.T) {
	whsec := webhook.OwnerSecret(secret.New("master-key-for-test-0123456789"), "own_1")
	var out strings.Builder
	h := handler(whsec, &out)
	body := []byte(`{"type":"deployment.ready","data":{"deployment_id":"dep_2026_a3686d66","status":"ready","endpoint_url":"https://api.runpod.ai/v2/x"}}`)
	send := func(b []byte, sec secret.Secret) int {
		ts := time.Now()
		sig, err := webhook.Sign(sec, "msg_1", ts, body)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("POST", "/hook", strings.NewReader(string(b)))
		req.Header.Set(webhook.HeaderID, "msg_1")
		req.Header.Set(webhook.HeaderTimestamp, fmtUnix(ts))
		req.Header.Set(webhook.HeaderSignature, sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := send(body, whsec); code != http.StatusNoContent {
		t.Errorf("valid = %d", code)
	}
	tampered := append([]byte{}, body...)
	tampered[10] ^= 1
	if code := send(tampered, whsec); code != http.StatusUnauthorized {
		t.Errorf("tampered = %d", code)
	}
	other := webhook.OwnerSecret(secret.New("master-key-for-test-0123456789"), "own_2")
	if code := send(body, other); code != http.StatusUnauthorized {
		t.Errorf("other owner's secret = %d", code)
	}
	if !strings.Contains(out.String(), "verified deployment.ready id=msg_1 deployment=dep_2026_a3686d66 status=ready") ||
		strings.Count(out.String(), "REJECTED") != 2 {
		t.Errorf("output:\n%s", out.String())
	}
}

func fmtUnix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
