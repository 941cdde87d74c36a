// Package bolt is the embedded store: deployments and idempotency claims in
// one bbolt file, records as JSON, with an in-process change feed standing in
// for the Firestore trigger.
package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

var (
	bucketDeployments = []byte("deployments")
	// bucketByCreated indexes deployments by (CreatedAt, ID); see indexKey.
	bucketByCreated  = []byte("deployments_by_created")
	bucketIdempotent = []byte("idempotency")
)

// defaultLimit is the page size of a List without a Limit.
const defaultLimit = 100

// Errors of Open.
var (
	// ErrUnreadable: the file is damaged (truncated, zeroed, garbled) or
	// empty. The service must not start on it: restore it from a backup.
	ErrUnreadable = errors.New("the store file is damaged")
	// ErrLocked: another process has the file open.
	ErrLocked = errors.New("the store file is locked by another process")
)

// Store is a store.Store and store.IdempotencyStore over a bbolt file.
type Store struct {
	db    *bbolt.DB
	feed  *feed
	drain time.Duration
	log   *slog.Logger

	// unreadable holds the ids of deployment records that do not decode:
	// List skips them (and reports each once) instead of failing.
	unreadableMu sync.Mutex
	unreadable   map[string]bool

	// mu orders Create and Update commits with their publication to the
	// feed, so subscribers see changes in commit order. bbolt admits one
	// writer at a time anyway.
	mu        sync.Mutex
	closeOnce sync.Once
	closeErr  error
	// closed is set by Close: reads fail from then on, as bbolt's do,
	// rather than answer from the cache.
	closed atomic.Bool

	// cache holds the records as last committed (see recordCache): a read
	// of a kept record needs no bbolt transaction.
	cache recordCache
}

var (
	_ store.Store            = (*Store)(nil)
	_ store.IdempotencyStore = (*Store)(nil)
	_ store.Viewer           = (*Store)(nil)
)

// Option configures Open.
type Option func(*config)

type config struct {
	lockTimeout  time.Duration
	drainTimeout time.Duration
	logger       *slog.Logger
}

// WithLockTimeout bounds the wait for the file lock another process holds
// (default 1 s); Open then fails instead of waiting forever.
func WithLockTimeout(d time.Duration) Option { return func(c *config) { c.lockTimeout = d } }

// WithDrainTimeout bounds how long Close waits for change subscribers to
// take what is queued (default 5 s); then their context is cancelled.
func WithDrainTimeout(d time.Duration) Option { return func(c *config) { c.drainTimeout = d } }

// WithLogger sets where the change feed reports trouble (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Open opens (creating it and its directory if needed) the store at path.
func Open(path string, opts ...Option) (*Store, error) {
	cfg := config{lockTimeout: time.Second, drainTimeout: 5 * time.Second, logger: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: creating the directory of %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		// Not a new store: bbolt writes its first pages before anything
		// else. Starting empty would orphan every endpoint it recorded.
		return nil, fmt.Errorf("bolt: %s is empty (0 bytes; %w): restore it with keyset.json from a backup, "+
			"or move it away to start with no deployments (RunPod endpoints it recorded are then not deleted by the service)", path, ErrUnreadable)
	}
	unreadable := func(err error) error {
		return fmt.Errorf("bolt: %s cannot be read (%w: %v): restore it with keyset.json from a backup; "+
			"do not delete it, the RunPod endpoints it records would no longer be deleted by the service", path, ErrUnreadable, err)
	}
	var db *bbolt.DB
	err := safely(func() (err error) {
		db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: cfg.lockTimeout})
		return err
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: %s: %w (another orchestrator with the same DATA_DIR?); stop it first", path, ErrLocked)
	}
	if err != nil {
		return nil, unreadable(err)
	}
	var bad []string
	err = safely(func() error {
		if err := db.View(func(tx *bbolt.Tx) error { return walk(tx, &bad) }); err != nil {
			return err
		}
		return db.Update(func(tx *bbolt.Tx) error {
			for _, name := range [][]byte{bucketDeployments, bucketByCreated, bucketIdempotent} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("creating bucket %s: %w", name, err)
				}
			}
			return nil
		})
	})
	if err != nil {
		_ = safely(db.Close)
		return nil, unreadable(err)
	}
	s := &Store{db: db, feed: newFeed(cfg.logger), drain: cfg.drainTimeout, log: cfg.logger, unreadable: map[string]bool{}}
	for _, id := range bad {
		s.skip(id, errors.New("the stored record is not valid JSON"))
	}
	return s, nil
}

