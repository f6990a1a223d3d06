package ephemeral

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// epochTTL is how long a memory marker lives. When it expires a new one is
// born, which refuses the artefacts of the few seconds around that moment
// once in a while: a small price for never trusting a forgotten cache.
const epochTTL = 90 * 24 * time.Hour

// MemorySince reports since when the store has remembered the keys that
// share marker's hash slot: the birth time of marker, which is created
// (holding now) when it is missing. A replay cache uses it to fail closed
// across a loss of the store (a Redis restart or flush): an artefact whose
// acceptance window began before the birth may have been used while the
// store was forgetting, so it must be refused rather than recorded as new.
//
// Call it after recording the artefact (SetNX), with marker in the same
// hash slot as the recorded key (share a hash tag), so that a loss between
// the two calls also takes the marker with it. The marker is read first and
// written only when missing, so the usual cost is one Get.
func MemorySince(ctx context.Context, s Store, marker string, now time.Time) (time.Time, error) {
	for range 2 {
		v, err := s.Get(ctx, marker)
		if err == nil {
			t, perr := time.Parse(time.RFC3339Nano, string(v))
			if perr != nil {
				// An unreadable marker is treated as a loss: refuse what came before now.
				return now, s.Set(ctx, marker, []byte(now.UTC().Format(time.RFC3339Nano)), epochTTL)
			}
			return t, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return time.Time{}, fmt.Errorf("ephemeral: memory marker: %w", err)
		}
		if _, err := s.SetNX(ctx, marker, []byte(now.UTC().Format(time.RFC3339Nano)), epochTTL); err != nil {
			return time.Time{}, fmt.Errorf("ephemeral: memory marker: %w", err)
		}
	}
	// Lost again between the write and the read: nothing before now is known.
	return now, nil
}

// MemoryTag is the hash tag ("{00}".."{ff}") that groups a replay cache's
// keys with the memory marker that vouches for them: b is the first byte
// of a digest of the key, so the keys spread over 256 Redis Cluster slots.
func MemoryTag(b byte) string { return fmt.Sprintf("{%02x}", b) }

// StartMemories makes sure the 256 memory markers prefix+MemoryTag(i)
// exist, born at now when missing. A replay cache calls it when it starts,
// so that only a loss of the store while it runs (not a first start on an
// empty one) refuses what was made before.
func StartMemories(ctx context.Context, s Store, prefix string, now time.Time) error {
	for i := range 256 {
		if _, err := MemorySince(ctx, s, prefix+MemoryTag(byte(i)), now); err != nil {
			return err
		}
	}
	return nil
}
