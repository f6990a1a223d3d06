package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// openCounting opens a store on a fresh schema whose statements st counts.
func openCounting(t *testing.T) (*postgres.DB, *statements) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	st := &statements{}
	cfg.ConnConfig.Tracer = st
	db, err := postgres.OpenConfig(context.Background(), cfg, testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, st
}

// TestRotateIsOneStatement checks a rotation (what a refresh or a code
// exchange writes) is one round trip, and the rare losing path two.
func TestRotateIsOneStatement(t *testing.T) {
	ctx := context.Background()
	db, st := openCounting(t)
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

// TestBatchedRotations sends many concurrent refreshes, each token twice
// at once (a replay racing the client), and reads, through the batched
// statements: each token is consumed by exactly one of its two rotations,
// only the winner's new records exist, the loser gets ErrConflict, reads
// return each caller its own record or ErrNotFound, and the statements
// were shared.
func TestBatchedRotations(t *testing.T) {
	ctx := context.Background()
	db, st := openCounting(t)
	const tokens = 40
	rec := func(kind store.OAuthKind, sig, fam string) *store.OAuthRecord {
		return &store.OAuthRecord{Kind: kind, Signature: sig, RequestID: fam, Active: true, Data: []byte(`{"sig":"` + sig + `"}`)}
	}
	for i := range tokens {
		fam := fmt.Sprintf("fam%d", i)
		for _, r := range []*store.OAuthRecord{rec(store.OAuthRefresh, fmt.Sprintf("rt%d", i), fam), rec(store.OAuthAccess, fmt.Sprintf("at%d", i), fam)} {
			if err := db.OAuth().Create(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	st.n.Store(0)
	type result struct {
		token, attempt int
		err            error
	}
	results := make(chan result, 2*tokens)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range tokens {
		for a := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				fam := fmt.Sprintf("fam%d", i)
				err := db.OAuth().Rotate(ctx, store.OAuthRefresh, fmt.Sprintf("rt%d", i), store.OAuthAccess, fam,
					rec(store.OAuthAccess, fmt.Sprintf("at%d-%d", i, a), fam), rec(store.OAuthRefresh, fmt.Sprintf("rt%d-%d", i, a), fam))
				results <- result{i, a, err}
			}()
		}
		wg.Add(1)
		go func() { // a read of a token and of one that does not exist
			defer wg.Done()
			<-start
			sig := fmt.Sprintf("rt%d", i)
			// Before its rotation the record with its data; after it the
			// consumed record, which keeps its request ID but no data.
			if v, err := db.OAuth().Get(ctx, store.OAuthRefresh, sig); err != nil || v.Signature != sig || v.RequestID != fmt.Sprintf("fam%d", i) ||
				(v.Active && string(v.Data) != `{"sig":"`+sig+`"}`) || (!v.Active && v.Data != nil) {
				t.Errorf("get %s: %+v %v", sig, v, err)
			}
			if _, err := db.OAuth().Get(ctx, store.OAuthRefresh, sig+"-none"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("get missing: %v, want ErrNotFound", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	ops := int64(4 * tokens)
	winners := map[int]int{}
	for r := range results {
		switch {
		case r.err == nil:
			if _, dup := winners[r.token]; dup {
				t.Errorf("token %d rotated twice", r.token)
			}
			winners[r.token] = r.attempt
		case !errors.Is(r.err, store.ErrConflict):
			t.Errorf("token %d attempt %d: %v, want ErrConflict", r.token, r.attempt, r.err)
		}
	}
	t.Logf("%d statements for %d concurrent calls", st.n.Load(), ops)
	if n := st.n.Load(); n > ops/2 {
		t.Errorf("%d statements for %d concurrent calls: not batched", n, ops)
	}
	for i := range tokens {
		w, ok := winners[i]
		if !ok {
			t.Errorf("token %d: no rotation won", i)
			continue
		}
		for a := range 2 {
			for _, kind := range []store.OAuthKind{store.OAuthAccess, store.OAuthRefresh} {
				sig := fmt.Sprintf("%s%d-%d", map[store.OAuthKind]string{store.OAuthAccess: "at", store.OAuthRefresh: "rt"}[kind], i, a)
				_, err := db.OAuth().Get(ctx, kind, sig)
				if a == w && err != nil {
					t.Errorf("winner's %s: %v", sig, err)
				}
				if a != w && !errors.Is(err, store.ErrNotFound) {
					t.Errorf("loser's %s: %v, want ErrNotFound", sig, err)
				}
			}
		}
		if _, err := db.OAuth().Get(ctx, store.OAuthAccess, fmt.Sprintf("at%d", i)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token %d: the family's old access token survived: %v", i, err)
		}
		if v, err := db.OAuth().Get(ctx, store.OAuthRefresh, fmt.Sprintf("rt%d", i)); err != nil || v.Active {
			t.Errorf("token %d: old refresh token %+v %v, want inactive", i, v, err)
		}
	}
}
