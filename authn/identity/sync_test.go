package identity_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/authn/index"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/postgres"
	"github.com/trustid/trustid/internal/store/postgres/pgtest"
)

// topHit is the index entry nearest to a face: equal on two nodes when
// both indexes hold the same templates.
func topHit(t *testing.T, idx identity.Index, face string) string {
	t.Helper()
	hits, err := idx.Search(faceVector(face), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 {
		return ""
	}
	return hits[0].ID
}

func feedOf(t *testing.T, st store.Store) store.TemplateFeed {
	t.Helper()
	feed, ok := st.(store.TemplateFeed)
	if !ok {
		t.Fatalf("%T has no template feed", st)
	}
	return feed
}

// TestFollowerPicksUpOtherNodes: node B's index follows node A's imports,
// photo replacements (a delete and an insert) and enrolments through the
// feed, on both backends; a restarted node starts in step.
func TestFollowerPicksUpOtherNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newFixtureOn(t, backend)
		ctx := t.Context()
		nodeB, idxB := f.newService(t)
		fb, err := nodeB.Follow(ctx, identity.FeedConfig{Feed: feedOf(t, f.store)})
		if err != nil {
			t.Fatal(err)
		}
		pics := photos(map[string]string{"a.jpg": "face:alice", "b.jpg": "face:bob", "a2.jpg": "face:alice:3"})
		if _, err := f.svc.ImportCSV(ctx, "operator:test", csvOf(testID(t, 1)+",Alice,a.jpg", testID(t, 2)+",Bob,b.jpg"), pics); err != nil {
			t.Fatal(err)
		}
		if idxB.Len() != 0 {
			t.Fatalf("node B sees %d templates before catching up", idxB.Len())
		}
		if n, err := fb.CatchUp(ctx); err != nil || n != 2 || idxB.Len() != 2 {
			t.Fatalf("CatchUp = %d, %v; index %d; want 2", n, err, idxB.Len())
		}
		// With the templates on node B, its duplicate check refuses Alice's
		// face under another ID number.
		rep, err := nodeB.ImportCSV(ctx, "operator:test", csvOf(testID(t, 3)+",Alias,a.jpg"), pics)
		if err != nil || reasons(rep)[2] != identity.ReasonDuplicateIdentity {
			t.Errorf("import on node B: %+v %v", rep, err)
		}
		// A new register photo on node A: the old template's delete and the
		// new one's insert reach node B.
		if _, err := f.svc.ImportCSV(ctx, "operator:test", csvOf(testID(t, 1)+",Alice,a2.jpg"), pics); err != nil {
			t.Fatal(err)
		}
		if n, err := fb.CatchUp(ctx); err != nil || n != 2 {
			t.Fatalf("CatchUp after a replacement = %d, %v; want 2", n, err)
		}
		if idxB.Len() != 2 || topHit(t, idxB, "alice") != topHit(t, f.index, "alice") {
			t.Errorf("node B after the replacement: %d entries, alice -> %q; node A: %q", idxB.Len(), topHit(t, idxB, "alice"), topHit(t, f.index, "alice"))
		}
		// A live template enrolled on node B reaches node A.
		_, p, err := nodeB.Verify(ctx, testID(t, 1), []byte("face:alice:5"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nodeB.Enroll(ctx, "client:test", p); err != nil {
			t.Fatal(err)
		}
		fa, err := f.svc.Follow(ctx, identity.FeedConfig{Feed: feedOf(t, f.store)})
		if err != nil {
			t.Fatal(err)
		}
		if f.index.Len() != 3 {
			t.Errorf("node A after following: %d entries, want 3", f.index.Len())
		}
		// Nothing new: a second catch-up applies nothing.
		if n, err := fa.CatchUp(ctx); err != nil || n != 0 {
			t.Errorf("idle CatchUp = %d, %v", n, err)
		}
		// A restarted node loads the same index.
		nodeC, idxC := f.newService(t)
		if _, err := nodeC.Follow(ctx, identity.FeedConfig{Feed: feedOf(t, f.store)}); err != nil {
			t.Fatal(err)
		}
		if _, err := fb.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		if idxC.Len() != 3 || idxB.Len() != 3 {
			t.Errorf("restarted node %d entries, node B %d; want 3", idxC.Len(), idxB.Len())
		}
	})
}

