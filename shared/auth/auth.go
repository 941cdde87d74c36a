// Package auth authenticates API keys and internal callback secrets.
//
// API keys are stored only as SHA-256 hashes. A fast hash is the right tool
// here, unlike for passwords: a minted key carries 256 bits of randomness, so
// there is nothing to brute-force and a slow KDF would only add latency to
// every request. Keys given in plain (API_KEYS, for local use) must be at
// least MinKeyLength characters; pick them long and random too.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// KeyPrefix starts every minted API key.
const KeyPrefix = "vgk_"

// OwnerPrefix starts the owner ids derived from plain keys.
const OwnerPrefix = "own_"

// MinKeyLength is the shortest plain key ParseKeyring accepts.
const MinKeyLength = 16

// maxKeyLength bounds what Authenticate hashes.
const maxKeyLength = 512

// maxOwnerLength bounds owner ids.
const maxOwnerLength = 64

// Mint returns a new API key ("vgk_" + 32 random bytes in unpadded base64url)
// and its hash, the only form in which it should be stored.
func Mint() (key secret.Secret, hash string) {
	k := KeyPrefix + randomToken()
	return secret.New(k), Hash(k)
}

// Hash returns the lowercase hex SHA-256 of key.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// OwnerForHash is the owner id of a key given in plain: "own_" + the first
// 16 hex digits of its hash (all of it when shorter).
func OwnerForHash(hash string) string {
	return OwnerPrefix + hash[:min(16, len(hash))]
}

// ValidateOwner checks an owner id: 1 to 64 characters among ASCII letters,
// digits, '_', '-' and '.'.
func ValidateOwner(owner string) error {
	if owner == "" {
		return errors.New("owner is empty")
	}
	if len(owner) > maxOwnerLength {
		return fmt.Errorf("owner is %d characters long; at most %d", len(owner), maxOwnerLength)
	}
	for i := 0; i < len(owner); i++ {
		c := owner[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("owner %q has a character other than ASCII letters, digits, '_', '-' and '.'", owner)
		}
	}
	return nil
}

type entry struct {
	hash  [sha256.Size]byte
	owner string
}

// Keyring maps API key hashes to owners. Its keys never change, and it is
// safe for concurrent use.
type Keyring struct {
	entries []entry
	// verified remembers the keys Authenticate accepted (see verifiedKeys);
	// nil for a Keyring not made by ParseKeyring, which then checks every
	// key in full.
	verified *verifiedKeys
}

// verifiedKeys remembers the presented keys a Keyring accepted, so that
// the next request with one skips its SHA-256 and the comparison with
// every stored hash (a tenth of GET's handler CPU under make bench's load,
// pprof). It never holds a key: an entry is keyed by a 64-bit keyed hash
// of the key (hash/maphash, under a random seed of this process) and
// holds a second one, under another seed, that a presented key must match
// too, so a key is taken for a remembered one only when both of its
// 64-bit hashes are equal to that key's: an attacker who sees neither
// seed nor any hash has 2^-128 odds per try, against 2^-256 for guessing
// a minted key outright.
//
// Only accepted keys are remembered, so an entry is one of the keyring's
// keys: the cache is bounded by the keyring's size (maxVerifiedKeys is a
// second bound, for safety). Whether a key is
// remembered shows in Authenticate's timing only to someone presenting a
// valid key, who learns nothing from it; a key that is not remembered is
// checked as before, against every stored hash in constant time. The
// keyring's keys never change, so an answer remembered stays true: no
// expiry is needed (a rotation makes a new Keyring, with an empty cache).
type verifiedKeys struct {
	index, check maphash.Seed
	mu           sync.Mutex // serialises writers; readers load m
	m            atomic.Pointer[map[uint64]verifiedKey]
}

type verifiedKey struct {
	check uint64
	owner string
}

// maxVerifiedKeys bounds verifiedKeys.
const maxVerifiedKeys = 4096

func newVerifiedKeys() *verifiedKeys {
	return &verifiedKeys{index: maphash.MakeSeed(), check: maphash.MakeSeed()}
}

// lookup returns the owner of key when it was accepted before.
func (v *verifiedKeys) lookup(key string) (owner string, ok bool) {
	m := v.m.Load()
	if m == nil {
		return "", false
	}
	e, found := (*m)[maphash.String(v.index, key)]
	if !found || e.check != maphash.String(v.check, key) {
		return "", false
	}
	return e.owner, true
}

// remember records that key, just checked in full, belongs to owner. The
// map is copied on write: writes happen once per key.
func (v *verifiedKeys) remember(key, owner string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.m.Load()
	n := 0
	if old != nil {
		n = len(*old)
	}
	if n >= maxVerifiedKeys {
		return
	}
	m := make(map[uint64]verifiedKey, n+1)
	if old != nil {
		maps.Copy(m, *old)
	}
	m[maphash.String(v.index, key)] = verifiedKey{check: maphash.String(v.check, key), owner: owner}
	v.m.Store(&m)
}

