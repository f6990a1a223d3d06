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
			if err := s.Audit().Append(ctx, &store.AuditEvent{Actor: "system", Action: "cert.verify", Subject: "c1", Outcome: "ok"}, chain); err != nil {
				b.Fatal(err)
			}
		}
	})
}
