// Package firestore is the Google Cloud store: deployments in the collection
// "deployments" (document id = deployment id) and idempotency claims in
// "idempotency" (document id = hex sha256(owner + "\x00" + key)).
//
// Documents carry the records' JSON field names with Firestore types (see
// codec.go). Times are kept to the microsecond, Firestore's precision: Create
// and Update round them, so the record a caller holds afterwards is what Get
// returns. The composite indexes List needs are in INDEXES.md.
package firestore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// Collection names.
const (
	DeploymentsCollection = "deployments"
	IdempotencyCollection = "idempotency"
)

const (
	defaultLimit = 100
	// pingDocID names a document Ping reads; it need not exist.
	pingDocID = "_ping"
)

// Store is a store.Store and store.IdempotencyStore over Firestore.
type Store struct {
	client      *firestore.Client
	deployments *firestore.CollectionRef
	idempotency *firestore.CollectionRef
	pingTimeout time.Duration
	maxAttempts int

	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store            = (*Store)(nil)
	_ store.IdempotencyStore = (*Store)(nil)
)

// Option configures New.
type Option func(*config)

type config struct {
	database    string
	clientOpts  []option.ClientOption
	pingTimeout time.Duration
	maxAttempts int
}

// WithDatabase selects a named database instead of "(default)".
func WithDatabase(id string) Option { return func(c *config) { c.database = id } }

// WithClientOptions passes options to the Firestore client (credentials,
// endpoint). With FIRESTORE_EMULATOR_HOST set the client talks to the
// emulator without any.
func WithClientOptions(opts ...option.ClientOption) Option {
	return func(c *config) { c.clientOpts = append(c.clientOpts, opts...) }
}

// WithPingTimeout bounds Ping (default 1 s), so that a readiness check
// answers in time when Firestore is unreachable.
func WithPingTimeout(d time.Duration) Option { return func(c *config) { c.pingTimeout = d } }

// WithMaxAttempts sets how many times Update and ClaimIdempotency try their
// compare-and-set under contention (default 20).
func WithMaxAttempts(n int) Option { return func(c *config) { c.maxAttempts = n } }

// New returns a store over the Firestore of projectID. It makes no network
// call: the client connects on first use.
func New(ctx context.Context, projectID string, opts ...Option) (*Store, error) {
	cfg := config{pingTimeout: time.Second, maxAttempts: 20}
	for _, o := range opts {
		o(&cfg)
	}
	if projectID == "" {
		return nil, errors.New("firestore: empty project id")
	}
	var (
		client *firestore.Client
		err    error
	)
	if cfg.database == "" {
		client, err = firestore.NewClient(ctx, projectID, cfg.clientOpts...)
	} else {
		client, err = firestore.NewClientWithDatabase(ctx, projectID, cfg.database, cfg.clientOpts...)
	}
	if err != nil {
		return nil, fmt.Errorf("firestore: client for project %s: %w", projectID, err)
	}
	return &Store{
		client:      client,
		deployments: client.Collection(DeploymentsCollection),
		idempotency: client.Collection(IdempotencyCollection),
		pingTimeout: cfg.pingTimeout,
		maxAttempts: cfg.maxAttempts,
	}, nil
}

