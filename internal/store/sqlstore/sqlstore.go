// Package sqlstore is the SQL implementation of store.Store shared by the
// SQLite and PostgreSQL backends. It owns the queries, the sealing of
// sensitive columns and the transaction logic; a backend supplies a Backend
// (connection handling, transactions) and a Dialect (the few places where
// the two databases differ: time encoding, row locks, error classification,
// status-index allocation, audit serialisation).
//
// Queries are written with '?' placeholders; the PostgreSQL backend rebinds
// them to $n.
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trustid/trustid/internal/coalesce"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
)

// ErrNoRows is returned by Row.Scan when the query matched nothing; backends
// translate their driver's own value to it.
var ErrNoRows = errors.New("sqlstore: no rows")

// Row is one result row.
type Row interface {
	Scan(dest ...any) error
}

// Rows is a result set. Close must be called (it is idempotent).
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Querier runs statements, inside or outside a transaction.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Backend is a database connection pool. Reads go through the Querier
// methods (autocommit); writes that need atomicity through WriteTx, which
// commits when fn returns nil and rolls back otherwise.
type Backend interface {
	Querier
	WriteTx(ctx context.Context, fn func(q Querier) error) error
}

// Dialect describes what differs between databases.
type Dialect struct {
	// ForUpdate is appended to SELECTs that read a row to update it
	// (" FOR UPDATE" in PostgreSQL; empty in SQLite, whose write
	// transactions already exclude other writers).
	ForUpdate string
	// Time encodes a non-zero UTC, microsecond-truncated time as a query
	// argument. Zero times are stored as NULL by the caller.
	Time func(time.Time) any
	// IsUnique reports a unique or primary-key violation.
	IsUnique func(error) bool
	// IsForeignKey reports a foreign-key violation.
	IsForeignKey func(error) bool
	// IsUnavailable reports a fault of the server or the connection (down,
	// shutting down, too many connections); nil means never.
	IsUnavailable func(error) bool
	// NextStatusIndex allocates the next certificate status index inside
	// the issuing transaction; values increase monotonically.
	NextStatusIndex func(ctx context.Context, q Querier) (int64, error)
	// LockAudit serialises audit appends (across processes) for the rest of
	// the transaction; nil when the write transaction already does.
	LockAudit func(ctx context.Context, q Querier) error
	// WritableCTE says the database runs data-modifying statements in WITH
	// with PostgreSQL's syntax and casts, so a multi-step write (an OAuth
	// rotation) can be one statement instead of a transaction of several.
	WritableCTE bool
	// Batches, when above zero (and with WritableCTE), makes concurrent
	// OAuth record reads and rotations outside transactions share
	// statements, at most Batches statements of each at once (package
	// coalesce).
	Batches int
}

// Store implements store.Store except Ping, Migrate and Close, which the
// backend's DB type adds.
type Store struct {
	b    Backend   // txAware: runs on the context's transaction if any
	tb   TxBackend // the backend when it can begin transactions, else nil
	d    Dialect
	ring *seal.Ring
	now  func() time.Time
	// Batched OAuth statements (oauth_batch.go); nil without Dialect.Batches.
	oauthGets      *coalesce.Group[oauthRef, *store.OAuthRecord]
	oauthRotations *coalesce.Group[rotation, struct{}]
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock used for CreatedAt/UpdatedAt defaults.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New assembles a Store.
func New(b Backend, d Dialect, ring *seal.Ring, opts ...Option) (*Store, error) {
	if b == nil || ring == nil || d.Time == nil || d.IsUnique == nil || d.IsForeignKey == nil || d.NextStatusIndex == nil {
		return nil, errors.New("sqlstore: backend, ring and a complete dialect are required")
	}
	s := &Store{d: d, ring: ring, now: time.Now}
	s.b = txAware{s: s, b: b}
	s.tb, _ = b.(TxBackend)
	for _, o := range opts {
		o(s)
	}
	s.initBatches()
	return s, nil
}

// Parts of store.Store.
func (s *Store) Citizens() store.CitizenStore         { return citizens{s} }
func (s *Store) Templates() store.TemplateStore       { return templates{s} }
func (s *Store) Passkeys() store.PasskeyStore         { return passkeys{s} }
func (s *Store) Clients() store.ClientStore           { return clients{s} }
func (s *Store) OAuth() store.OAuthStore              { return oauth{s} }
func (s *Store) Consents() store.ConsentStore         { return consents{s} }
func (s *Store) Certificates() store.CertificateStore { return certificates{s} }
func (s *Store) Audit() store.AuditStore              { return audit{s} }
func (s *Store) Keys() store.KeyStore                 { return keys{s} }

// RawBytes runs query (with '?' placeholders) and returns the first column
// of every row as stored, for tests that check sealed columns hold no
// plaintext.
func (s *Store) RawBytes(ctx context.Context, query string, args ...any) ([][]byte, error) {
	rows, err := s.b.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// RawExec runs a statement directly, bypassing sealing (tests only).
func (s *Store) RawExec(ctx context.Context, query string, args ...any) error {
	_, err := s.b.Exec(ctx, query, args...)
	return err
}

// utc normalises t to the stored form: UTC, truncated to microseconds.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// ts encodes a time argument; zero -> NULL.
func (s *Store) ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.d.Time(utc(t))
}

func (s *Store) clock() time.Time { return utc(s.now()) }

// tsDest scans a time column (int64 microseconds in SQLite, timestamptz in
// PostgreSQL, NULL for the zero time).
type tsDest struct{ t *time.Time }

func (d tsDest) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*d.t = time.Time{}
	case int64:
		*d.t = time.UnixMicro(x).UTC()
	case time.Time:
		*d.t = utc(x)
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into time", v)
	}
	return nil
}

func tsd(t *time.Time) tsDest { return tsDest{t} }

// wrap classifies err for callers: no rows -> ErrNotFound, unique violation
// -> ErrAlreadyExists, missing referenced record -> ErrNotFound.
func (s *Store) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNoRows):
		return fmt.Errorf("store: %s: %w", op, store.ErrNotFound)
	case s.d.IsUnique(err):
		return fmt.Errorf("store: %s: %w", op, store.ErrAlreadyExists)
	case s.d.IsForeignKey(err):
		return fmt.Errorf("store: %s: referenced record missing: %w", op, store.ErrNotFound)
	case s.d.IsUnavailable != nil && s.d.IsUnavailable(err):
		return fmt.Errorf("store: %s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// collect runs a query and scans every row with scan.
func collect[T any](ctx context.Context, q Querier, scan func(Row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// pageLimit applies the default page size.
func pageLimit(limit int) int {
	if limit <= 0 {
		return store.DefaultPageSize
	}
	return limit
}

// sealCol seals a sensitive column value bound to table, column and row key.
func (s *Store) sealCol(v []byte, table, column, key string) ([]byte, error) {
	ct, err := s.ring.Seal(v, seal.AAD(table, column, key))
	if err != nil {
		return nil, fmt.Errorf("store: seal %s.%s: %w", table, column, err)
	}
	return ct, nil
}

func (s *Store) openCol(ct []byte, table, column, key string) ([]byte, error) {
	pt, err := s.ring.Open(ct, seal.AAD(table, column, key))
	if err != nil {
		return nil, fmt.Errorf("store: open %s.%s: %w", table, column, err)
	}
	return pt, nil
}
