package api

import (
	"sync"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
)

// encodedCacheSize bounds the answers encodedCache keeps (about 3 KB each).
const encodedCacheSize = 1024

// encodedCache keeps the encoded body of GET /v1/deployments/{id} (and
// PATCH's) per record version, and another one the list's items: callers
// poll GET while they wait for ready, and encoding the answer (reflection
// over Public and its times) was the largest part of that request's CPU
// under make bench's load (pprof). The store is still read on every request
// (it is the truth, and the owner check needs the record); only the
// encoding of a version already encoded is skipped.
//
// An entry is keyed by the record's id and matched on its Version and
// UpdatedAt, which every store changes on every write (store.Store's
// contract: Create sets Version to 1, Update increments it and sets
// UpdatedAt), so a changed record is never answered from the cache. A
// record without a version (0: never stored) is not cached. The body is
// d.Public(true), which holds no secret, as the uncached path writes it.
// Bodies never change once stored; a full cache drops an arbitrary entry.
// The zero value is ready to use.
type encodedCache struct {
	mu sync.RWMutex
	m  map[string]encodedEntry
}

type encodedEntry struct {
	version int64
	updated time.Time
	body    []byte
	length  []string // httpx.ContentLength(body)
}

// get returns the body encoded for d's version, or nil. The caller must not
// change it.
func (c *encodedCache) get(d *deployment.Deployment) []byte {
	body, _ := c.answer(d)
	return body
}

// answer returns the body encoded for d's version and its Content-Length
// value (httpx.WriteEncodedLength), or nils. The caller must change
// neither.
func (c *encodedCache) answer(d *deployment.Deployment) (body []byte, length []string) {
	if d.Version == 0 {
		return nil, nil
	}
	c.mu.RLock()
	e, ok := c.m[d.ID]
	c.mu.RUnlock()
	if !ok || e.version != d.Version || !e.updated.Equal(d.UpdatedAt) {
		return nil, nil
	}
	return e.body, e.length
}

// put keeps body as the answer for d's version (unless a newer version is
// kept already); body must not change afterwards.
func (c *encodedCache) put(d *deployment.Deployment, body []byte) {
	if d.Version == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]encodedEntry, encodedCacheSize)
	}
	e, ok := c.m[d.ID]
	if ok && e.version > d.Version {
		return // a slower reader of an older version: keep the newer one
	}
	if !ok && len(c.m) >= encodedCacheSize {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[d.ID] = encodedEntry{version: d.Version, updated: d.UpdatedAt, body: body, length: httpx.ContentLength(body)}
}
