package auth_test

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

func TestMint(t *testing.T) {
	key, hash := auth.Mint()
	k := key.Reveal()
	raw, ok := strings.CutPrefix(k, auth.KeyPrefix)
	if !ok {
		t.Fatalf("minted key lacks the %s prefix", auth.KeyPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) != 32 {
		t.Fatalf("minted key body decodes to %d bytes (err %v), want 32", len(b), err)
	}
	if hash != auth.Hash(k) {
		t.Error("Mint's hash differs from Hash(key)")
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(hash) {
		t.Errorf("hash %q is not 64 lowercase hex digits", hash)
	}
	if fmt.Sprint(key) != secret.Redacted {
		t.Error("the minted key prints itself")
	}
	other, _ := auth.Mint()
	if other.Reveal() == k {
		t.Error("two minted keys are equal")
	}
}

func TestHashKnownValue(t *testing.T) {
	// sha256("abc")
	if got, want := auth.Hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("Hash(abc) = %s, want %s", got, want)
	}
}

func TestParseKeyringAndAuthenticate(t *testing.T) {
	plain := "test-api-key-12345"
	minted, mintedHash := auth.Mint()
	rotated, rotatedHash := auth.Mint()
	k, err := auth.ParseKeyring(" "+plain+" ,, ", "alice:"+strings.ToUpper(mintedHash)+", alice:"+rotatedHash+",")
	if err != nil {
		t.Fatalf("ParseKeyring: %v", err)
	}
	if k.Len() != 3 {
		t.Errorf("Len() = %d, want 3", k.Len())
	}
	plainOwner := auth.OwnerPrefix + auth.Hash(plain)[:16]

	tests := []struct {
		name      string
		header    string
		wantOwner string
		wantOK    bool
	}{
		{"plain key", "Bearer " + plain, plainOwner, true},
		{"scheme lower case", "bearer " + plain, plainOwner, true},
		{"scheme upper case, extra spaces", "  BEARER   " + plain + " ", plainOwner, true},
		{"minted key", "Bearer " + minted.Reveal(), "alice", true},
		{"rotated key, same owner", "Bearer " + rotated.Reveal(), "alice", true},
		{"unknown key", "Bearer vgk_unknownunknownunknown", "", false},
		{"empty", "", "", false},
		{"scheme only", "Bearer", "", false},
		{"scheme and space only", "Bearer ", "", false},
		{"basic scheme", "Basic " + plain, "", false},
		{"no scheme", plain, "", false},
		{"hash instead of key", "Bearer " + mintedHash, "", false},
		{"huge", "Bearer " + strings.Repeat("x", 10000), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owner, ok := k.Authenticate(tt.header)
			if owner != tt.wantOwner || ok != tt.wantOK {
				t.Errorf("Authenticate = %q, %v; want %q, %v", owner, ok, tt.wantOwner, tt.wantOK)
			}
		})
	}
}

func TestParseKeyringEmpty(t *testing.T) {
	k, err := auth.ParseKeyring("", " ")
	if err != nil {
		t.Fatalf("ParseKeyring: %v", err)
	}
	if k.Len() != 0 {
		t.Errorf("Len() = %d, want 0", k.Len())
	}
	if _, ok := k.Authenticate("Bearer anything-at-all-long"); ok {
		t.Error("an empty keyring authenticated a key")
	}
}

