package identity

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// Template ids start with the creation time in milliseconds (12 hex
// digits) followed by 80 random bits, so store.TemplateStore.ListAll, which
// pages in id order, lists recent templates last and Watch can ask for
// "everything created since" without a store method of its own.

// newTemplateID returns a time-ordered template id.
func (s *Service) newTemplateID() (string, error) {
	var b [10]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("identity: random id: %w", err)
	}
	return timePrefix(s.cfg.Now()) + hex.EncodeToString(b[:]), nil
}

// timePrefix is the id prefix of templates created at t.
func timePrefix(t time.Time) string {
	return fmt.Sprintf("%012x", uint64(max(t.UnixMilli(), 0)))
}

// PollOnce adds to the index every template of the current model created
// in the last lookback (by its id's time prefix), for templates written by
// other nodes sharing the store. It returns how many it added (re-adding a
// known template is harmless).
//
// Deletions are not seen: on other nodes a replaced register photo or
// live template stays in the index until restart. That is tolerable
// because only the duplicate check reads the index and it ignores the
// citizen's own templates, which is all a replacement leaves behind; 1:1
// verification always reads the store.
func (s *Service) PollOnce(ctx context.Context, lookback time.Duration) (int, error) {
	// ListAll returns ids strictly after `after`; "-" sorts before every hex digit.
	after := timePrefix(s.cfg.Now().Add(-lookback)) + "-"
	const page = 1000
	n := 0
	for {
		ts, err := s.cfg.Store.Templates().ListAll(ctx, after, page)
		if err != nil {
			return n, fmt.Errorf("identity: poll templates: %w", err)
		}
		for _, t := range ts {
			if t.ModelVersion != s.model {
				continue
			}
			if err := s.cfg.Index.Add(indexKey(t.CitizenID, t.ID), t.Vector); err != nil {
				return n, fmt.Errorf("identity: poll templates: %s: %w", t.ID, err)
			}
			n++
		}
		if len(ts) < page {
			return n, nil
		}
		after = ts[len(ts)-1].ID
	}
}

// Watch calls PollOnce every interval until ctx ends. lookback must exceed
// the clock skew between nodes plus the longest write transaction; a few
// minutes is plenty. Errors are logged and the next poll retries.
func (s *Service) Watch(ctx context.Context, interval, lookback time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := s.PollOnce(ctx, lookback); err != nil && ctx.Err() == nil {
			s.cfg.Logger.WarnContext(ctx, "face index poll failed", "err", err)
		}
	}
}
