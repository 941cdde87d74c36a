package api

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func idemRecord(f *fixture, key, idem, hash string) store.Idempotency {
	return store.Idempotency{
		Owner: auth.OwnerForHash(auth.Hash(key)), Key: idem, RequestHash: hash,
		DeploymentID: "dep_2026_00000000", CreatedAt: *f.clock, ExpiresAt: f.clock.Add(IdempotencyTTL),
	}
}
