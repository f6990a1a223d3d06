package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/store"
)

// Bench runs benchmarks of the store's hot paths: an OAuth record written
// and read back (every token issue and introspection), a citizen looked up
// by ID number (every login), and an audit append (every verification).
// newStore returns a fresh, empty store.
func Bench(b *testing.B, newStore func(b *testing.B) store.Store) {
	// A refresh's write, from parallel clients (one token family each): as
	// one Rotate, and as the transaction of separate statements it replaced.
	b.Run("OAuthRotateParallel", func(b *testing.B) { benchRotate(b, newStore(b), false) })
	b.Run("OAuthRotateTxParallel", func(b *testing.B) {
		s := newStore(b)
		if _, ok := s.(store.Transactor); !ok {
			b.Skip("store is not a store.Transactor")
		}
		benchRotate(b, s, true)
	})
	b.Run("OAuthCreateGet", func(b *testing.B) {
		s := newStore(b)
		ctx := b.Context()
		data := make([]byte, 1024) // a typical serialised fosite request
		exp := time.Now().Add(time.Hour)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			sig := fmt.Sprintf("sig-%d", i)
			if err := s.OAuth().Create(ctx, &store.OAuthRecord{Kind: store.OAuthAccess, Signature: sig, RequestID: sig,
				ClientID: "app", Subject: "sub", Active: true, Data: data, ExpiresAt: exp}); err != nil {
				b.Fatal(err)
			}
			if _, err := s.OAuth().Get(ctx, store.OAuthAccess, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CitizenGetByIDNumber", func(b *testing.B) {
		s := newStore(b)
		ctx := b.Context()
		const n = 1000
		for i := range n {
			if err := s.Citizens().Create(ctx, &store.Citizen{ID: fmt.Sprintf("c%05d", i), IDNumber: idNumber(i), Name: "N"}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := s.Citizens().GetByIDNumber(ctx, idNumber(i%n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CitizenGetByIDNumberParallel", func(b *testing.B) {
		s := newStore(b)
		ctx := b.Context()
		const n = 1000
		for i := range n {
			if err := s.Citizens().Create(ctx, &store.Citizen{ID: fmt.Sprintf("c%05d", i), IDNumber: idNumber(i), Name: "N"}); err != nil {
				b.Fatal(err)
			}
		}
		var ctr atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Citizens().GetByIDNumber(ctx, idNumber(int(ctr.Add(1))%n)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("AuditAppend", func(b *testing.B) {
		s := newStore(b)
		ctx := b.Context()
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Audit().Append(ctx, &store.AuditEvent{Actor: "system", Action: "cert.verify", Subject: "c1", Outcome: "ok"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchRotate(b *testing.B, s store.Store, asTx bool) {
	ctx := b.Context()
	os := s.OAuth()
	data := make([]byte, 1024)
	exp := time.Now().Add(time.Hour)
	rec := func(kind store.OAuthKind, sig, fam string) *store.OAuthRecord {
		return &store.OAuthRecord{Kind: kind, Signature: sig, RequestID: fam, ClientID: "app", Subject: "sub", Active: true, Data: data, ExpiresAt: exp}
	}
	rotate := func(old, fam string, n int) error {
		at, rt := rec(store.OAuthAccess, fmt.Sprintf("%s-at%d", fam, n), fam), rec(store.OAuthRefresh, fmt.Sprintf("%s-rt%d", fam, n), fam)
		if !asTx {
			return os.Rotate(ctx, store.OAuthRefresh, old, store.OAuthAccess, fam, at, rt)
		}
		tr := s.(store.Transactor)
		tctx, err := tr.BeginTx(ctx)
		if err != nil {
			return err
		}
		defer tr.Rollback(tctx)
		if err := os.Consume(tctx, store.OAuthRefresh, old); err != nil {
			return err
		}
		if _, err := os.DeleteByRequestID(tctx, store.OAuthAccess, fam); err != nil {
			return err
		}
		if err := os.Create(tctx, at); err != nil {
			return err
		}
		if err := os.Create(tctx, rt); err != nil {
			return err
		}
		return tr.Commit(tctx)
	}
	var fams atomic.Int64
	b.SetParallelism(8) // 16 clients on 2 cores, as bench/oidc/run.sh
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		fam := fmt.Sprintf("fam%d", fams.Add(1))
		old := fam + "-rt0"
		if err := os.Create(ctx, rec(store.OAuthRefresh, old, fam)); err != nil {
			b.Error(err)
			return
		}
		for n := 1; pb.Next(); n++ {
			if err := rotate(old, fam, n); err != nil {
				b.Error(err)
				return
			}
			old = fmt.Sprintf("%s-rt%d", fam, n)
		}
	})
}
