// Package sqlite is the embedded store.Store backend (modernc.org/sqlite,
// pure Go): the zero-config default for a single node or a demo.
//
// The database runs in WAL mode. Writes go through one writer connection
// whose transactions start with BEGIN IMMEDIATE (so an updater's read and
// write happen under the database write lock, and other processes wait up to
// busy_timeout); reads use a small pool of read-only connections that WAL
// lets run alongside the writer. Schema migrations are embedded and applied
// with goose on Open and by Migrate.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a write waits for another process's write lock.
const busyTimeout = 10 * time.Second

// DB is a SQLite-backed store.Store.
type DB struct {
	*sqlstore.Store
	w, r *sql.DB

	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store      = (*DB)(nil)
	_ store.Transactor = (*DB)(nil)
)

// Option configures the store (for example sqlstore.WithClock).
type Option = sqlstore.Option

// WithClock sets the clock used for CreatedAt/UpdatedAt defaults.
func WithClock(now func() time.Time) Option { return sqlstore.WithClock(now) }

// Open opens (creating if needed) the database file at path and applies
// pending migrations. ring seals the sensitive columns.
func Open(ctx context.Context, path string, ring *seal.Ring, opts ...Option) (*DB, error) {
	if path == "" || strings.ContainsRune(path, '?') || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: need a file path without '?', got %q", path)
	}
	// Create the file owner-only: it holds personal data (sealed or not).
	// SQLite gives the -wal and -shm files the same mode.
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", busyTimeout.Milliseconds())
	w, err := sql.Open("sqlite", path+"?"+common+"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// Set WAL mode on the writer before any reader connects.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s, err := sqlstore.New(backend{w: w, r: r}, dialect, ring, opts...)
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	db := &DB{Store: s, w: w, r: r}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Migrate applies the embedded migrations forward; it is idempotent.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.w, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// Backup writes a consistent copy of the database to path (which must not
// exist) while the store stays online (VACUUM INTO; writes wait for it,
// reads do not). The copy is mode 0600
// and holds the same sealed values: it needs the same key ring to be read.
func (db *DB) Backup(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("sqlite: backup: %s exists", path)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	f.Close()
	// VACUUM INTO refuses a non-empty file but accepts the empty one we
	// created, which keeps its owner-only mode.
	if _, err := db.w.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	return nil
}

// Ping checks both connection pools.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes the database, first letting SQLite refresh its query
// planner statistics (PRAGMA optimize, cheap when nothing changed). Closing
// twice is not an error.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, optErr := db.w.ExecContext(ctx, `PRAGMA optimize`)
		db.closeErr = errors.Join(optErr, db.r.Close(), db.w.Close())
	})
	return db.closeErr
}

var dialect = sqlstore.Dialect{
	ForUpdate: "", // BEGIN IMMEDIATE already holds the write lock
	Time:      func(t time.Time) any { return t.UnixMicro() },
	IsUnique: func(err error) bool {
		c := code(err)
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
	IsForeignKey: func(err error) bool { return code(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY },
	NextStatusIndex: func(ctx context.Context, q sqlstore.Querier) (int64, error) {
		var n int64
		err := q.QueryRow(ctx, `SELECT COALESCE(MAX(status_index), 0) + 1 FROM certificates`).Scan(&n)
		return n, err
	},
	// Appends run in a write transaction, which SQLite already serialises
	// across connections and processes.
	LockAudit: nil,
}

func code(err error) int {
	var e *msqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// backend adapts database/sql: writes on the single writer connection,
// reads on the reader pool.
type backend struct{ w, r *sql.DB }

func (b backend) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return exec(ctx, b.w, q, args)
}

func (b backend) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	return query(ctx, b.r, q, args)
}

func (b backend) QueryRow(ctx context.Context, q string, args ...any) sqlstore.Row {
	return row{b.r.QueryRowContext(ctx, q, args...)}
}

func (b backend) WriteTx(ctx context.Context, fn func(sqlstore.Querier) error) error {
	tx, err := b.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return err
	}
	if err := fn(txq{tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

type sqlQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func exec(ctx context.Context, db sqlQuerier, q string, args []any) (int64, error) {
	res, err := db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func query(ctx context.Context, db sqlQuerier, q string, args []any) (sqlstore.Rows, error) {
	rs, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return rows{rs}, nil
}

type txq struct{ tx *sql.Tx }

func (t txq) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return exec(ctx, t.tx, q, args)
}

func (t txq) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	return query(ctx, t.tx, q, args)
}

func (t txq) QueryRow(ctx context.Context, q string, args ...any) sqlstore.Row {
	return row{t.tx.QueryRowContext(ctx, q, args...)}
}

type row struct{ r *sql.Row }

func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return sqlstore.ErrNoRows
	}
	return err
}

type rows struct{ *sql.Rows }

func (r rows) Close() { _ = r.Rows.Close() }

var _ sqlstore.TxBackend = backend{}

// Begin opens a write transaction (BEGIN IMMEDIATE) on the writer
// connection, held until Commit or Rollback.
func (b backend) Begin(ctx context.Context) (sqlstore.Tx, error) {
	tx, err := b.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return sqlTx{txq{tx}}, nil
}

type sqlTx struct{ txq }

func (t sqlTx) Commit(context.Context) error   { return t.tx.Commit() }
func (t sqlTx) Rollback(context.Context) error { return t.tx.Rollback() }
