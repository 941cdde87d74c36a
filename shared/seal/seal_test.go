package seal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

const plaintext = "rpa_THIS-IS-A-RUNPOD-KEY-0123456789"

// countingKEK is a local AEAD standing in for the Cloud KMS key.
type countingKEK struct {
	tink.AEADWithContext
	encrypts, decrypts atomic.Int64
}

func (k *countingKEK) EncryptWithContext(ctx context.Context, pt, ad []byte) ([]byte, error) {
	k.encrypts.Add(1)
	return k.AEADWithContext.EncryptWithContext(ctx, pt, ad)
}

func (k *countingKEK) DecryptWithContext(ctx context.Context, ct, ad []byte) ([]byte, error) {
	k.decrypts.Add(1)
	return k.AEADWithContext.DecryptWithContext(ctx, ct, ad)
}

func newLocalKEK(t *testing.T) *countingKEK {
	t.Helper()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	a, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	return &countingKEK{AEADWithContext: withContext{a}}
}

func envelopeWith(kek tink.AEADWithContext) *envelope {
	return newEnvelope(func(context.Context) (tink.AEADWithContext, error) { return kek, nil })
}

func localSealer(t *testing.T) Sealer {
	t.Helper()
	s, err := LocalKeyset(filepath.Join(t.TempDir(), "keys", "keyset.json"))
	if err != nil {
		t.Fatalf("LocalKeyset: %v", err)
	}
	return s
}

func TestSealers(t *testing.T) {
	sealers := map[string]func(t *testing.T) Sealer{
		"local keyset": localSealer,
		"kms envelope": func(t *testing.T) Sealer { return envelopeWith(newLocalKEK(t)) },
	}
	const ad = "deployments/dep_2026_c1badc17/user_runpod_key"
	for name, mk := range sealers {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			ctx := t.Context()
			ct, err := s.Seal(ctx, secret.New(plaintext), ad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if bytes.Contains(ct, []byte(plaintext)) || bytes.Contains(ct, []byte("RUNPOD-KEY")) {
				t.Error("the ciphertext contains the plaintext")
			}
			got, err := s.Open(ctx, ct, ad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if got.Reveal() != plaintext {
				t.Errorf("Open returned a different secret")
			}

			again, err := s.Seal(ctx, secret.New(plaintext), ad)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(again, ct) {
				t.Error("sealing twice gives the same ciphertext")
			}

			if _, err := s.Open(ctx, ct, "deployments/dep_2026_other/user_runpod_key"); !errors.Is(err, ErrOpen) {
				t.Errorf("Open with other associated data: %v, want ErrOpen", err)
			}
			tampered := bytes.Clone(ct)
			tampered[len(tampered)-1] ^= 1
			if _, err := s.Open(ctx, tampered, ad); !errors.Is(err, ErrOpen) {
				t.Errorf("Open of a tampered ciphertext: %v, want ErrOpen", err)
			}
			if _, err := s.Open(ctx, nil, ad); !errors.Is(err, ErrOpen) {
				t.Errorf("Open of nothing: %v, want ErrOpen", err)
			}

			empty, err := s.Seal(ctx, secret.New(""), ad)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.Open(ctx, empty, ad); err != nil || !got.Empty() {
				t.Errorf("round trip of an empty secret: %v", err)
			}
		})
	}
}

func TestSealersOpenOnlyTheirOwn(t *testing.T) {
	ctx := t.Context()
	a, b := localSealer(t), localSealer(t)
	ct, err := a.Seal(ctx, secret.New(plaintext), "ad")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(ctx, ct, "ad"); !errors.Is(err, ErrOpen) {
		t.Errorf("another keyset opened the ciphertext: %v", err)
	}

	e1, e2 := envelopeWith(newLocalKEK(t)), envelopeWith(newLocalKEK(t))
	ct, err = e1.Seal(ctx, secret.New(plaintext), "ad")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Open(ctx, ct, "ad"); !errors.Is(err, ErrOpen) {
		t.Errorf("another KEK opened the ciphertext: %v", err)
	}
}

func TestLocalKeysetFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "secrets")
	path := filepath.Join(dir, "keyset.json")
	s, err := LocalKeyset(path)
	if err != nil {
		t.Fatalf("LocalKeyset: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("keyset file mode %#o, want 0600", perm)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("keyset directory mode %#o, want 0700", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("keyset directory holds %d entries, want only the keyset", len(entries))
	}

	ct, err := s.Seal(t.Context(), secret.New(plaintext), "ad")
	if err != nil {
		t.Fatal(err)
	}
	reopened, err := LocalKeyset(path)
	if err != nil {
		t.Fatalf("LocalKeyset again: %v", err)
	}
	got, err := reopened.Open(t.Context(), ct, "ad")
	if err != nil {
		t.Fatalf("Open after reopening the keyset: %v", err)
	}
	if got.Reveal() != plaintext {
		t.Error("reopened keyset returned a different secret")
	}
}

func TestLocalKeysetRefusesOpenPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyset.json")
	if _, err := LocalKeyset(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := LocalKeyset(path); err == nil {
			t.Errorf("LocalKeyset accepted a keyset with mode %#o", mode)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LocalKeyset(path); err != nil {
		t.Errorf("LocalKeyset refused a read-only owner keyset: %v", err)
	}
}

func TestLocalKeysetBadFiles(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.json")
	if err := os.WriteFile(garbage, []byte("not a keyset"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LocalKeyset(garbage); err == nil {
		t.Error("LocalKeyset accepted a file that is not a keyset")
	}
	if _, err := LocalKeyset(dir); err == nil {
		t.Error("LocalKeyset accepted a directory")
	}
}

func TestLocalKeysetConcurrentCreation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyset.json")
	const n = 8
	sealers := make([]Sealer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sealers[i], errs[i] = LocalKeyset(path)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("LocalKeyset %d: %v", i, err)
		}
	}
	ct, err := sealers[0].Seal(t.Context(), secret.New(plaintext), "ad")
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range sealers {
		if _, err := s.Open(t.Context(), ct, "ad"); err != nil {
			t.Errorf("sealer %d uses another keyset: %v", i, err)
		}
	}
}

func TestEnvelopeUsesKEKPerMessage(t *testing.T) {
	kek := newLocalKEK(t)
	e := envelopeWith(kek)
	ctx := t.Context()
	ct, err := e.Seal(ctx, secret.New(plaintext), "ad")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Open(ctx, ct, "ad"); err != nil {
		t.Fatal(err)
	}
	if got, want := kek.encrypts.Load(), int64(1); got != want {
		t.Errorf("KEK encrypted %d times for one Seal, want %d (wrap the data key)", got, want)
	}
	if got, want := kek.decrypts.Load(), int64(1); got != want {
		t.Errorf("KEK decrypted %d times for one Open, want %d (unwrap the data key)", got, want)
	}
}

func TestEnvelopeIsLazyAndRetriesClientCreation(t *testing.T) {
	kek := newLocalKEK(t)
	var calls atomic.Int64
	fail := errors.New("no credentials")
	e := newEnvelope(func(ctx context.Context) (tink.AEADWithContext, error) {
		if calls.Add(1) == 1 {
			return nil, fail
		}
		return kek, nil
	})
	if calls.Load() != 0 {
		t.Fatal("the constructor made the KMS client")
	}
	if _, err := e.Seal(t.Context(), secret.New(plaintext), "ad"); !errors.Is(err, fail) {
		t.Fatalf("Seal with a failing client: %v, want %v", err, fail)
	}
	ct, err := e.Seal(t.Context(), secret.New(plaintext), "ad")
	if err != nil {
		t.Fatalf("Seal after the failure: %v", err)
	}
	if _, err := e.Open(t.Context(), ct, "ad"); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("client made %d times, want 2 (once failing, once for good)", got)
	}
}

func TestKMSConstructor(t *testing.T) {
	good := "gcp-kms://projects/visgate/locations/europe-west1/keyRings/orchestrator/cryptoKeys/secrets"
	// Only checks the URI: no credentials or network here, and none needed.
	s, err := KMS(t.Context(), good)
	if err != nil || s == nil {
		t.Fatalf("KMS(%q) = %v, %v", good, s, err)
	}
	for _, bad := range []string{
		"",
		"projects/visgate/locations/europe-west1/keyRings/orchestrator/cryptoKeys/secrets",
		"aws-kms://arn:aws:kms:eu-west-1:1:key/x",
		"gcp-kms://projects/visgate/locations/europe-west1/keyRings/orchestrator",
		"gcp-kms://projects//locations/europe-west1/keyRings/orchestrator/cryptoKeys/secrets",
		"gcp-kms://projects/visgate/locations/europe-west1/keyRings/orchestrator/cryptoKeys/secrets/cryptoKeyVersions/1",
	} {
		if _, err := KMS(t.Context(), bad); err == nil {
			t.Errorf("KMS(%q) accepted the URI", bad)
		}
	}
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, s := range map[string]Sealer{"local": localSealer(t), "envelope": envelopeWith(newLocalKEK(t))} {
		if _, err := s.Seal(ctx, secret.New(plaintext), "ad"); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Seal with a canceled context: %v", name, err)
		}
	}
}