// safely runs fn, turning a panic of bbolt on a damaged file (and a memory
// fault on a truncated one) into an error.
func safely(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return fn()
}

// walk reads every key and value of every bucket, so that a damaged page
// shows at Open rather than in a request, and collects the ids of
// deployment records that are not JSON.
func walk(tx *bbolt.Tx, bad *[]string) error {
	return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
		deployments := bytes.Equal(name, bucketDeployments)
		sum := crc32.NewIEEE()
		return b.ForEach(func(k, v []byte) error {
			sum.Write(k)
			sum.Write(v)
			if deployments && !json.Valid(v) {
				*bad = append(*bad, string(k))
			}
			return nil
		})
	})
}

// skip records that the deployment record id cannot be read, reporting it
// once.
func (s *Store) skip(id string, err error) {
	s.unreadableMu.Lock()
	seen := s.unreadable[id]
	s.unreadable[id] = true
	s.unreadableMu.Unlock()
	if !seen {
		s.log.Error("bolt: skipping an unreadable deployment record; restore the store from a backup to get it back",
			"deployment_id", id, "error", err.Error())
	}
}

// Unreadable returns the ids of the deployment records found unreadable so
// far (at Open, or by List), sorted.
func (s *Store) Unreadable() []string {
	s.unreadableMu.Lock()
	defer s.unreadableMu.Unlock()
	ids := slices.Collect(maps.Keys(s.unreadable))
	slices.Sort(ids)
	return ids
}

// Subscribe registers fn to receive every change committed from now on by
// Create and Update, as deep copies, in commit order, asynchronously: fn runs
// on a goroutine of its own and never holds up a writer (changes queue for
// it, unbounded, so fn should hand long work elsewhere). Close delivers what
// is queued, waiting up to the drain timeout, then cancels fn's context.
func (s *Store) Subscribe(fn store.ChangeFunc) { s.feed.subscribe(fn) }

// Create stores d if its id is free and sets d.Version to 1.
func (s *Store) Create(ctx context.Context, d *deployment.Deployment) error {
	if d.ID == "" {
		return fmt.Errorf("bolt: create: empty deployment id")
	}
	rec := *d
	rec.Version = 1
	raw, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("bolt: create %s: encoding: %w", d.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDeployments)
		if b.Get([]byte(d.ID)) != nil {
			return store.ErrExists
		}
		if err := b.Put([]byte(d.ID), raw); err != nil {
			return err
		}
		return putIndex(tx, &rec)
	})
	if err != nil {
		if !errors.Is(err, store.ErrExists) {
			s.cache.forget(d.ID) // whatever the file holds now is read from it
		}
		return fmt.Errorf("bolt: create %s: %w", d.ID, err)
	}
	d.Version = 1
	// Kept before it is published: a subscriber reading the record it is
	// told of must find this version (or a later one), not none older.
	s.cache.store(d.ID, raw)
	s.feed.publish(change{new: raw})
	return nil
}

// Get returns the deployment with id, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*deployment.Deployment, error) {
	d, kept, err := s.read(id)
	if err != nil {
		return nil, err
	}
	if kept {
		d = d.Clone() // the caller may change it
	}
	return d, nil
}

// View calls fn with the stored deployment id, read-only (store.Viewer):
// the record the cache keeps, not a copy. fn runs outside any transaction.
func (s *Store) View(ctx context.Context, id string, fn func(d *deployment.Deployment) error) error {
	d, _, err := s.read(id)
	if err != nil {
		return err
	}
	return fn(d)
}

// read returns the stored deployment id: the record the cache keeps (kept:
// the caller must not change it), with no bbolt transaction, or else one
// read and decoded now, which the cache then keeps unless a write
// overtook the read (see recordCache.fill).
func (s *Store) read(id string) (d *deployment.Deployment, kept bool, err error) {
	if s.closed.Load() {
		return nil, false, fmt.Errorf("bolt: get %s: %w", id, bolterrors.ErrDatabaseNotOpen)
	}
	if d = s.cache.current(id); d != nil {
		return d, true, nil
	}
	gen := s.cache.generation() // before the transaction begins
	err = s.view(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketDeployments).Get([]byte(id))
		if raw == nil {
			return store.ErrNotFound
		}
		var err error
		if d, err = decode(raw); err == nil {
			s.cache.fill(id, raw, d, gen)
		}
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("bolt: get %s: %w", id, err)
	}
	return d, false, nil
}