// validID reports whether id can name a document: not empty, no slash, not
// "." or "..", not of the reserved form __x__, at most 1500 bytes.
func validID(id string) bool {
	return id != "" && id != "." && id != ".." && len(id) <= 1500 && !strings.Contains(id, "/") &&
		!(strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__"))
}

func isCode(err error, c codes.Code) bool { return status.Code(err) == c }

// Create stores d if no document has its id, rounds d's times to the
// microsecond and sets d.Version to 1.
func (s *Store) Create(ctx context.Context, d *deployment.Deployment) error {
	if !validID(d.ID) {
		return fmt.Errorf("firestore: create: invalid deployment id %q", d.ID)
	}
	rec := *d
	rec.Version = 1
	data, err := encodeDeployment(&rec)
	if err != nil {
		return fmt.Errorf("firestore: create %s: encoding: %w", d.ID, err)
	}
	stored, err := decodeDeployment(data)
	if err != nil {
		return fmt.Errorf("firestore: create %s: %w", d.ID, err)
	}
	if _, err := s.deployments.Doc(d.ID).Create(ctx, data); err != nil {
		if isCode(err, codes.AlreadyExists) {
			return fmt.Errorf("firestore: create %s: %w", d.ID, store.ErrExists)
		}
		return fmt.Errorf("firestore: create %s: %w", d.ID, err)
	}
	*d = *stored
	return nil
}

// Get returns the deployment with id, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*deployment.Deployment, error) {
	if !validID(id) {
		return nil, fmt.Errorf("firestore: get %q: %w", id, store.ErrNotFound)
	}
	snap, err := s.deployments.Doc(id).Get(ctx)
	if err != nil {
		if isCode(err, codes.NotFound) {
			return nil, fmt.Errorf("firestore: get %s: %w", id, store.ErrNotFound)
		}
		return nil, fmt.Errorf("firestore: get %s: %w", id, err)
	}
	d, err := decode(snap)
	if err != nil {
		return nil, fmt.Errorf("firestore: get %s: %w", id, err)
	}
	return d, nil
}

func decode(snap *firestore.DocumentSnapshot) (*deployment.Deployment, error) {
	d, err := decodeDeployment(snap.Data())
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", snap.Ref.ID, err)
	}
	return d, nil
}

// Update reads the document, applies fn and writes the result with a
// compare-and-set: the write carries the read's update time as a
// precondition, so it fails if anything wrote in between, and Update then
// reads again and reruns fn (after a short random pause), up to the
// configured attempts. No update is lost, and no lock is held while fn runs.
//
// A single precondition write, rather than a transaction (read locks held to
// the commit): contending transactions on one document deadlock on their read
// locks in the emulator until a 2 s lock timeout, then back off from 1 s,
// which made five concurrent updates take 3 to 12 s; this takes milliseconds,
// and in production saves the BeginTransaction round trip.
func (s *Store) Update(ctx context.Context, id string, fn store.UpdateFunc) (*deployment.Deployment, error) {
	if !validID(id) {
		return nil, fmt.Errorf("firestore: update %q: %w", id, store.ErrNotFound)
	}
	ref := s.deployments.Doc(id)
	for attempt := 1; ; attempt++ {
		snap, err := ref.Get(ctx)
		if err != nil {
			if isCode(err, codes.NotFound) {
				return nil, fmt.Errorf("firestore: update %s: %w", id, store.ErrNotFound)
			}
			return nil, fmt.Errorf("firestore: update %s: %w", id, err)
		}
		cur, err := decode(snap)
		if err != nil {
			return nil, fmt.Errorf("firestore: update %s: %w", id, err)
		}
		next, err := decode(snap)
		if err != nil {
			return nil, fmt.Errorf("firestore: update %s: %w", id, err)
		}
		if err := fn(next); err != nil {
			if errors.Is(err, store.ErrNoChange) {
				return cur, err
			}
			return nil, err
		}
		if next.ID != id {
			return nil, fmt.Errorf("firestore: update %s: the update changed the id to %q", id, next.ID)
		}
		next.Version = cur.Version + 1
		next.UpdatedAt = time.Now()
		data, err := encodeDeployment(next)
		if err != nil {
			return nil, fmt.Errorf("firestore: update %s: encoding: %w", id, err)
		}
		stored, err := decodeDeployment(data)
		if err != nil {
			return nil, fmt.Errorf("firestore: update %s: %w", id, err)
		}
		_, err = ref.Update(ctx, fieldUpdates(data), firestore.LastUpdateTime(snap.UpdateTime))
		switch {
		case err == nil:
			return stored, nil
		case isCode(err, codes.NotFound):
			return nil, fmt.Errorf("firestore: update %s: %w", id, store.ErrNotFound)
		case !conflict(err):
			return nil, fmt.Errorf("firestore: update %s: %w", id, err)
		}
		if err := s.pause(ctx, attempt); err != nil {
			return nil, fmt.Errorf("firestore: update %s: %w", id, err)
		}
	}
}