// TestFollowerAsksGapsAgain: a transaction that took its sequence number
// before a later one committed is applied when it commits (PostgreSQL:
// concurrent writers), and Run picks up changes through NOTIFY and, with
// the listening connection gone, through the periodic catch-up.
func TestFollowerAsksGapsAgain(t *testing.T) {
	f := newFixtureOn(t, "postgres")
	ctx := t.Context()
	newCit := func(n int) string {
		c := &store.Citizen{ID: fmt.Sprintf("c%d", n), IDNumber: testID(t, n), Name: "N"}
		if err := f.store.Citizens().Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	tmpl := func(cid, id, face string) *store.Template {
		return &store.Template{ID: id, CitizenID: cid, Kind: store.TemplateLive, ModelVersion: testModel, Vector: faceVector(face)}
	}
	c1, c2 := newCit(1), newCit(2)
	nodeB, idxB := f.newService(t)
	fb, err := nodeB.Follow(ctx, identity.FeedConfig{Feed: feedOf(t, f.store)})
	if err != nil {
		t.Fatal(err)
	}
	tr := f.store.(store.Transactor)
	txctx, err := tr.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Templates().Create(txctx, tmpl(c1, "slow", "alice")); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Templates().Create(ctx, tmpl(c2, "quick", "bob")); err != nil {
		t.Fatal(err)
	}
	if n, err := fb.CatchUp(ctx); err != nil || n != 1 || idxB.Len() != 1 {
		t.Fatalf("CatchUp with a transaction open = %d, %v, index %d; want 1", n, err, idxB.Len())
	}
	if err := tr.Commit(txctx); err != nil {
		t.Fatal(err)
	}
	if n, err := fb.CatchUp(ctx); err != nil || n != 1 || idxB.Len() != 2 {
		t.Fatalf("CatchUp after the late commit = %d, %v, index %d; want the gap applied", n, err, idxB.Len())
	}

	// Run: a change is applied through NOTIFY well before the 1 min
	// catch-up interval.
	db := f.store.(*postgres.DB)
	fr, err := nodeB.Follow(ctx, identity.FeedConfig{Feed: db, Notifier: db, Interval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	stop := runFollower(t, fr)
	time.Sleep(200 * time.Millisecond) // LISTEN is in place
	if err := f.store.Templates().Create(ctx, tmpl(c2, "notified", "carol")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the notified change", func() bool { return idxB.Len() == 3 })
	// A missed notification: a follower without a notifier still catches
	// up on its interval.
	stop()
	fp, err := nodeB.Follow(ctx, identity.FeedConfig{Feed: db, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runFollower(t, fp)
	if err := f.store.Templates().Delete(ctx, "quick"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the polled delete", func() bool { return idxB.Len() == 2 })
}

// runFollower runs f.Run until stop is called or the test ends.
func runFollower(t *testing.T, f *identity.Follower) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s not applied within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// addTimes is an index that records when each entry was first added.
type addTimes struct {
	*index.Index
	mu sync.Mutex
	at map[string]time.Time
}

func (a *addTimes) Add(id string, v []float32) error {
	a.mu.Lock()
	if _, ok := a.at[id]; !ok {
		a.at[id] = time.Now()
	}
	a.mu.Unlock()
	return a.Index.Add(id, v)
}

func (a *addTimes) added(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[id]
	return t, ok
}

// TestTemplateFeedLag measures the change feed's lag: node A (its own
// connection pool) writes a template, node B (another pool, following with
// LISTEN/NOTIFY and a 5 s catch-up) has it in its index. The lag is from
// the start of A's insert to B's Add: commit, notification, B's read of the
// feed and of the template. It logs the distribution (README, "Index change
// feed"): `go test -run TestTemplateFeedLag -v ./authn/identity`, and
// TRUSTID_FEED_LAG_N changes (default 200), spaced 20 ms apart.
func TestTemplateFeedLag(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	open := func() *postgres.DB {
		db, err := postgres.Open(ctx, dsn, testRing(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	n := 200
	if v := envInt("TRUSTID_FEED_LAG_N"); v > 0 {
		n = v
	}
	if err := a.Citizens().Create(ctx, &store.Citizen{ID: "c1", IDNumber: testID(t, 1), Name: "N"}); err != nil {
		t.Fatal(err)
	}
	idx, err := index.New(index.Config{Dim: dim})
	if err != nil {
		t.Fatal(err)
	}
	rec := &addTimes{Index: idx, at: map[string]time.Time{}}
	svc, err := identity.New(identity.Config{Store: b, Embedder: &fakeEmbedder{}, Index: rec, Audit: nopAudit{}, Thresholds: testThresholds})
	if err != nil {
		t.Fatal(err)
	}
	fb, err := svc.Follow(ctx, identity.FeedConfig{Feed: b, Notifier: b})
	if err != nil {
		t.Fatal(err)
	}
	runFollower(t, fb)
	time.Sleep(200 * time.Millisecond)

	starts := make([]time.Time, n)
	for i := range n {
		starts[i] = time.Now()
		if err := a.Templates().Create(ctx, &store.Template{ID: fmt.Sprintf("t%05d", i), CitizenID: "c1", Kind: store.TemplateLive,
			ModelVersion: testModel, Vector: faceVector(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	lags := make([]time.Duration, n)
	deadline := time.Now().Add(30 * time.Second)
	for i := range n {
		key := "c1/" + fmt.Sprintf("t%05d", i)
		for {
			at, ok := rec.added(key)
			if ok {
				lags[i] = at.Sub(starts[i])
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("change %d never reached node B", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	slices.Sort(lags)
	q := func(p float64) time.Duration { return lags[min(n-1, int(p*float64(n)))].Round(10 * time.Microsecond) }
	t.Logf("template feed lag over %d changes (insert start on node A -> in node B's index): p50 %s, p90 %s, p99 %s, max %s",
		n, q(0.5), q(0.9), q(0.99), lags[n-1].Round(10*time.Microsecond))
}

func envInt(name string) int {
	v, _ := strconv.Atoi(os.Getenv(name))
	return v
}
