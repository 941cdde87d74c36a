package webhook_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

func newSecret(t *testing.T) secret.Secret {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return secret.New(webhook.SecretPrefix + base64.StdEncoding.EncodeToString(b))
}

func headersFor(id string, ts time.Time, sig string) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderID, id)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func TestSignVerifiesWithReferenceLibrary(t *testing.T) {
	whsec := newSecret(t)
	ts := time.Now()
	id := "msg_dep_2026_c1badc17_ready"
	body := []byte(`{"type":"deployment.ready","data":{"deployment_id":"dep_2026_c1badc17"}}`)

	sig, err := webhook.Sign(whsec, id, ts, body)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if !strings.HasPrefix(sig, "v1,") {
		t.Fatalf("signature %q does not start with v1,", sig)
	}
	ref, err := standardwebhooks.NewWebhook(whsec.Reveal())
	if err != nil {
		t.Fatalf("reference NewWebhook: %v", err)
	}
	if err := ref.Verify(body, headersFor(id, ts, sig)); err != nil {
		t.Errorf("reference library rejects our signature: %v", err)
	}

	// The reference library's own signature is byte-identical to ours.
	refSig, err := ref.Sign(id, ts, body)
	if err != nil {
		t.Fatalf("reference Sign: %v", err)
	}
	if refSig != sig {
		t.Errorf("reference signature %q, ours %q", refSig, sig)
	}

	for i := range body {
		tampered := []byte(string(body))
		tampered[i] ^= 0x01
		if err := ref.Verify(tampered, headersFor(id, ts, sig)); err == nil {
			t.Fatalf("reference library accepted a body with byte %d changed", i)
		}
		if err := webhook.Verify(whsec, headersFor(id, ts, sig), tampered, 0, ts); !errors.Is(err, webhook.ErrNoMatchingSignature) {
			t.Fatalf("Verify with byte %d changed: got %v, want ErrNoMatchingSignature", i, err)
		}
	}
}

func TestVerifyAcceptsReferenceSignature(t *testing.T) {
	whsec := newSecret(t)
	ref, err := standardwebhooks.NewWebhook(whsec.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1_790_000_000, 0)
	body := []byte(`{"ok":true}`)
	sig, err := ref.Sign("msg_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	// A receiver in the middle of a key rotation sees several signatures.
	h := headersFor("msg_1", ts, "v1,bm90IGl0 v2,whatever "+sig)
	if err := webhook.Verify(whsec, h, body, time.Minute, ts.Add(30*time.Second)); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestVerifyFailures(t *testing.T) {
	whsec := newSecret(t)
	other := newSecret(t)
	ts := time.Unix(1_790_000_000, 0)
	body := []byte(`{"a":1}`)
	sig, err := webhook.Sign(whsec, "msg_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		secret  secret.Secret
		headers http.Header
		now     time.Time
		want    error
	}{
		{"wrong secret", other, headersFor("msg_1", ts, sig), ts, webhook.ErrNoMatchingSignature},
		{"other message id", whsec, headersFor("msg_2", ts, sig), ts, webhook.ErrNoMatchingSignature},
		{"other timestamp", whsec, headersFor("msg_1", ts.Add(time.Second), sig), ts, webhook.ErrNoMatchingSignature},
		{"unknown version only", whsec, headersFor("msg_1", ts, "v2"+strings.TrimPrefix(sig, "v1")), ts, webhook.ErrNoMatchingSignature},
		{"missing headers", whsec, http.Header{}, ts, webhook.ErrMissingHeaders},
		{"timestamp not a number", whsec, func() http.Header {
			h := headersFor("msg_1", ts, sig)
			h.Set(webhook.HeaderTimestamp, "yesterday")
			return h
		}(), ts, webhook.ErrInvalidTimestamp},
		{"too old", whsec, headersFor("msg_1", ts, sig), ts.Add(webhook.DefaultTolerance + time.Second), webhook.ErrTimestampOutOfRange},
		{"too new", whsec, headersFor("msg_1", ts, sig), ts.Add(-webhook.DefaultTolerance - time.Second), webhook.ErrTimestampOutOfRange},
		{"secret not base64", secret.New("whsec_***"), headersFor("msg_1", ts, sig), ts, webhook.ErrInvalidSecret},
		{"secret too short", secret.New("whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))), headersFor("msg_1", ts, sig), ts, webhook.ErrInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.Verify(tt.secret, tt.headers, body, 0, tt.now)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify: got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignRejectsBadMessageID(t *testing.T) {
	whsec := newSecret(t)
	for _, id := range []string{"", "has space", "new\nline", strings.Repeat("x", 257)} {
		if _, err := webhook.Sign(whsec, id, time.Now(), nil); !errors.Is(err, webhook.ErrInvalidMessageID) {
			t.Errorf("Sign(id %q): got %v, want ErrInvalidMessageID", id, err)
		}
	}
}

func TestOwnerSecret(t *testing.T) {
	master := secret.New("a master key of some length for tests")
	a := webhook.OwnerSecret(master, "own_a")
	if a.Reveal() != webhook.OwnerSecret(master, "own_a").Reveal() {
		t.Error("OwnerSecret is not deterministic")
	}
	if a.Reveal() == webhook.OwnerSecret(master, "own_b").Reveal() {
		t.Error("two owners share a secret")
	}
	if a.Reveal() == webhook.OwnerSecret(secret.New("another master"), "own_a").Reveal() {
		t.Error("two masters give the same secret")
	}
	raw, ok := strings.CutPrefix(a.Reveal(), webhook.SecretPrefix)
	if !ok {
		t.Fatalf("owner secret lacks the %s prefix", webhook.SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) != 32 {
		t.Fatalf("owner secret decodes to %d bytes (err %v), want 32", len(key), err)
	}
	// Usable by the reference library as it is.
	ref, err := standardwebhooks.NewWebhook(a.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now()
	sig, err := webhook.Sign(a, "msg_x", ts, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.Verify([]byte("{}"), headersFor("msg_x", ts, sig)); err != nil {
		t.Errorf("reference Verify with an owner secret: %v", err)
	}
}