// ParseKeyring builds a keyring from the API_KEYS and API_KEY_HASHES values.
//
// apiKeys holds plain keys, comma-separated; each is its own owner,
// OwnerForHash(Hash(key)). apiKeyHashes holds "owner:sha256hex" entries,
// comma-separated (what Secret Manager holds in the cloud); one owner may have
// several keys, for rotation. Spaces around entries and empty entries are
// ignored. A malformed entry, or one hash bound to two owners, is an error
// naming the variable and the entry's position (1-based), never the key.
func ParseKeyring(apiKeys, apiKeyHashes string) (*Keyring, error) {
	k := &Keyring{verified: newVerifiedKeys()}
	owners := make(map[[sha256.Size]byte]string)
	add := func(where string, h [sha256.Size]byte, owner string) error {
		if prev, ok := owners[h]; ok {
			if prev == owner {
				return nil
			}
			return fmt.Errorf("%s: the same key is already bound to another owner", where)
		}
		owners[h] = owner
		k.entries = append(k.entries, entry{hash: h, owner: owner})
		return nil
	}
	for i, item := range strings.Split(apiKeys, ",") {
		key := strings.TrimSpace(item)
		if key == "" {
			continue
		}
		where := fmt.Sprintf("API_KEYS entry %d", i+1)
		if len(key) < MinKeyLength {
			return nil, fmt.Errorf("%s: key is shorter than %d characters", where, MinKeyLength)
		}
		if len(key) > maxKeyLength {
			return nil, fmt.Errorf("%s: key is longer than %d characters", where, maxKeyLength)
		}
		for j := 0; j < len(key); j++ {
			if c := key[j]; c <= ' ' || c >= 0x7f {
				return nil, fmt.Errorf("%s: key contains a space, control or non-ASCII character", where)
			}
		}
		sum := sha256.Sum256([]byte(key))
		if err := add(where, sum, OwnerForHash(hex.EncodeToString(sum[:]))); err != nil {
			return nil, err
		}
	}
	for i, item := range strings.Split(apiKeyHashes, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		where := fmt.Sprintf("API_KEY_HASHES entry %d", i+1)
		owner, hexHash, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf(`%s: want "owner:sha256hex"`, where)
		}
		owner = strings.TrimSpace(owner)
		if err := ValidateOwner(owner); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		hexHash = strings.ToLower(strings.TrimSpace(hexHash))
		raw, err := hex.DecodeString(hexHash)
		if err != nil || len(raw) != sha256.Size {
			// Say nothing of the value: someone may have pasted a key here.
			return nil, fmt.Errorf("%s: the hash is not 64 hexadecimal digits", where)
		}
		if err := add(where, [sha256.Size]byte(raw), owner); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Len returns the number of keys in the keyring.
func (k *Keyring) Len() int { return len(k.entries) }

// Authenticate takes the raw Authorization header value, "Bearer <key>" (the
// scheme in any case), and returns the key's owner. Every stored hash is
// compared, in constant time, whatever matches.
func (k *Keyring) Authenticate(authorization string) (owner string, ok bool) {
	scheme, key, found := strings.Cut(strings.TrimSpace(authorization), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	key = strings.TrimSpace(key)
	if key == "" || len(key) > maxKeyLength {
		return "", false
	}
	if k.verified != nil {
		if owner, ok := k.verified.lookup(key); ok {
			return owner, true
		}
	}
	sum := sha256.Sum256([]byte(key))
	for _, e := range k.entries {
		if subtle.ConstantTimeCompare(sum[:], e.hash[:]) == 1 {
			owner, ok = e.owner, true
		}
	}
	if ok && k.verified != nil {
		k.verified.remember(key, owner)
	}
	return owner, ok
}

// CheckCallbackSecret reports whether presented equals expected, in constant
// time (both are hashed first, so not even their lengths leak). An empty
// expected secret matches nothing.
func CheckCallbackSecret(presented string, expected secret.Secret) bool {
	if expected.Empty() {
		return false
	}
	p := sha256.Sum256([]byte(presented))
	e := sha256.Sum256([]byte(expected.Reveal()))
	return subtle.ConstantTimeCompare(p[:], e[:]) == 1
}

// callbackSecretContext separates callback secrets from every other use of
// the master key (the webhook secrets derive from it under their own label).
const callbackSecretContext = "visgate/callback-secret/v1\x00"

// CallbackSecret is the callback secret of one deployment: HMAC-SHA256 of
// its id under the master key, in unpadded base64url. Deriving it, rather
// than storing a random one, means checking a presented secret costs one
// HMAC: no store read, no decryption (no KMS call), the same work and the
// same answer for an id that does not exist. Nothing needs storing; a new
// master key changes every deployment's secret.
func CallbackSecret(master secret.Secret, deploymentID string) secret.Secret {
	m := hmac.New(sha256.New, []byte(master.Reveal()))
	m.Write([]byte(callbackSecretContext + deploymentID))
	return secret.New(base64.RawURLEncoding.EncodeToString(m.Sum(nil)))
}

func randomToken() string {
	b := make([]byte, 32)
	// crypto/rand.Read never returns an error (it crashes the program
	// instead when the system's randomness fails).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
