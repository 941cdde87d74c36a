package seal

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/tink-crypto/tink-go-gcpkms/v2/integration/gcpkms"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

const kmsURIPrefix = "gcp-kms://"

// KMS returns a Sealer doing envelope encryption under the Cloud KMS key
// keyURI ("gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K"): each
// Seal makes a fresh AES-256-GCM data key, encrypts with it, and stores the
// data key wrapped by KMS beside the ciphertext (one KMS call per Seal and per
// Open). The constructor only checks the URI: the KMS client (and with it the
// credential lookup) is made on first use, so a cold start makes no network
// call. A failure to make it is returned and retried on the next call.
func KMS(ctx context.Context, keyURI string) (Sealer, error) {
	if err := validateKeyURI(keyURI); err != nil {
		return nil, err
	}
	return newEnvelope(func(ctx context.Context) (tink.AEADWithContext, error) {
		return gcpkms.GetAEADWithContext(ctx, keyURI)
	}), nil
}

// validateKeyURI checks the shape of a Cloud KMS key URI.
func validateKeyURI(keyURI string) error {
	name, ok := strings.CutPrefix(keyURI, kmsURIPrefix)
	parts := strings.Split(name, "/")
	if !ok || len(parts) != 8 || parts[0] != "projects" || parts[2] != "locations" || parts[4] != "keyRings" || parts[6] != "cryptoKeys" {
		return fmt.Errorf("KMS key URI %q: want %sprojects/P/locations/L/keyRings/R/cryptoKeys/K", keyURI, kmsURIPrefix)
	}
	for i := 1; i < len(parts); i += 2 {
		if parts[i] == "" {
			return fmt.Errorf("KMS key URI %q has an empty %s", keyURI, parts[i-1])
		}
	}
	return nil
}

// envelope is the KMS envelope Sealer. newKEK makes the key-encryption AEAD
// (the remote KMS key in production, a local AEAD in tests); it runs on first
// use, and again after a failure.
type envelope struct {
	newKEK func(context.Context) (tink.AEADWithContext, error)

	mu     sync.Mutex
	sealer *aeadSealer
}

func newEnvelope(newKEK func(context.Context) (tink.AEADWithContext, error)) *envelope {
	return &envelope{newKEK: newKEK}
}

func (e *envelope) get(ctx context.Context) (*aeadSealer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sealer != nil {
		return e.sealer, nil
	}
	// The client outlives this call: keep the context's values, not its
	// cancellation.
	kek, err := e.newKEK(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("make KMS client: %w", err)
	}
	env, err := aead.NewKMSEnvelopeAEADWithContext(aead.AES256GCMKeyTemplate(), kek)
	if err != nil {
		return nil, fmt.Errorf("make envelope AEAD: %w", err)
	}
	e.sealer = &aeadSealer{aead: env}
	return e.sealer, nil
}

func (e *envelope) Seal(ctx context.Context, plaintext secret.Secret, associatedData string) ([]byte, error) {
	s, err := e.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("seal secret: %w", err)
	}
	return s.Seal(ctx, plaintext, associatedData)
}

func (e *envelope) Open(ctx context.Context, ciphertext []byte, associatedData string) (secret.Secret, error) {
	s, err := e.get(ctx)
	if err != nil {
		return secret.Secret{}, fmt.Errorf("open sealed secret: %w", err)
	}
	return s.Open(ctx, ciphertext, associatedData)
}
