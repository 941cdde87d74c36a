package provision

import (
	"context"
	"sync"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// CatalogTTL is how long a GPU catalogue read from RunPod is used before
// it is read again.
const CatalogTTL = time.Hour

// GPUCatalog keeps the GPU catalogue fresh: the embedded one, refreshed
// with RunPod's live prices and cards (GET /v2/catalog/gpus) at most once
// per CatalogTTL. A failed read keeps what it had: the choice never waits
// on the catalogue.
type GPUCatalog struct {
	Base   *gpu.Catalog
	RunPod interface {
		GPUTypes(ctx context.Context, key secret.Secret) ([]runpod.GPUType, error)
	}
	Now func() time.Time

	mu   sync.Mutex
	cur  *gpu.Catalog
	read time.Time
}

// Get returns the catalogue, refreshing it with key when it is stale.
func (c *GPUCatalog) Get(ctx context.Context, key secret.Secret) *gpu.Catalog {
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		c.cur = c.Base
	}
	if c.RunPod == nil || key.Empty() || (!c.read.IsZero() && now.Sub(c.read) < CatalogTTL) {
		return c.cur
	}
	c.read = now // also after a failure: retry after the TTL, not on every deployment
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	types, err := c.RunPod.GPUTypes(rctx, key)
	if err == nil && len(types) > 0 {
		c.cur = c.Base.Refresh(types).At(now)
	}
	return c.cur
}
