package redis_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/ephemeraltest"
	"github.com/trustid/trustid/internal/ephemeral/redis/redistest"
)

// TestClusterConformance runs the ephemeral conformance suite against a
// real Redis Cluster of three masters (redis-server --cluster-enabled yes,
// created by redistest.StartCluster), each subtest under its own prefix.
func TestClusterConformance(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	ephemeraltest.Run(t, func(t *testing.T) ephemeral.Store { return c.Open(t) })
}

// TestClusterMultiKey checks every operation that touches several keys at
// once on the cluster: SetUnless's script with guard and guarded keys
// sharing a hash tag (the token families' "{request id}" and the replay
// caches' memory tags), spread over every master; its plain writes to any
// slot in the same pipeline; and that keys in different slots are refused
// as a caller's mistake (ErrInvalid), not answered as a fault.
func TestClusterMultiKey(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	s := c.Open(t)
	ctx := context.Background()
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs})
	defer cc.Close()

	// Families whose tags land on every master.
	masters := map[string]bool{}
	for i := range 64 {
		fam := fmt.Sprintf("req%d", i)
		end, cur := "oidc:atend:{"+fam+"}", "oidc:atcur:{"+fam+"}"
		plain := []ephemeral.Write{
			{Key: fmt.Sprintf("oidc:at:sig%d-a", i), Value: []byte("a"), TTL: time.Minute},
			{Key: fmt.Sprintf("oidc:at:sig%d-b", i), Value: []byte("b"), TTL: time.Minute},
		}
		ok, err := s.SetUnless(ctx, end, []ephemeral.Write{{Key: cur, Value: []byte("sig"), TTL: time.Minute}}, plain...)
		if err != nil || !ok {
			t.Fatalf("family %s: SetUnless = %v, %v", fam, ok, err)
		}
		for _, k := range []string{cur, plain[0].Key, plain[1].Key} {
			if _, err := s.Get(ctx, k); err != nil {
				t.Fatalf("family %s: %s not stored: %v", fam, k, err)
			}
		}
		// The family ends: the guarded write is refused atomically.
		if err := s.Set(ctx, end, []byte("1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		ok, err = s.SetUnless(ctx, end, []ephemeral.Write{{Key: cur, Value: []byte("other"), TTL: time.Minute}})
		if err != nil || ok {
			t.Fatalf("family %s after its end: SetUnless = %v, %v", fam, ok, err)
		}
		if v, _ := s.Get(ctx, cur); string(v) != "sig" {
			t.Fatalf("family %s: current token %q after a refused SetUnless", fam, v)
		}
		addr, err := masterOf(ctx, cc, "trustidtest:x:kv:"+end)
		if err != nil {
			t.Fatal(err)
		}
		masters[addr] = true
	}
	if len(masters) != len(c.Addrs) {
		t.Errorf("the families' slots reached %d of %d masters", len(masters), len(c.Addrs))
	}

	// Memory markers: the 256 tags spread over every master, and a marker
	// shares its slot with the replay keys it vouches for.
	if err := ephemeral.StartMemories(ctx, s, "certs:replay-memory:", time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, b := range []byte{0x00, 0x5a, 0xff} {
		tag := ephemeral.MemoryTag(b)
		marker, _ := cc.ClusterKeySlot(ctx, "p:kv:certs:replay-memory:"+tag).Result()
		seen, _ := cc.ClusterKeySlot(ctx, "p:kv:certs:replay:"+tag+":0123abcd").Result()
		if marker != seen {
			t.Errorf("tag %s: marker in slot %d, replay key in %d", tag, marker, seen)
		}
	}

	// Guard and guarded keys in different slots: the caller broke the
	// contract, which is no fault of the store.
	_, err := s.SetUnless(ctx, "untagged-guard", []ephemeral.Write{{Key: "untagged-key-elsewhere", Value: []byte("v"), TTL: time.Minute}})
	if !errors.Is(err, ephemeral.ErrInvalid) || errors.Is(err, ephemeral.ErrUnavailable) {
		t.Errorf("cross-slot SetUnless: %v, want ErrInvalid", err)
	}
}

// masterOf is the address of the master serving key's slot.
func masterOf(ctx context.Context, cc *goredis.ClusterClient, key string) (string, error) {
	slot, err := cc.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", err
	}
	shards, err := cc.ClusterShards(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start <= slot && slot <= r.End {
				for _, n := range sh.Nodes {
					if n.Role == "master" {
						return fmt.Sprintf("%s:%d", n.IP, n.Port), nil
					}
				}
			}
		}
	}
	return "", fmt.Errorf("no master for slot %d", slot)
}
