package bolt

import (
	"bytes"
	"sync"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
)

// recordCacheSize bounds the records recordCache keeps (a record and its
// stored bytes: a few KB each, so a few MB when full).
const recordCacheSize = 1024

// recordCache is a write-through cache of the deployment records, each
// with the bytes it was decoded from. GET /v1/deployments/{id} is the
// API's hottest read (callers poll it while they wait for ready): a kept
// record is answered without a bbolt read transaction, which was the
// largest cost of that request left in the handler (make bench, pprof),
// and without decoding its JSON.
//
// A kept record is the one last committed, so a read never sees a record
// older than a write that has returned:
//
//   - Every write goes through this Store (bbolt locks the file: no other
//     process can open it while this one has it) and is serialised by
//     Store.mu. Create and Update store the record they committed before
//     they publish it to the change feed (whose subscribers read it) and
//     before they return; a write that fails after it may have reached
//     the file forgets the id, so that the next read takes the file's word.
//   - A read that misses reads the file in a transaction and fills the
//     cache from it (fill), but only when no write was stored or forgotten
//     since before that transaction began (gen): otherwise its snapshot may
//     be older than the write, which may itself have been evicted since.
//
// Entries never change once stored: a hit is compared and handed out
// outside the lock (the mutex profile under GET's load had a copy made
// under it as the most contended lock of the request). A full cache drops
// an arbitrary entry. The zero value is ready to use.
type recordCache struct {
	mu sync.RWMutex
	m  map[string]cacheEntry
	// gen counts the writes stored or forgotten (under mu).
	gen uint64
}

type cacheEntry struct {
	raw []byte
	d   *deployment.Deployment
}

// current returns the record id as last committed, when kept: the caller
// must not change it.
func (c *recordCache) current(id string) *deployment.Deployment {
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if !ok {
		return nil
	}
	return e.d
}

// generation is what fill needs of a read that begins now.
func (c *recordCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// get returns a copy of the record decoded from raw (bytes read in a
// transaction), or nil when the kept record is another or none.
func (c *recordCache) get(id string, raw []byte) *deployment.Deployment {
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if !ok || !bytes.Equal(e.raw, raw) {
		return nil
	}
	return e.d.Clone()
}

// fill keeps a copy of d, decoded from raw (which bbolt owns: it is
// copied), read in a transaction that began after generation returned gen.
// It keeps nothing when a write was stored or forgotten since (the read may
// be older than it), or when id is kept already (by a write, or by a fill
// of the same generation: the same record).
func (c *recordCache) fill(id string, raw []byte, d *deployment.Deployment, gen uint64) {
	e := cacheEntry{raw: bytes.Clone(raw), d: d.Clone()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.m[id]; ok {
		return
	}
	c.insert(id, e)
}

// store keeps the record of id just committed, raw being its stored
// bytes, decoded from them (so that it is exactly what a read of the file
// returns). Only a writer holding Store.mu calls it, after the commit and
// before the write is published or returns.
func (c *recordCache) store(id string, raw []byte) {
	d, err := decode(raw)
	if err != nil { // not what json.Marshal made: read it from the file
		c.forget(id)
		return
	}
	e := cacheEntry{raw: bytes.Clone(raw), d: d}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.insert(id, e)
}

// forget drops id: a write failed, and the file may or may not hold it.
func (c *recordCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, id)
}

// insert keeps e under id, dropping an arbitrary other entry when full.
// The caller holds mu.
func (c *recordCache) insert(id string, e cacheEntry) {
	if c.m == nil {
		c.m = make(map[string]cacheEntry, recordCacheSize)
	}
	if _, ok := c.m[id]; !ok && len(c.m) >= recordCacheSize {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[id] = e
}
