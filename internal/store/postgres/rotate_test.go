package postgres_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/postgres"
	"github.com/trustid/trustid/internal/store/postgres/pgtest"
)

// statements counts the statements sent to the server (BEGIN and COMMIT
// included): each is one round trip.
type statements struct{ n atomic.Int64 }

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	s.n.Add(1)
	return ctx
}

func (s *statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestRotateIsOneStatement checks a rotation (what a refresh or a code
// exchange writes) is one round trip, and the rare losing path two.
func TestRotateIsOneStatement(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	var st statements
	cfg.ConnConfig.Tracer = &st
	db, err := postgres.OpenConfig(ctx, cfg, testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rec := func(kind store.OAuthKind, sig string) *store.OAuthRecord {
		return &store.OAuthRecord{Kind: kind, Signature: sig, RequestID: "fam", Active: true, Data: []byte("{}")}
	}
	if err := db.OAuth().Create(ctx, rec(store.OAuthRefresh, "rt1")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want error
		n    int64
	}{
		{"rotation", nil, 1},
		{"already rotated", store.ErrConflict, 2},
	}
	for _, tc := range tests {
		st.n.Store(0)
		err := db.OAuth().Rotate(ctx, store.OAuthRefresh, "rt1", store.OAuthAccess, "fam",
			rec(store.OAuthAccess, "at-"+tc.name), rec(store.OAuthRefresh, "rt-"+tc.name))
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
		if n := st.n.Load(); n != tc.n {
			t.Errorf("%s: %d statements, want %d", tc.name, n, tc.n)
		}
	}
}
