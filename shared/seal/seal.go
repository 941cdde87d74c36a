// Package seal encrypts secrets at rest (a user's RunPod key, a Hugging Face
// token) with Tink AEAD: AES-256-GCM under a local keyset file in the embedded
// runtime, and KMS envelope encryption (a fresh AES-256-GCM data key per
// message, wrapped by a Cloud KMS key) in the cloud.
//
// The associated data binds a ciphertext to its place, for example
// "deployments/dep_2026_c1badc17/user_runpod_key": a ciphertext copied to
// another record or field does not open there.
package seal

import (
	"context"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// Sealer encrypts and decrypts secrets. Implementations are safe for
// concurrent use.
type Sealer interface {
	Seal(ctx context.Context, plaintext secret.Secret, associatedData string) ([]byte, error)
	Open(ctx context.Context, ciphertext []byte, associatedData string) (secret.Secret, error)
}

// ErrOpen is returned by Open when a ciphertext does not decrypt: wrong key,
// wrong associated data, or tampered bytes.
var ErrOpen = errors.New("cannot open sealed secret")

// aeadSealer adapts a tink.AEADWithContext to Sealer.
type aeadSealer struct {
	aead tink.AEADWithContext
}

func (s *aeadSealer) Seal(ctx context.Context, plaintext secret.Secret, associatedData string) ([]byte, error) {
	ct, err := s.aead.EncryptWithContext(ctx, []byte(plaintext.Reveal()), []byte(associatedData))
	if err != nil {
		return nil, fmt.Errorf("seal secret: %w", err)
	}
	return ct, nil
}

func (s *aeadSealer) Open(ctx context.Context, ciphertext []byte, associatedData string) (secret.Secret, error) {
	if err := ctx.Err(); err != nil {
		return secret.Secret{}, fmt.Errorf("open sealed secret: %w", err)
	}
	pt, err := s.aead.DecryptWithContext(ctx, ciphertext, []byte(associatedData))
	if err != nil {
		return secret.Secret{}, fmt.Errorf("%w: %w", ErrOpen, err)
	}
	return secret.New(string(pt)), nil
}

// withContext lifts a local tink.AEAD (no I/O) to tink.AEADWithContext.
type withContext struct{ tink.AEAD }

func (w withContext) EncryptWithContext(ctx context.Context, pt, ad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return w.Encrypt(pt, ad)
}

func (w withContext) DecryptWithContext(ctx context.Context, ct, ad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return w.Decrypt(ct, ad)
}
