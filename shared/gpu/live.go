package gpu

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// Defaults of Live.
const (
	// LiveTTL is how long an account's catalogue is used before it is read
	// again.
	LiveTTL = time.Hour
	// LiveFailureTTL is how long a failed read keeps the account on the
	// catalogue it had (the embedded one at first) before the next try.
	LiveFailureTTL = time.Minute
	// LiveTimeout bounds one read of the source.
	LiveTimeout = 5 * time.Second
)

// Source reads the GPU offers of the account that key opens.
type Source func(ctx context.Context, key secret.Secret) ([]Offer, error)

// Live keeps one catalogue per account: Base refreshed with what Source
// returns for the account's key (its availability and prices are its own,
// never another account's). Entries are keyed by a hash of the key, so the
// key itself is not kept. Concurrent reads for one account collapse into one
// call of Source; no lock is held while Source runs; a caller whose context
// ends stops waiting (with the account's last catalogue), while the read
// goes on for the others. A failed read keeps the last catalogue for
// LiveFailureTTL. Live is safe for concurrent use.
type Live struct {
	Base   *Catalog
	Source Source
	// TTL, FailureTTL and Timeout default to LiveTTL, LiveFailureTTL and
	// LiveTimeout.
	TTL, FailureTTL, Timeout time.Duration
	Now                      func() time.Time

	mu        sync.Mutex
	accounts  map[[sha256.Size]byte]*account
	lastSweep time.Time
}

// account is one account's cache entry. cat, until and refreshing are
// guarded by Live.mu.
type account struct {
	cat        *Catalog
	until      time.Time     // cat is fresh until then
	refreshing chan struct{} // closed when the read in flight ends; nil when none
}

// Get returns the catalogue of key's account: Base when there is no key or no
// Source.
func (l *Live) Get(ctx context.Context, key secret.Secret) *Catalog {
	if l.Source == nil || key.Empty() {
		return l.Base
	}
	h := sha256.Sum256([]byte(key.Reveal()))
	for {
		l.mu.Lock()
		now := l.now()
		l.sweep(now)
		a := l.accounts[h]
		if a == nil {
			a = &account{cat: l.Base}
			l.accounts[h] = a
		}
		if now.Before(a.until) {
			cat := a.cat
			l.mu.Unlock()
			return cat
		}
		wait := a.refreshing
		if wait == nil {
			wait = make(chan struct{})
			a.refreshing = wait
			go l.refresh(context.WithoutCancel(ctx), key, a, wait)
		}
		last := a.cat
		l.mu.Unlock()
		select {
		case <-wait: // fresh now (or failed and marked so): read it again
		case <-ctx.Done():
			return last
		}
	}
}

// refresh reads the source for one account, without holding the lock, and
// publishes the result.
func (l *Live) refresh(ctx context.Context, key secret.Secret, a *account, done chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, orDefault(l.Timeout, LiveTimeout))
	defer cancel()
	offers, err := l.Source(ctx, key)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && len(offers) > 0 {
		a.cat = l.Base.Refresh(offers).At(l.now())
		a.until = l.now().Add(orDefault(l.TTL, LiveTTL))
	} else {
		a.until = l.now().Add(orDefault(l.FailureTTL, LiveFailureTTL))
	}
	a.refreshing = nil
	close(done)
}

// sweep forgets accounts whose catalogue went stale a whole TTL ago, at most
// once per TTL, so memory holds the accounts seen lately. Called with mu held.
func (l *Live) sweep(now time.Time) {
	if l.accounts == nil {
		l.accounts = make(map[[sha256.Size]byte]*account)
	}
	ttl := orDefault(l.TTL, LiveTTL)
	if now.Sub(l.lastSweep) < ttl {
		return
	}
	l.lastSweep = now
	for h, a := range l.accounts {
		if a.refreshing == nil && now.Sub(a.until) > ttl {
			delete(l.accounts, h)
		}
	}
}

func (l *Live) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
