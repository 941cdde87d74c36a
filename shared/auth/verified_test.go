package auth

import (
	"hash/maphash"
	"sync"
	"testing"
)

func remembered(k *Keyring) int {
	m := k.verified.m.Load()
	if m == nil {
		return 0
	}
	return len(*m)
}

// TestRememberedKeysKeepTheirOwners: accepted keys answer from the cache
// with their own owner, never another's, interleaved and concurrently;
// wrong keys (near misses of a remembered one included) are refused and
// never remembered.
func TestRememberedKeysKeepTheirOwners(t *testing.T) {
	const keyA, keyB = "vgk_aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "vgk_bbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	hashB := Hash(keyB)
	k, err := ParseKeyring(keyA, "team-b:"+hashB)
	if err != nil {
		t.Fatal(err)
	}
	ownerA := OwnerForHash(Hash(keyA))
	tests := []struct {
		header string
		owner  string // "" when refused
	}{
		{"Bearer " + keyA, ownerA},
		{"Bearer " + keyB, "team-b"},
		{"bearer  " + keyA + " ", ownerA},
		{"Bearer " + keyA + "x", ""},
		{"Bearer " + keyA[:len(keyA)-1], ""},
		{"Bearer " + keyA[:len(keyA)-1] + "b", ""},
		{"Bearer " + keyB + keyA, ""},
		{"Bearer " + hashB, ""}, // the stored hash is not a key
		{"Basic " + keyA, ""},
		{keyA, ""},
	}
	check := func(round int) {
		for _, tc := range tests {
			owner, ok := k.Authenticate(tc.header)
			if ok != (tc.owner != "") || owner != tc.owner {
				t.Errorf("round %d: Authenticate(%q) = %q, %v; want %q", round, tc.header, owner, ok, tc.owner)
			}
		}
	}
	check(0) // cold: every key checked in full
	if n := remembered(k); n != 2 {
		t.Errorf("remembered %d keys after the first round, want 2 (the accepted ones)", n)
	}
	check(1) // warm
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				check(2 + i)
			}
		})
	}
	wg.Wait()
	if n := remembered(k); n != 2 {
		t.Errorf("remembered %d keys, want 2", n)
	}
}

// TestAKeyMustMatchBothHashes: an entry found under a presented key's index
// hash answers only when its check hash matches too (what a collision of
// the 64-bit index with a remembered key would look like).
func TestAKeyMustMatchBothHashes(t *testing.T) {
	const key, wrong = "vgk_cccccccccccccccccccccccccccc", "vgk_not-a-key-of-this-keyring-00"
	k, err := ParseKeyring(key, "")
	if err != nil {
		t.Fatal(err)
	}
	// Plant an entry for wrong, as if its index hash were a remembered
	// key's: with another check value it must be refused, and so must a
	// key whose check matches under the index of another key.
	v := k.verified
	m := map[uint64]verifiedKey{
		maphash.String(v.index, wrong): {check: maphash.String(v.check, wrong) ^ 1, owner: "planted"},
	}
	v.m.Store(&m)
	if owner, ok := k.Authenticate("Bearer " + wrong); ok {
		t.Errorf("a key matching only the index hash was accepted as %q", owner)
	}
	if owner, ok := k.Authenticate("Bearer " + key); !ok || owner != OwnerForHash(Hash(key)) {
		t.Errorf("the keyring's key: %q, %v", owner, ok)
	}
	// Zero-value seeds are not usable: a Keyring made without ParseKeyring
	// checks in full.
	var bare Keyring
	if _, ok := bare.Authenticate("Bearer " + key); ok {
		t.Error("an empty Keyring accepted a key")
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	key, hash := Mint()
	header := "Bearer " + key.Reveal()
	for _, name := range []string{"remembered", "in-full"} {
		b.Run(name, func(b *testing.B) {
			k, err := ParseKeyring("", "owner:"+hash)
			if err != nil {
				b.Fatal(err)
			}
			if name == "in-full" {
				k.verified = nil
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := k.Authenticate(header); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