// fnError marks an error returned by an UpdateFunc, so that Update returns it
// as it is.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// Update applies fn to the deployment in one write transaction. fn runs once.
func (s *Store) Update(ctx context.Context, id string, fn store.UpdateFunc) (*deployment.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		cur, next *deployment.Deployment
		oldRaw    []byte
		newRaw    []byte
	)
	err := s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDeployments)
		raw := b.Get([]byte(id))
		if raw == nil {
			return store.ErrNotFound
		}
		oldRaw = bytes.Clone(raw)
		var err error
		// cur is only read (and returned with ErrNoChange, as a Get would
		// return it): the kept record's copy will do. next is decoded, so
		// that what fn changes is written from exactly what was stored.
		if cur = s.cache.get(id, raw); cur == nil {
			if cur, err = decode(raw); err != nil {
				return err
			}
		}
		if next, err = decode(raw); err != nil {
			return err
		}
		if err := fn(next); err != nil {
			return fnError{err}
		}
		if next.ID != id {
			return fmt.Errorf("the update changed the id to %q", next.ID)
		}
		next.Version = cur.Version + 1
		next.UpdatedAt = time.Now().UTC()
		if newRaw, err = json.Marshal(next); err != nil {
			return fmt.Errorf("encoding: %w", err)
		}
		if err := b.Put([]byte(id), newRaw); err != nil {
			return err
		}
		if !cur.CreatedAt.Equal(next.CreatedAt) {
			if err := tx.Bucket(bucketByCreated).Delete(indexKey(cur)); err != nil {
				return err
			}
		}
		return putIndex(tx, next)
	})
	if fe, ok := errors.AsType[fnError](err); ok {
		if errors.Is(fe.err, store.ErrNoChange) {
			return cur, fe.err
		}
		return nil, fe.err
	}
	if err != nil {
		s.cache.forget(id) // whatever the file holds now is read from it
		return nil, fmt.Errorf("bolt: update %s: %w", id, err)
	}
	// Kept before it is published (a subscriber reads the record it is
	// told of) and before Update returns: no read after either sees the
	// record older.
	s.cache.store(id, newRaw)
	s.feed.publish(change{old: oldRaw, new: newRaw})
	return next, nil
}

// indexMeta is what the (CreatedAt, ID) index holds of a deployment: enough
// to filter a List without decoding records it will not return.
type indexMeta struct {
	Owner           string            `json:"o"`
	Status          deployment.Status `json:"s"`
	StatusChangedAt time.Time         `json:"c"`
}

// indexKey sorts by CreatedAt, then ID: 8 bytes of Unix seconds with the sign
// bit flipped (so negative seconds sort first), 4 bytes of nanoseconds, the id.
func indexKey(d *deployment.Deployment) []byte {
	k := make([]byte, 12, 12+len(d.ID))
	binary.BigEndian.PutUint64(k, uint64(d.CreatedAt.Unix())^(1<<63))
	binary.BigEndian.PutUint32(k[8:], uint32(d.CreatedAt.Nanosecond()))
	return append(k, d.ID...)
}

func putIndex(tx *bbolt.Tx, d *deployment.Deployment) error {
	meta, err := json.Marshal(indexMeta{Owner: d.Owner, Status: d.Status, StatusChangedAt: d.StatusChangedAt})
	if err != nil {
		return fmt.Errorf("encoding the index entry: %w", err)
	}
	return tx.Bucket(bucketByCreated).Put(indexKey(d), meta)
}