func TestParseKeyringErrors(t *testing.T) {
	good := auth.Hash("some-long-enough-key-1")
	const shortKey = "short-key"
	tests := []struct {
		name       string
		keys       string
		hashes     string
		wantErr    string
		mustNotSay string
	}{
		{"short plain key", "good-long-enough-key," + shortKey, "", "API_KEYS entry 2: key is shorter", shortKey},
		{"space inside key", "a key with spaces inside", "", "API_KEYS entry 1: key contains a space", "spaces"},
		{"missing colon", "", good, "API_KEY_HASHES entry 1: want", good},
		{"empty owner", "", ":" + good, "API_KEY_HASHES entry 1: owner is empty", good},
		{"bad owner", "", "bob smith:" + good, "API_KEY_HASHES entry 1: owner", good},
		{"short hash", "", "bob:" + good[:40], "API_KEY_HASHES entry 1: the hash is not 64", good[:40]},
		{"plain key pasted as hash", "", "ok:" + good + ",bob:vgk_pastedthekeyitselfhere", "API_KEY_HASHES entry 2: the hash", "pastedthekey"},
		{"hash bound twice", "", "bob:" + good + ",eve:" + good, "API_KEY_HASHES entry 2: the same key is already bound", good},
		{"plain and hash disagree", "some-long-enough-key-1", "bob:" + good, "API_KEY_HASHES entry 1: the same key", good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.ParseKeyring(tt.keys, tt.hashes)
			if err == nil {
				t.Fatalf("ParseKeyring succeeded, want an error about %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), tt.mustNotSay) {
				t.Errorf("error %q repeats %q", err, tt.mustNotSay)
			}
		})
	}
}

func TestParseKeyringDuplicatesSameOwner(t *testing.T) {
	key := "some-long-enough-key-1"
	owner := auth.OwnerPrefix + auth.Hash(key)[:16]
	k, err := auth.ParseKeyring(key+","+key, owner+":"+auth.Hash(key))
	if err != nil {
		t.Fatalf("ParseKeyring: %v", err)
	}
	if k.Len() != 1 {
		t.Errorf("Len() = %d, want 1", k.Len())
	}
}

func TestValidateOwner(t *testing.T) {
	for _, ok := range []string{"alice", "own_0123456789abcdef", "team-a.prod", strings.Repeat("a", 64)} {
		if err := auth.ValidateOwner(ok); err != nil {
			t.Errorf("ValidateOwner(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a:b", "ä", strings.Repeat("a", 65)} {
		if err := auth.ValidateOwner(bad); err == nil {
			t.Errorf("ValidateOwner(%q) = nil, want an error", bad)
		}
	}
}

func TestCallbackSecret(t *testing.T) {
	master := secret.New("master-key-0123456789abcdef")
	s := auth.CallbackSecret(master, "dep_2026_00000001")
	b, err := base64.RawURLEncoding.DecodeString(s.Reveal())
	if err != nil || len(b) != 32 {
		t.Fatalf("callback secret decodes to %d bytes (err %v), want 32", len(b), err)
	}
	if auth.CallbackSecret(master, "dep_2026_00000001").Reveal() != s.Reveal() {
		t.Error("the derivation is not deterministic")
	}
	for _, other := range []secret.Secret{
		auth.CallbackSecret(master, "dep_2026_00000002"),
		auth.CallbackSecret(secret.New("another-master-key-0123456789"), "dep_2026_00000001"),
	} {
		if other.Reveal() == s.Reveal() {
			t.Error("two deployments (or two master keys) share a callback secret")
		}
	}
	// Domain separation: not the owner webhook secret's HMAC of the same input.
	if strings.Contains(s.Reveal(), master.Reveal()) || s.Reveal() == auth.Hash("dep_2026_00000001") {
		t.Error("the secret reveals its inputs")
	}
	tests := []struct {
		name      string
		presented string
		expected  secret.Secret
		want      bool
	}{
		{"match", s.Reveal(), s, true},
		{"mismatch", auth.CallbackSecret(master, "dep_2026_00000003").Reveal(), s, false},
		{"prefix", s.Reveal()[:20], s, false},
		{"longer", s.Reveal() + "x", s, false},
		{"empty presented", "", s, false},
		{"empty expected", "", secret.New(""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := auth.CheckCallbackSecret(tt.presented, tt.expected); got != tt.want {
				t.Errorf("CheckCallbackSecret = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOwnerForHash(t *testing.T) {
	h := auth.Hash("x")
	if diff := cmp.Diff(auth.OwnerPrefix+h[:16], auth.OwnerForHash(h)); diff != "" {
		t.Error(diff)
	}
}
