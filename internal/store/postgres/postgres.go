// Package postgres is the production store.Store backend on PostgreSQL
// (pgx/v5 connection pool).
//
// Updaters run in a READ COMMITTED transaction that first reads the row with
// SELECT ... FOR UPDATE, so concurrent updaters of one record queue on the
// row lock instead of losing writes. Certificate issuing locks the citizen's
// row; audit appends lock the audit table in SHARE ROW EXCLUSIVE mode (it
// conflicts with itself, not with readers), so the hash chain stays linear
// across every node. Schema migrations are embedded and applied with goose on
// Open and by Migrate, under a PostgreSQL advisory session lock (one per
// schema) so nodes starting together do not race.
//
// Tables are created in the connection's search_path; a DSN may name a
// schema with search_path=... (the tests use one schema per test). Pool
// sizes come from the DSN too (pool_max_conns=..., see pgxpool.ParseConfig).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a PostgreSQL-backed store.Store.
type DB struct {
	*sqlstore.Store
	pool *pgxpool.Pool
}

var (
	_ store.Store      = (*DB)(nil)
	_ store.Transactor = (*DB)(nil)
)

// Option configures the store.
type Option = sqlstore.Option

// DefaultMaxConns is the pool size when the DSN does not set
// pool_max_conns: 3 connections per CPU the Go runtime may use
// (GOMAXPROCS), at least 6.
//
// More connections than that do not add throughput; they add latency. With
// 32 connections on 2 cores, 16 concurrent token requests kept 16
// PostgreSQL backends runnable next to the Go process and the load
// generator; the scheduler then preempts backends in the middle of a commit
// (while they hold WAL or buffer locks the others wait for), and the token
// endpoint's p99 went from about 20 ms to 100-150 ms at the same rate
// (bench/oidc/run.sh; oidc/README.md has the numbers). Fewer than about 3
// per core lose throughput instead, because commits that wait for a WAL
// flush can no longer be grouped. Requests beyond the pool queue in pgxpool
// without holding a backend. On 2 cores, 6 connections against 8 (same
// binary, alternating runs, 12:32-12:36 UTC): p99 15.7 / 15.0 / 17.9 ms at
// 3078 / 2968 / 2888 req/s against 27.0 / 23.1 ms at 3135 / 2632 req/s;
// 5 lost throughput (2398 req/s).
func DefaultMaxConns() int32 { return int32(max(6, 3*runtime.GOMAXPROCS(0))) }

// WithClock sets the clock used for CreatedAt/UpdatedAt defaults.
func WithClock(now func() time.Time) Option { return sqlstore.WithClock(now) }

// Open connects to dsn (a postgres:// URL or key=value string), applies
// pending migrations and returns the store. ring seals sensitive columns.
func Open(ctx context.Context, dsn string, ring *seal.Ring, opts ...Option) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgxpool's default (max(4, CPUs)) queues concurrent requests behind
		// a few commits; a few more connections let PostgreSQL group their
		// WAL flushes, too many oversubscribe the CPU (see DefaultMaxConns).
		cfg.MaxConns = DefaultMaxConns()
	}
	return OpenConfig(ctx, cfg, ring, opts...)
}

// OpenConfig is Open with a parsed pool configuration (pool sizes,
// AfterConnect hooks, TLS).
func OpenConfig(ctx context.Context, cfg *pgxpool.Config, ring *seal.Ring, opts ...Option) (*DB, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s, err := sqlstore.New(&backend{pool: pool}, dialect, ring, opts...)
	if err != nil {
		pool.Close()
		return nil, err
	}
	db := &DB{Store: s, pool: pool}
	if err := db.Migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Migrate applies the embedded migrations forward; it is idempotent and safe
// to run from several nodes at once.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	// One advisory lock per schema: nodes migrating one schema serialise,
	// different schemas (tests, tenants) do not wait on each other.
	var schema string
	if err := db.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("trustid/goose/" + schema))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64()>>1)),
		lock.WithLockTimeout(1, 600), // poll each second, give up after 10 minutes
	)
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	sdb := stdlib.OpenDBFromPool(db.pool)
	defer sdb.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sdb, fsys,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// ExecAdmin runs one statement on a dedicated connection to dsn, outside