// List walks the (CreatedAt, ID) index from the newest. The cursor is the
// index key of the last deployment returned.
func (s *Store) List(ctx context.Context, q store.ListQuery) ([]*deployment.Deployment, string, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	var after []byte
	if q.Cursor != "" {
		var err error
		after, err = base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || len(after) <= 12 {
			return nil, "", fmt.Errorf("bolt: list: cursor %q: %w", q.Cursor, store.ErrBadCursor)
		}
	}
	var (
		out  []*deployment.Deployment
		next string
	)
	var skipped []string
	var skipErrs []error
	gen := s.cache.generation()
	err := s.view(func(tx *bbolt.Tx) error {
		records := tx.Bucket(bucketDeployments)
		c := tx.Bucket(bucketByCreated).Cursor()
		var k, v []byte
		switch {
		case after == nil:
			k, v = c.Last()
		default:
			if k, _ = c.Seek(after); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		var last []byte
		for ; k != nil; k, v = c.Prev() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(k) <= 12 {
				continue // not an index key: a damaged page
			}
			var m indexMeta
			if err := json.Unmarshal(v, &m); err != nil {
				skipped, skipErrs = append(skipped, string(k[12:])), append(skipErrs, fmt.Errorf("decoding its index entry: %w", err))
				continue
			}
			if !matches(q, m) {
				continue
			}
			if len(out) == limit {
				next = base64.RawURLEncoding.EncodeToString(last)
				return nil
			}
			raw := records.Get(k[12:])
			if raw == nil {
				skipped, skipErrs = append(skipped, string(k[12:])), append(skipErrs, errors.New("the index names a record that is missing"))
				continue
			}
			id := string(k[12:])
			d := s.cache.get(id, raw)
			if d == nil {
				var err error
				if d, err = decode(raw); err != nil {
					skipped, skipErrs = append(skipped, id), append(skipErrs, err)
					continue
				}
				s.cache.fill(id, raw, d, gen)
			}
			out = append(out, d)
			last = bytes.Clone(k)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("bolt: list: %w", err)
	}
	for i, id := range skipped {
		s.skip(id, skipErrs[i])
	}
	return out, next, nil
}

// view and update run a bbolt transaction, turning a panic of bbolt on a
// damaged page into an error.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	return safely(func() error { return s.db.View(fn) })
}

func (s *Store) update(fn func(*bbolt.Tx) error) error {
	err := safely(func() error { return s.db.Update(fn) })
	if full(err) {
		// bbolt rolls the transaction back: the file keeps the last
		// committed state.
		return fmt.Errorf("%w: %w", store.ErrFull, err)
	}
	return err
}

// full reports whether err is the file system's "no space left" (or a
// quota): bbolt passes the write's error on, sometimes only as text.
func full(err error) bool {
	return err != nil && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(err.Error(), syscall.ENOSPC.Error()))
}

func matches(q store.ListQuery, m indexMeta) bool {
	return (q.Owner == "" || m.Owner == q.Owner) &&
		(len(q.Statuses) == 0 || slices.Contains(q.Statuses, m.Status)) &&
		(q.ChangedBefore.IsZero() || m.StatusChangedAt.Before(q.ChangedBefore))
}

// Ping reports whether the store is open.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.view(func(*bbolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("bolt: ping: %w", err)
	}
	return nil
}

// Close delivers the changes queued for subscribers (see Subscribe) and
// closes the file. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// Under mu no write is between its commit and its publication:
		// every committed change reaches the feed before it closes.
		s.mu.Lock()
		s.closed.Store(true)
		err := s.db.Close()
		s.mu.Unlock()
		s.feed.close(s.drain)
		if err != nil {
			s.closeErr = fmt.Errorf("bolt: close: %w", err)
		}
	})
	return s.closeErr
}

// idempotencyKey is the claim's key: hex sha256(owner + "\x00" + key), as in
// the Firestore store.
func idempotencyKey(owner, key string) []byte {
	sum := sha256.Sum256([]byte(owner + "\x00" + key))
	return []byte(hex.EncodeToString(sum[:]))
}

// ClaimIdempotency stores rec unless (rec.Owner, rec.Key) holds an unexpired
// claim, which it returns instead.
func (s *Store) ClaimIdempotency(ctx context.Context, rec store.Idempotency) (*store.Idempotency, error) {
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("bolt: claim idempotency key: encoding: %w", err)
	}
	var existing *store.Idempotency
	err = s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketIdempotent)
		k := idempotencyKey(rec.Owner, rec.Key)
		if v := b.Get(k); v != nil {
			var cur store.Idempotency
			if err := json.Unmarshal(v, &cur); err != nil {
				return fmt.Errorf("decoding the stored claim: %w", err)
			}
			if cur.ExpiresAt.After(time.Now()) {
				existing = &cur
				return nil
			}
		}
		return b.Put(k, raw)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: claim idempotency key: %w", err)
	}
	return existing, nil
}

// ReleaseIdempotency deletes the claim (owner, key), if any.
func (s *Store) ReleaseIdempotency(ctx context.Context, owner, key string) error {
	err := s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketIdempotent).Delete(idempotencyKey(owner, key))
	})
	if err != nil {
		return fmt.Errorf("bolt: release idempotency key: %w", err)
	}
	return nil
}

func decode(raw []byte) (*deployment.Deployment, error) {
	d := new(deployment.Deployment)
	if err := json.Unmarshal(raw, d); err != nil {
		return nil, fmt.Errorf("decoding a stored deployment: %w", err)
	}
	return d, nil
}
