package main

import (
	"bytes"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

var (
	keyLine   = regexp.MustCompile(`(?m)^  (vgk_[A-Za-z0-9_-]{43})$`)
	entryLine = regexp.MustCompile(`(?m)^  ([A-Za-z0-9_.-]+:[0-9a-f]{64})$`)
	whsecLine = regexp.MustCompile(`(?m)^  (whsec_[A-Za-z0-9+/=]+)$`)
)

func run(t *testing.T, args []string, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = realMain(args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMintKeyWithOwnerAndSigningKey(t *testing.T) {
	master := "local-webhook-master-key-for-tests"
	code, out, errOut := run(t, []string{"-owner", "alice"}, map[string]string{"WEBHOOK_SIGNING_KEY": master})
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	key := keyLine.FindStringSubmatch(out)
	entry := entryLine.FindStringSubmatch(out)
	whsec := whsecLine.FindStringSubmatch(out)
	if key == nil || entry == nil || whsec == nil {
		t.Fatalf("output lacks the key, the entry or the signing secret:\n%s", out)
	}
	// The printed entry authenticates the printed key as alice.
	k, err := auth.ParseKeyring("", entry[1])
	if err != nil {
		t.Fatalf("ParseKeyring(printed entry): %v", err)
	}
	if owner, ok := k.Authenticate("Bearer " + key[1]); !ok || owner != "alice" {
		t.Errorf("Authenticate(printed key) = %q, %v; want alice", owner, ok)
	}
	// The printed secret is alice's, and signs verifiable webhooks.
	if want := webhook.OwnerSecret(secret.New(master), "alice").Reveal(); whsec[1] != want {
		t.Error("printed signing secret is not OwnerSecret(master, alice)")
	}
	ts := time.Now()
	sig, err := webhook.Sign(secret.New(whsec[1]), "msg_1", ts, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, "msg_1")
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	if err := webhook.Verify(secret.New(whsec[1]), h, []byte("{}"), 0, ts); err != nil {
		t.Errorf("Verify with the printed secret: %v", err)
	}
	if strings.Count(out, key[1]) != 1 {
		t.Error("the key is printed more than once")
	}
}

func TestMintKeyDerivedOwnerWithoutSigningKey(t *testing.T) {
	code, out, errOut := run(t, nil, nil)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	key := keyLine.FindStringSubmatch(out)
	entry := entryLine.FindStringSubmatch(out)
	if key == nil || entry == nil {
		t.Fatalf("output lacks the key or the entry:\n%s", out)
	}
	if whsecLine.MatchString(out) {
		t.Error("a signing secret was printed without WEBHOOK_SIGNING_KEY")
	}
	hash := auth.Hash(key[1])
	if want := auth.OwnerForHash(hash) + ":" + hash; entry[1] != want {
		t.Errorf("entry %q, want %q", entry[1], want)
	}
	// Same owner as the key would get from API_KEYS.
	k, err := auth.ParseKeyring(key[1], "")
	if err != nil {
		t.Fatal(err)
	}
	if owner, _ := k.Authenticate("Bearer " + key[1]); owner != auth.OwnerForHash(hash) {
		t.Errorf("owner from API_KEYS %q differs from the printed one", owner)
	}
}

func TestMintKeyBadArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"bad owner", []string{"-owner", "bob smith"}},
		{"unknown flag", []string{"-nope"}},
		{"extra argument", []string{"alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.args, nil)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if out != "" || errOut == "" {
				t.Errorf("stdout %q, stderr %q: want nothing on stdout and a message on stderr", out, errOut)
			}
		})
	}
}
