// Package store defines where deployments live. Two implementations pass the
// same conformance suite (storetest): bolt (the embedded default) and
// firestore (Google Cloud).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
)

// Errors every implementation returns (wrapped or not; test with errors.Is).
var (
	ErrNotFound = errors.New("store: not found")
	// ErrFull wraps a write refused for want of space (the embedded
	// store's disk is full): nothing was written; a later retry may pass.
	ErrFull   = errors.New("store: no space left for the write")
	ErrExists = errors.New("store: already exists")
	// ErrNoChange may be returned by an UpdateFunc to abort an update
	// without writing; Update then returns the current record and ErrNoChange.
	ErrNoChange = errors.New("store: no change")
	// ErrBadCursor is returned by List for a cursor it did not make.
	ErrBadCursor = errors.New("store: invalid cursor")
)

// UpdateFunc mutates d in place. Returning an error aborts the update and
// nothing is written; Update returns that error.
type UpdateFunc func(d *deployment.Deployment) error

// ListQuery selects deployments. Zero fields select everything.
type ListQuery struct {
	Owner string // only this owner's deployments
	// Statuses, when not empty, keeps only deployments in one of them.
	Statuses []deployment.Status
	// ChangedBefore, when not zero, keeps only deployments whose status last
	// changed before it (what the reconciler looks for).
	ChangedBefore time.Time
	// Limit caps the page (0: the implementation's default, 100).
	Limit int
	// Cursor continues a previous List (its next cursor); opaque.
	Cursor string
}

// Store keeps deployments. Every method is safe for concurrent use.
type Store interface {
	// Create stores d if no deployment with d.ID exists, else ErrExists.
	// It sets d.Version to 1. A store may round times to its precision
	// (Firestore keeps microseconds); it then rounds them in d too, so that
	// after Create d equals what Get returns.
	Create(ctx context.Context, d *deployment.Deployment) error
	// Get returns the deployment with id, or ErrNotFound.
	Get(ctx context.Context, id string) (*deployment.Deployment, error)
	// Update reads the deployment, applies fn and writes the result in one
	// transaction (a compare-and-set on Version: concurrent updates are
	// retried, never lost). It increments Version and sets UpdatedAt.
	// fn may run more than once; it must not have side effects outside d.
	Update(ctx context.Context, id string, fn UpdateFunc) (*deployment.Deployment, error)
	// List returns deployments matching q, newest first (CreatedAt desc, then
	// ID desc), and a cursor for the next page ("" when there is none).
	List(ctx context.Context, q ListQuery) ([]*deployment.Deployment, string, error)
	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error
	// Close releases resources.
	Close() error
}

// Change is one write to a deployment: Old is nil on create.
type Change struct {
	Old, New *deployment.Deployment
}

// StatusChanged reports whether the write changed the deployment's status
// (a create counts as a change).
func (c Change) StatusChanged() bool {
	if c.New == nil {
		return false
	}
	return c.Old == nil || c.Old.Status != c.New.Status
}

// ChangeFunc receives changes from a change feed.
type ChangeFunc func(ctx context.Context, c Change)

// Idempotency records that an owner's Idempotency-Key was used for a request.
type Idempotency struct {
	Owner        string    `json:"owner"`
	Key          string    `json:"key"`
	RequestHash  string    `json:"request_hash"`  // hash of the request body
	DeploymentID string    `json:"deployment_id"` // chosen before the deployment is created
	CreatedAt    time.Time `json:"created_at"`
	ExpiresAt    time.Time `json:"expires_at"` // 24 h after CreatedAt
}

// IdempotencyStore keeps Idempotency-Key claims. Implemented by both stores.
type IdempotencyStore interface {
	// ClaimIdempotency stores rec if (rec.Owner, rec.Key) has no unexpired
	// claim and returns (nil, nil); otherwise it stores nothing and returns
	// the existing claim. Expired claims are replaced.
	ClaimIdempotency(ctx context.Context, rec Idempotency) (*Idempotency, error)
	// ReleaseIdempotency deletes the claim (owner, key), e.g. when the
	// request that claimed it failed before creating anything.
	ReleaseIdempotency(ctx context.Context, owner, key string) error
}
