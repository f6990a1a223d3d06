package identity

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/trustid/trustid/internal/store"
)

// Template ids start with the creation time in milliseconds (12 hex
// digits) followed by 80 random bits, so store.TemplateStore.ListAll, which
// pages in id order, lists recent templates last.

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

// IndexLen is the number of templates in the 1:N index (a metric: nodes
// sharing a store converge to the same number).
func (s *Service) IndexLen() int { return s.cfg.Index.Len() }

// FeedConfig configures a Follower.
type FeedConfig struct {
	// Feed is the store's template change feed (both SQL backends).
	Feed store.TemplateFeed
	// Notifier wakes the follower when a change commits (PostgreSQL
	// LISTEN/NOTIFY); nil: it reads the feed every Interval only.
	Notifier store.TemplateNotifier
	// Interval is the catch-up read made even without a wake-up, so a
	// missed notification (a dropped listening connection) costs at most
	// this much delay. Default 5 s; 500 ms without a Notifier.
	Interval time.Duration
	// GapTTL is how long a missing sequence number is asked for again: a
	// transaction that took its number and had not committed when a later
	// one was read. Longer than any template-writing transaction; default
	// 2 min (a rolled-back transaction leaves a gap that never fills).
	GapTTL time.Duration
	// Replay is how many changes before the head the follower applies
	// again after loading the index, to catch transactions that were
	// committing while it loaded. Default 1024.
	Replay int64
	// Retention: changes older than this are pruned (hourly, by every
	// node: the statement is idempotent). Default 7 days; negative: never.
	Retention time.Duration
}

// Follower keeps the Service's 1:N index in step with the templates every
// node writes, by applying the store's change feed: an insert adds the
// template (read back from the store, so a change replayed after a later
// delete finds nothing to add), a delete removes it. Applying a change
// twice is harmless, which is what lets it start from a replay window and
// ask gaps again.
type Follower struct {
	s   *Service
	cfg FeedConfig

	mu   sync.Mutex // one CatchUp at a time
	last int64
	gaps map[int64]time.Time // missing seq -> when first missed
	// started: the first catch-up (the replay window) is done; gaps
	// before it are the replay window's business, not the follower's.
	started bool
}

// maxGapRun bounds the gaps one jump of the sequence opens.
const maxGapRun = 4096

// Follow loads the index from the store (LoadIndex) and returns a Follower
// positioned just before the feed's head as read before loading, so that
// nothing committed during the load is missed. Call Run to follow.
func (s *Service) Follow(ctx context.Context, cfg FeedConfig) (*Follower, error) {
	if cfg.Feed == nil {
		return nil, errors.New("identity: follow: Feed is required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
		if cfg.Notifier == nil {
			cfg.Interval = 500 * time.Millisecond
		}
	}
	if cfg.GapTTL <= 0 {
		cfg.GapTTL = 2 * time.Minute
	}
	if cfg.Replay <= 0 {
		cfg.Replay = 1024
	}
	if cfg.Retention == 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	head, err := cfg.Feed.TemplateFeedHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity: follow: %w", err)
	}
	if _, _, err := s.LoadIndex(ctx); err != nil {
		return nil, err
	}
	f := &Follower{s: s, cfg: cfg, last: max(0, head-cfg.Replay), gaps: map[int64]time.Time{}}
	if _, err := f.CatchUp(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// feedPage is how many changes one read returns.
const feedPage = 1000

// CatchUp applies every change after the last one applied, and those of
// open gaps, and returns how many it applied. On an error it stops at the
// change that failed; the next call starts there.
func (f *Follower) CatchUp(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	applied := 0
	for {
		now := f.s.cfg.Now()
		gaps := make([]int64, 0, len(f.gaps))
		for g, since := range f.gaps {
			if now.Sub(since) > f.cfg.GapTTL {
				delete(f.gaps, g)
				continue
			}
			gaps = append(gaps, g)
		}
		slices.Sort(gaps)
		cs, err := f.cfg.Feed.TemplateChanges(ctx, f.last, gaps, feedPage)
		if err != nil {
			return applied, fmt.Errorf("identity: template feed: %w", err)
		}
		for _, c := range cs {
			if err := f.apply(ctx, c); err != nil {
				return applied, err
			}
			applied++
			if _, ok := f.gaps[c.Seq]; ok {
				delete(f.gaps, c.Seq)
				continue
			}
			if f.started {
				// Bounded: a jump of millions (a feed pruned while the
				// node stood still) must not become millions of entries.
				for g := max(f.last+1, c.Seq-maxGapRun); g < c.Seq; g++ {
					f.gaps[g] = now
				}
			}
			f.last = max(f.last, c.Seq)
		}
		if len(cs) < feedPage {
			f.started = true
			return applied, nil
		}
	}
}

// apply makes one change in the index.
func (f *Follower) apply(ctx context.Context, c store.TemplateChange) error {
	key := indexKey(c.CitizenID, c.TemplateID)
	if c.Deleted {
		f.s.cfg.Index.Remove(key)
		return nil
	}
	t, err := f.s.cfg.Store.Templates().Get(ctx, c.TemplateID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // deleted since; its delete is a later change
	case err != nil:
		return fmt.Errorf("identity: template feed: %s: %w", c.TemplateID, err)
	case t.ModelVersion != f.s.model:
		return nil
	}
	if err := f.s.cfg.Index.Add(key, t.Vector); err != nil {
		return fmt.Errorf("identity: template feed: %s: %w", c.TemplateID, err)
	}
	return nil
}

// Run follows the feed until ctx ends: it catches up on every
// notification and every Interval, listens again (after a second) when the
// listening connection fails, and prunes old changes hourly. Errors are
// logged; the next read retries.
func (f *Follower) Run(ctx context.Context) {
	tick := time.NewTicker(f.cfg.Interval)
	defer tick.Stop()
	var wake <-chan struct{}
	var relisten <-chan time.Time
	listen := func() {
		if f.cfg.Notifier == nil {
			return
		}
		ch, err := f.cfg.Notifier.ListenTemplateChanges(ctx)
		if err != nil {
			if ctx.Err() == nil {
				f.s.cfg.Logger.WarnContext(ctx, "face index: listening for template changes failed", "err", err)
			}
			relisten = time.After(time.Second)
			return
		}
		wake, relisten = ch, nil
	}
	listen()
	nextPrune := f.s.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-wake:
			if !ok {
				// The connection failed: changes may have gone unannounced.
				wake, relisten = nil, time.After(time.Second)
			}
		case <-relisten:
			listen()
		case <-tick.C:
		}
		if _, err := f.CatchUp(ctx); err != nil && ctx.Err() == nil {
			f.s.cfg.Logger.WarnContext(ctx, "face index: catching up with the template feed failed", "err", err)
		}
		if now := f.s.cfg.Now(); f.cfg.Retention > 0 && !now.Before(nextPrune) {
			nextPrune = now.Add(time.Hour)
			if _, err := f.cfg.Feed.PruneTemplateChanges(ctx, now.Add(-f.cfg.Retention)); err != nil && ctx.Err() == nil {
				f.s.cfg.Logger.WarnContext(ctx, "face index: pruning the template feed failed", "err", err)
			}
		}
	}
}