// any pool (administration such as creating or dropping a schema).
func ExecAdmin(ctx context.Context, dsn, stmt string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// Ping checks the server is reachable.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

var dialect = sqlstore.Dialect{
	ForUpdate:     " FOR UPDATE",
	Time:          func(t time.Time) any { return t },
	IsUnique:      func(err error) bool { return pgCode(err) == "23505" },
	IsForeignKey:  func(err error) bool { return pgCode(err) == "23503" },
	IsUnavailable: unavailable,
	NextStatusIndex: func(ctx context.Context, q sqlstore.Querier) (int64, error) {
		var n int64
		err := q.QueryRow(ctx, `SELECT nextval('certificate_status_index')`).Scan(&n)
		return n, err
	},
	LockAudit: func(ctx context.Context, q sqlstore.Querier) error {
		_, err := q.Exec(ctx, `LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE`)
		return err
	},
	WritableCTE: true,
	// One batched statement of each kind at a time: a batch holds every
	// call that arrived while the previous one ran. Measured with
	// bench/oidc/run.sh (refresh grant, 16 connections): PostgreSQL used
	// 0.19-0.23 ms of CPU per refresh with 1, 0.29-0.31 ms with 2. Only a
	// rotation waiting on a row lock of a short transaction (a reuse
	// revocation) can hold the others up.
	Batches: 1,
}

// unavailable reports a fault of the server or the connection rather than
// of the statement: connection exceptions (class 08), an administrator or
// crash shutdown and "cannot connect now" (57P01-57P03), too many
// connections (53300), pgx's connection errors, timeouts, a closed pool.
func unavailable(err error) bool {
	if c := pgCode(err); strings.HasPrefix(c, "08") || c == "57P01" || c == "57P02" || c == "57P03" || c == "53300" {
		return true
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) || errors.Is(err, pgx.ErrTxClosed) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// rebind turns '?' placeholders into $1, $2, ... (the shared queries contain
// no '?' inside literals). Results are cached: the set of queries is small.
var rebound sync.Map

func rebind(q string) string {
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	out := b.String()
	rebound.Store(q, out)
	return out
}

type pgxQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// querier adapts a pool or a transaction.
type querier struct{ q pgxQuerier }

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, rebind(query), args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rs, err := q.q.Query(ctx, rebind(query), args...)
	if err != nil {
		return nil, err
	}
	return rs, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return row{q.q.QueryRow(ctx, rebind(query), args...)}
}

type row struct{ r pgx.Row }

func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sqlstore.ErrNoRows
	}
	return err
}

type backend struct {
	pool *pgxpool.Pool
}

func (b *backend) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return querier{b.pool}.Exec(ctx, q, args...)
}

func (b *backend) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	return querier{b.pool}.Query(ctx, q, args...)
}

func (b *backend) QueryRow(ctx context.Context, q string, args ...any) sqlstore.Row {
	return querier{b.pool}.QueryRow(ctx, q, args...)
}

func (b *backend) WriteTx(ctx context.Context, fn func(sqlstore.Querier) error) error {
	return pgx.BeginTxFunc(ctx, b.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		return fn(querier{tx})
	})
}

var _ sqlstore.TxBackend = (*backend)(nil)

// Begin opens a READ COMMITTED transaction held until Commit or Rollback.
func (b *backend) Begin(ctx context.Context) (sqlstore.Tx, error) {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return pgTx{querier: querier{tx}, tx: tx}, nil
}

type pgTx struct {
	querier
	tx pgx.Tx
}

func (t pgTx) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t pgTx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }
