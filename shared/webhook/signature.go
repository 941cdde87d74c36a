// Package webhook signs and delivers the service's outgoing webhooks.
//
// Signatures follow Standard Webhooks (https://www.standardwebhooks.com): every
// request carries webhook-id, webhook-timestamp and webhook-signature, where the
// signature is "v1," + base64(HMAC-SHA256(key, id + "." + unix seconds + "." + body))
// and key is the base64 part of a "whsec_" secret. Any Standard Webhooks library
// verifies what Sign produces.
//
// Delivery (Sender) refuses private, loopback, link-local, metadata and other
// non-public destinations when the connection is dialled (any port is
// allowed: receivers often listen on 8443 and the like), never follows
// redirects, uses no proxy, bounds every request in time and caps what it
// reads back. One Send is one attempt; Schedule and NextDelay give the retry
// policy: transport errors, timeouts, 408, 429 and 5xx are retried, with the
// same webhook-id every time; anything else is final.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// Header names defined by Standard Webhooks.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// DefaultTolerance is the largest clock difference Verify accepts when called
// with a tolerance of zero or less (the value Standard Webhooks recommends).
const DefaultTolerance = 5 * time.Minute

// Standard Webhooks asks for signing keys of 24 to 64 bytes.
const (
	minKeyBytes = 24
	maxKeyBytes = 64
)

// Errors returned by Sign and Verify; match them with errors.Is.
var (
	ErrInvalidSecret       = errors.New("invalid webhook signing secret")
	ErrInvalidMessageID    = errors.New("invalid webhook message id")
	ErrMissingHeaders      = errors.New("missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrInvalidTimestamp    = errors.New("invalid webhook-timestamp header")
	ErrTimestampOutOfRange = errors.New("webhook timestamp outside the tolerated range")
	ErrNoMatchingSignature = errors.New("no matching webhook signature")
)

// ownerSecretContext separates the per-owner derivation from any other use of
// the master key.
const ownerSecretContext = "webhook-signing:"

// OwnerSecret derives the signing secret of one owner from the service's master
// key: "whsec_" + base64(HMAC-SHA256(master, "webhook-signing:" + owner)). The
// master key's bytes are used as they are (no decoding), so the same
// WEBHOOK_SIGNING_KEY value always yields the same per-owner secrets, and an
// owner's receivers can be given their secret without revealing anyone else's.
//
// The caller must make sure master is not empty: an empty master would derive
// secrets that anyone can compute.
func OwnerSecret(master secret.Secret, owner string) secret.Secret {
	m := hmac.New(sha256.New, []byte(master.Reveal()))
	m.Write([]byte(ownerSecretContext + owner))
	return secret.New(SecretPrefix + base64.StdEncoding.EncodeToString(m.Sum(nil)))
}

// signingKey decodes a "whsec_" secret (the prefix is optional, as in the
// reference libraries) into its HMAC key.
func signingKey(whsec secret.Secret) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(whsec.Reveal(), SecretPrefix))
	if err != nil {
		// The decoder's error names only an offset, never the secret.
		return nil, fmt.Errorf("%w: not base64: %w", ErrInvalidSecret, err)
	}
	if len(key) < minKeyBytes || len(key) > maxKeyBytes {
		return nil, fmt.Errorf("%w: key is %d bytes, want %d to %d", ErrInvalidSecret, len(key), minKeyBytes, maxKeyBytes)
	}
	return key, nil
}

func validMessageID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidMessageID)
	}
	if len(id) > 256 {
		return fmt.Errorf("%w: %d bytes long, at most 256", ErrInvalidMessageID, len(id))
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: byte %d is a space, control or non-ASCII character", ErrInvalidMessageID, i)
		}
	}
	return nil
}

func signature(key []byte, msgID string, unix int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msgID))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, unix, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the webhook-signature header value for one message:
// "v1,<base64 HMAC-SHA256 of msgID.unix(ts).body>". ts is truncated to whole
// seconds, as the webhook-timestamp header carries them.
func Sign(whsec secret.Secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := signingKey(whsec)
	if err != nil {
		return "", err
	}
	if err := validMessageID(msgID); err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(signature(key, msgID, ts.Unix(), body)), nil
}

// Verify checks a received webhook as a Standard Webhooks receiver does: the
// three headers are present, the timestamp is within tolerance of now (either
// direction; tolerance <= 0 means DefaultTolerance), and one of the
// space-separated "v1,<signature>" entries matches, compared in constant time.
func Verify(whsec secret.Secret, headers http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := signingKey(whsec)
	if err != nil {
		return err
	}
	id := headers.Get(HeaderID)
	tsHeader := headers.Get(HeaderTimestamp)
	sigHeader := headers.Get(HeaderSignature)
	if id == "" || tsHeader == "" || sigHeader == "" {
		return ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: not a number of seconds", ErrInvalidTimestamp)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s away from now, tolerance %s", ErrTimestampOutOfRange, d.Round(time.Second), tolerance)
	}
	want := []byte(base64.StdEncoding.EncodeToString(signature(key, id, unix, body)))
	matched := false
	for _, entry := range strings.Fields(sigHeader) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		// Keep looking after a match so the time taken does not depend on
		// which entry matched.
		if hmac.Equal([]byte(sig), want) {
			matched = true
		}
	}
	if !matched {
		return ErrNoMatchingSignature
	}
	return nil
}
