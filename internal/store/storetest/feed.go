package storetest

import (
	"testing"
	"time"

	"github.com/trustid/trustid/internal/store"
)

// testTemplateFeed checks store.TemplateFeed: every insert and delete of a
// template, including those of ReplaceRegister, is logged in order with
// its citizen; reads page by sequence and return asked-for gaps; a failed
// replacement logs nothing; pruning drops old entries only.
func testTemplateFeed(t *testing.T, s store.Store) {
	feed, ok := s.(store.TemplateFeed)
	if !ok {
		t.Skip("the store has no template feed")
	}
	ctx := ctxT(t)
	head, err := feed.TemplateFeedHead(ctx)
	must(t, err)
	if head != 0 {
		t.Fatalf("head of an empty feed = %d", head)
	}
	ts := s.Templates()
	newCitizen(t, s, "c1", 1)
	newCitizen(t, s, "c2", 2)
	must(t, ts.Create(ctx, &store.Template{ID: "t1", CitizenID: "c1", Kind: store.TemplateRegister, Vector: vec(1)}))
	must(t, ts.Create(ctx, &store.Template{ID: "t2", CitizenID: "c2", Kind: store.TemplateLive, Vector: vec(2)}))
	must(t, ts.Create(ctx, &store.Template{ID: "t9", CitizenID: "c2", Kind: store.TemplateLive, Vector: vec(9)}))
	must(t, ts.Delete(ctx, "t2"))
	must(t, ts.ReplaceRegister(ctx, &store.Template{ID: "t3", CitizenID: "c1", Kind: store.TemplateRegister, Vector: vec(3)}))
	// A replacement that fails (duplicate id) rolls its log entries back.
	wantErr(t, ts.ReplaceRegister(ctx, &store.Template{ID: "t9", CitizenID: "c1", Kind: store.TemplateRegister, Vector: vec(4)}), store.ErrAlreadyExists)

	type entry struct {
		tid, cid string
		deleted  bool
	}
	want := []entry{{"t1", "c1", false}, {"t2", "c2", false}, {"t9", "c2", false}, {"t2", "c2", true}, {"t1", "c1", true}, {"t3", "c1", false}}
	all, err := feed.TemplateChanges(ctx, 0, nil, 100)
	must(t, err)
	if len(all) != len(want) {
		t.Fatalf("%d changes, want %d: %+v", len(all), len(want), all)
	}
	for i, c := range all {
		if (entry{c.TemplateID, c.CitizenID, c.Deleted}) != want[i] {
			t.Errorf("change %d = %+v, want %+v", i, c, want[i])
		}
		if i > 0 && c.Seq <= all[i-1].Seq {
			t.Errorf("change %d: seq %d after %d", i, c.Seq, all[i-1].Seq)
		}
		if c.At.IsZero() || c.At.Location() != time.UTC {
			t.Errorf("change %d: at %v, want a UTC time", i, c.At)
		}
	}
	head, err = feed.TemplateFeedHead(ctx)
	must(t, err)
	if head != all[len(all)-1].Seq {
		t.Errorf("head = %d, want %d", head, all[len(all)-1].Seq)
	}

	// Paging by sequence, and gaps: seqs below after that are asked again.
	page, err := feed.TemplateChanges(ctx, all[1].Seq, nil, 2)
	must(t, err)
	if len(page) != 2 || page[0].Seq != all[2].Seq || page[1].Seq != all[3].Seq {
		t.Errorf("page after %d = %+v", all[1].Seq, page)
	}
	page, err = feed.TemplateChanges(ctx, all[4].Seq, []int64{all[0].Seq, all[2].Seq, head + 1000}, 10)
	must(t, err)
	if len(page) != 3 || page[0].Seq != all[0].Seq || page[1].Seq != all[2].Seq || page[2].Seq != all[5].Seq {
		t.Errorf("read with gaps = %+v", page)
	}

	n, err := feed.PruneTemplateChanges(ctx, time.Now().Add(-time.Hour))
	must(t, err)
	if n != 0 {
		t.Errorf("pruned %d recent changes", n)
	}
	n, err = feed.PruneTemplateChanges(ctx, time.Now().Add(time.Hour))
	must(t, err)
	if n != int64(len(all)) {
		t.Errorf("pruned %d, want %d", n, len(all))
	}
	// The sequence keeps growing after a prune: a reader never sees a
	// number twice.
	must(t, ts.Create(ctx, &store.Template{ID: "t5", CitizenID: "c1", Kind: store.TemplateLive, Vector: vec(5)}))
	rest, err := feed.TemplateChanges(ctx, 0, nil, 10)
	must(t, err)
	if len(rest) != 1 || rest[0].Seq <= head || rest[0].TemplateID != "t5" {
		t.Errorf("after prune = %+v (head was %d)", rest, head)
	}
}