// conflict reports whether a write failed because the document changed
// since it was read.
func conflict(err error) bool {
	return isCode(err, codes.FailedPrecondition) || isCode(err, codes.Aborted)
}

// errContention is returned when every attempt of a compare-and-set lost.
var errContention = errors.New("the document kept changing under the write")

// pause waits before attempt+1 of a compare-and-set: a random time up to
// 10 ms doubled per attempt, at most 500 ms; an error when the attempts are
// spent or ctx is done.
func (s *Store) pause(ctx context.Context, attempt int) error {
	if attempt >= s.maxAttempts {
		return fmt.Errorf("%w (%d attempts)", errContention, attempt)
	}
	ceiling := min(10*time.Millisecond<<min(attempt-1, 10), 500*time.Millisecond)
	t := time.NewTimer(rand.N(ceiling) + time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fieldUpdates sets every top-level field of data (the whole document the
// codec makes) to its new value.
func fieldUpdates(data map[string]any) []firestore.Update {
	ups := make([]firestore.Update, 0, len(data))
	for _, k := range slices.Sorted(maps.Keys(data)) {
		ups = append(ups, firestore.Update{FieldPath: firestore.FieldPath{k}, Value: data[k]})
	}
	return ups
}

// cursor is where a List stopped: the last returned deployment's sort key.
type cursor struct {
	CreatedAt time.Time `json:"c"`
	ID        string    `json:"i"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c) // a time and a string always encode
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, fmt.Errorf("cursor %q: %w: %w", s, store.ErrBadCursor, err)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return cursor{}, fmt.Errorf("cursor %q: %w: %w", s, store.ErrBadCursor, err)
	}
	if !validID(c.ID) {
		return cursor{}, fmt.Errorf("cursor %q: %w: no document id", s, store.ErrBadCursor)
	}
	return c, nil
}

// newestFirst orders by CreatedAt desc, then ID desc.
func newestFirst(a, b *deployment.Deployment) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(b.ID, a.ID)
}

// List queries deployments newest first.
//
// Without ChangedBefore the query orders by created_at desc, __name__ desc and
// pages with StartAfter. With ChangedBefore (the reconciler's query: in a
// set of statuses and unchanged since a time) Firestore cannot both filter
// status_changed_at by range and order by created_at without a further
// index on every combination, so the query filters by range and List sorts
// the matches in memory, then pages with the same cursor: every page reads
// every match. The matches are deployments stuck past a deadline: few.
func (s *Store) List(ctx context.Context, q store.ListQuery) ([]*deployment.Deployment, string, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	var after *cursor
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("firestore: list: %w", err)
		}
		after = &c
	}

	query := s.deployments.Query
	if q.Owner != "" {
		query = query.Where(fieldOwner, "==", q.Owner)
	}
	statuses := slices.Compact(slices.Sorted(slices.Values(q.Statuses)))
	switch len(statuses) {
	case 0:
	case 1:
		query = query.Where(fieldStatus, "==", string(statuses[0]))
	default:
		vals := make([]string, len(statuses))
		for i, st := range statuses {
			vals[i] = string(st)
		}
		query = query.Where(fieldStatus, "in", vals)
	}

	var (
		out []*deployment.Deployment
		err error
	)
	if q.ChangedBefore.IsZero() {
		query = query.OrderBy(fieldCreatedAt, firestore.Desc).OrderBy(firestore.DocumentID, firestore.Desc)
		if after != nil {
			query = query.StartAfter(after.CreatedAt, after.ID)
		}
		out, err = s.all(ctx, query.Limit(limit+1))
	} else {
		query = query.Where(fieldStatusChangedAt, "<", q.ChangedBefore)
		out, err = s.all(ctx, query)
		slices.SortFunc(out, newestFirst)
		if after != nil {
			key := &deployment.Deployment{CreatedAt: after.CreatedAt, ID: after.ID}
			i, _ := slices.BinarySearchFunc(out, key, newestFirst)
			for i < len(out) && newestFirst(out[i], key) <= 0 {
				i++
			}
			out = out[i:]
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("firestore: list: %w", err)
	}
	if len(out) <= limit {
		return out, "", nil
	}
	out = out[:limit]
	last := out[limit-1]
	return out, cursor{CreatedAt: last.CreatedAt, ID: last.ID}.encode(), nil
}

func (s *Store) all(ctx context.Context, q firestore.Query) ([]*deployment.Deployment, error) {
	it := q.Documents(ctx)
	defer it.Stop()
	var out []*deployment.Deployment
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		d, err := decode(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
}

// Ping reads a document that need not exist, within the ping timeout: an
// answer, NotFound included, means Firestore is reachable.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.pingTimeout)
	defer cancel()
	_, err := s.deployments.Doc(pingDocID).Get(ctx)
	if err == nil || isCode(err, codes.NotFound) {
		return nil
	}
	return fmt.Errorf("firestore: ping: %w", err)
}

// Close closes the client. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := s.client.Close(); err != nil {
			s.closeErr = fmt.Errorf("firestore: close: %w", err)
		}
	})
	return s.closeErr
}

// IdempotencyDocID is the id of the document holding the claim (owner, key).
func IdempotencyDocID(owner, key string) string {
	sum := sha256.Sum256([]byte(owner + "\x00" + key))
	return hex.EncodeToString(sum[:])
}

// ClaimIdempotency stores rec unless (rec.Owner, rec.Key) holds an unexpired
// claim, which it returns instead. Create-if-absent decides between racing
// first claims; an expired claim is replaced with a compare-and-set on its
// update time, so of two racing replacements one wins and the other sees it.
func (s *Store) ClaimIdempotency(ctx context.Context, rec store.Idempotency) (*store.Idempotency, error) {
	ref := s.idempotency.Doc(IdempotencyDocID(rec.Owner, rec.Key))
	data, err := encodeIdempotency(&rec)
	if err != nil {
		return nil, fmt.Errorf("firestore: claim idempotency key: encoding: %w", err)
	}
	for attempt := 1; ; attempt++ {
		_, err := ref.Create(ctx, data)
		if err == nil {
			return nil, nil
		}
		if !isCode(err, codes.AlreadyExists) {
			return nil, fmt.Errorf("firestore: claim idempotency key: %w", err)
		}
		snap, err := ref.Get(ctx)
		switch {
		case isCode(err, codes.NotFound): // released meanwhile: create again
			continue
		case err != nil:
			return nil, fmt.Errorf("firestore: claim idempotency key: %w", err)
		}
		cur, err := decodeIdempotency(snap.Data())
		if err != nil {
			return nil, fmt.Errorf("firestore: claim idempotency key: decoding the stored claim: %w", err)
		}
		if cur.ExpiresAt.After(time.Now()) {
			return cur, nil
		}
		_, err = ref.Update(ctx, fieldUpdates(data), firestore.LastUpdateTime(snap.UpdateTime))
		switch {
		case err == nil:
			return nil, nil
		case !conflict(err) && !isCode(err, codes.NotFound):
			return nil, fmt.Errorf("firestore: claim idempotency key: %w", err)
		}
		if err := s.pause(ctx, attempt); err != nil {
			return nil, fmt.Errorf("firestore: claim idempotency key: %w", err)
		}
	}
}

// ReleaseIdempotency deletes the claim (owner, key), if any.
func (s *Store) ReleaseIdempotency(ctx context.Context, owner, key string) error {
	if _, err := s.idempotency.Doc(IdempotencyDocID(owner, key)).Delete(ctx); err != nil {
		return fmt.Errorf("firestore: release idempotency key: %w", err)
	}
	return nil
}
