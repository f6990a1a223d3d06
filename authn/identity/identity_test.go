package identity_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/internal/store"
)

func csvOf(lines ...string) *strings.Reader {
	return strings.NewReader("id_number,name,photo\n" + strings.Join(lines, "\n") + "\n")
}

func reasons(rep *identity.ImportReport) map[int]string {
	m := map[int]string{}
	for _, f := range rep.Failures {
		m[f.Line] = f.Reason
	}
	return m
}

func TestImport(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	pics := photos(map[string]string{
		"a.jpg": "face:alice", "b.jpg": "face:bob", "c.jpg": "face:carol",
		"noface.jpg": "noface", "two.jpg": "several", "blur.jpg": "blurred", "junk.jpg": "garbage",
		"alice2.jpg": "face:alice:7", "big.jpg": strings.Repeat("x", 65),
	})
	// Line numbers: the header is line 1.
	rep, err := f.svc.ImportCSV(ctx, "operator:test", csvOf(
		testID(t, 1)+",Alice Liddell,a.jpg",     // 2 imported
		testID(t, 2)+",Bob,b.jpg",               // 3 imported
		"110101199003074478,Bad Check,c.jpg",    // 4 bad ID
		testID(t, 3)+",,c.jpg",                  // 5 empty name
		testID(t, 4)+",Name1,c.jpg",             // 6 digit in name
		testID(t, 5)+",Carol,../c.jpg",          // 7 path traversal
		testID(t, 6)+",Carol,missing.jpg",       // 8 no such photo
		testID(t, 7)+",Nobody,noface.jpg",       // 9 no face
		testID(t, 8)+",Twins,two.jpg",           // 10 several faces
		testID(t, 9)+",Blur,blur.jpg",           // 11 poor quality
		testID(t, 10)+",Junk,junk.jpg",          // 12 not an image
		testID(t, 2)+",Bob Again,c.jpg",         // 13 duplicate ID number in the file
		testID(t, 11)+",Alias Alice,alice2.jpg", // 14 Alice's face under another ID
		testID(t, 12)+",Big,big.jpg",            // 15 photo over 64 bytes
		"too,few",                               // 16 malformed: two fields
		`ab"c,Name,c.jpg`,                       // 17 malformed: bare quote
		testID(t, 13)+",Carol,c.jpg",            // 18 imported (after the malformed lines)
	), pics)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{
		4: identity.ReasonInvalidIDNumber, 5: identity.ReasonInvalidName, 6: identity.ReasonInvalidName,
		7: identity.ReasonInvalidPhotoName, 8: identity.ReasonPhotoMissing, 9: identity.ReasonNoFace,
		10: identity.ReasonSeveralFaces, 11: identity.ReasonPoorQuality, 12: identity.ReasonBadImage,
		13: identity.ReasonDuplicateRow, 14: identity.ReasonDuplicateIdentity, 15: identity.ReasonPhotoTooLarge,
		16: identity.ReasonMalformedRow, 17: identity.ReasonMalformedRow,
	}
	got := reasons(rep)
	for line, reason := range want {
		if got[line] != reason {
			t.Errorf("line %d: reason %q, want %q", line, got[line], reason)
		}
	}
	if len(got) != len(want) {
		t.Errorf("failures %v, want lines %v", rep.Failures, want)
	}
	if rep.Imported != 3 || rep.Updated != 0 || rep.Unchanged != 0 || rep.Failed != len(want) {
		t.Errorf("report %+v", rep)
	}
	if rep.Rows != 17 {
		t.Errorf("rows = %d, want 17", rep.Rows)
	}
	if f.index.Len() != 3 {
		t.Errorf("index holds %d templates, want 3", f.index.Len())
	}
	for _, fl := range rep.Failures {
		for n := 1; n <= 13; n++ {
			if strings.Contains(fl.Detail, testID(t, n)) {
				t.Errorf("failure detail %q contains an ID number", fl.Detail)
			}
		}
	}
	// The stored template is encrypted at rest: the raw database file does
	// not contain the ID number.
	db, err := os.ReadFile(filepath.Join(f.dir, "trustid.db"))
	if err != nil {
		t.Fatal(err)
	}
	walb, _ := os.ReadFile(filepath.Join(f.dir, "trustid.db-wal"))
	if strings.Contains(string(db)+string(walb), testID(t, 1)) {
		t.Error("ID number stored in plaintext")
	}
	c, err := f.store.Citizens().GetByIDNumber(ctx, testID(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := f.store.Templates().ListByCitizen(ctx, c.ID)
	if err != nil || len(ts) != 1 || ts[0].Kind != store.TemplateRegister || ts[0].ModelVersion != testModel || len(ts[0].PhotoHash) != 32 {
		t.Fatalf("templates %+v, %v", ts, err)
	}
	// Audit events name the citizen by opaque id only.
	evs, err := f.store.Audit().List(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var creates int
	for _, e := range evs {
		if e.Action == "register.create" {
			creates++
		}
		if strings.Contains(fmt.Sprint(e), testID(t, 1)) {
			t.Errorf("audit event %+v contains an ID number", e)
		}
	}
	if creates != 3 {
		t.Errorf("%d register.create events, want 3", creates)
	}
}

func TestImportIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newFixtureOn(t, backend)
		ctx := t.Context()
		pics := photos(map[string]string{"a.jpg": "face:alice", "b.jpg": "face:bob", "b2.jpg": "face:bob:3", "x.jpg": "face:xavier"})
		lines := []string{testID(t, 1) + ",Alice,a.jpg", testID(t, 2) + ",Bob,b.jpg"}

		steps := []struct {
			name                                string
			lines                               []string
			imported, updated, unchanged, embed int
		}{
			{"first import", lines, 2, 0, 0, 2},
			{"same file again", lines, 0, 0, 2, 0},
			{"changed name only", []string{testID(t, 1) + ",Alice Liddell,a.jpg", lines[1]}, 0, 1, 1, 0},
			{"changed photo", []string{testID(t, 1) + ",Alice Liddell,a.jpg", testID(t, 2) + ",Bob,b2.jpg"}, 0, 1, 1, 1},
			{"new citizen added", []string{testID(t, 1) + ",Alice Liddell,a.jpg", testID(t, 2) + ",Bob,b2.jpg", testID(t, 3) + ",Xavier,x.jpg"}, 1, 0, 2, 1},
		}
		for _, s := range steps {
			before := f.emb.calls.Load()
			rep, err := f.svc.ImportCSV(ctx, "operator:test", csvOf(s.lines...), pics)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if rep.Imported != s.imported || rep.Updated != s.updated || rep.Unchanged != s.unchanged || rep.Failed != 0 {
				t.Errorf("%s: report %+v, want imported %d updated %d unchanged %d", s.name, rep, s.imported, s.updated, s.unchanged)
			}
			if n := f.emb.calls.Load() - before; n != int64(s.embed) {
				t.Errorf("%s: %d embeddings, want %d", s.name, n, s.embed)
			}
		}
		// One register template per citizen, the index in step.
		all, err := f.store.Templates().ListAll(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 3 || f.index.Len() != 3 {
			t.Errorf("%d stored templates, %d indexed; want 3 and 3", len(all), f.index.Len())
		}
		c, err := f.store.Citizens().GetByIDNumber(ctx, testID(t, 1))
		if err != nil || c.Name != "Alice Liddell" {
			t.Errorf("citizen %+v, %v", c, err)
		}
		// A restarted node loads the same index from the store.
		svc2, idx := f.newService(t)
		loaded, skipped, err := svc2.LoadIndex(ctx)
		if err != nil || loaded != 3 || skipped != 0 || idx.Len() != 3 {
			t.Errorf("LoadIndex = %d, %d, %v; index %d", loaded, skipped, err, idx.Len())
		}
	})
}

func TestImportModelChangeReembeds(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	pics := photos(map[string]string{"a.jpg": "face:alice"})
	if _, err := f.svc.ImportCSV(ctx, "operator:test", csvOf(testID(t, 1)+",Alice,a.jpg"), pics); err != nil {
		t.Fatal(err)
	}
	th := *testThresholds
	th.ModelVersion = "fake-model/v2"
	f.emb.model = "fake-model/v2"
	svc2, idx := f.newService(t, func(c *identityConfig) { c.Thresholds = &th })
	loaded, skipped, err := svc2.LoadIndex(ctx)
	if err != nil || loaded != 0 || skipped != 1 {
		t.Fatalf("LoadIndex = %d, %d, %v; want 0 loaded, 1 skipped", loaded, skipped, err)
	}
	rep, err := svc2.ImportCSV(ctx, "operator:test", csvOf(testID(t, 1)+",Alice,a.jpg"), pics)
	if err != nil || rep.Updated != 1 {
		t.Fatalf("re-import under a new model: %+v, %v", rep, err)
	}
	if idx.Len() != 1 {
		t.Errorf("index %d, want 1", idx.Len())
	}
}

type identityConfig = identity.Config

func TestNewRejectsBadConfig(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		mod  func(*identity.Config)
		want string
	}{
		{"no store", func(c *identity.Config) { c.Store = nil }, "Store is required"},
		{"no thresholds", func(c *identity.Config) { c.Thresholds = nil }, "Thresholds is required"},
		{"uncalibrated point", func(c *identity.Config) { c.OperatingPoint = "1e-6" }, "no calibrated threshold"},
		{"other model", func(c *identity.Config) {
			th := *testThresholds
			th.ModelVersion = "other"
			c.Thresholds = &th
		}, "calibrated for model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, _ := newIndex()
			cfg := identity.Config{Store: f.store, Embedder: f.emb, Index: idx, Audit: nopAudit{}, Thresholds: testThresholds}
			tt.mod(&cfg)
			_, err := identity.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newFixtureOn(t, backend)
		ctx := t.Context()
		pics := photos(map[string]string{"a.jpg": "face:alice", "b.jpg": "face:bob"})
		if _, err := f.svc.ImportCSV(ctx, "operator:test", csvOf(testID(t, 1)+",Alice,a.jpg", testID(t, 2)+",Bob,b.jpg"), pics); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name    string
			id      string
			probe   string
			match   bool
			wantErr error
		}{
			{"another photo of alice", testID(t, 1), "face:alice:42", true, nil},
			{"bob claims alice", testID(t, 1), "face:bob:1", false, nil},
			{"stranger", testID(t, 2), "face:mallory", false, nil},
			{"surrounding spaces trimmed", " " + testID(t, 2) + " ", "face:bob:5", true, nil},
			{"unknown id", testID(t, 99), "face:alice", false, identity.ErrUnknownIDNumber},
			{"malformed id", "12345", "face:alice", false, identity.ErrInvalidIDNumber},
			{"no face", testID(t, 1), "noface", false, identity.ErrNoFace},
			{"several faces", testID(t, 1), "several", false, identity.ErrSeveralFaces},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d, _, err := f.svc.Verify(ctx, tt.id, []byte(tt.probe))
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
					t.Fatalf("Verify err = %v, want %v", err, tt.wantErr)
				}
				if err != nil {
					return
				}
				if d.Match != tt.match {
					t.Errorf("match = %v (score %.3f, threshold %.3f), want %v", d.Match, d.Score, d.Threshold, tt.match)
				}
				if d.OperatingPoint != identity.DefaultOperatingPoint || d.Threshold != 0.34 {
					t.Errorf("operating point %s %.2f", d.OperatingPoint, d.Threshold)
				}
			})
		}
		// The Go API for liveness and login.
		cid, err := f.svc.ResolveIDNumber(ctx, testID(t, 1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ResolveIDNumber(ctx, testID(t, 98)); !errors.Is(err, identity.ErrUnknownIDNumber) {
			t.Errorf("ResolveIDNumber(unknown) = %v", err)
		}
		ok, score, err := f.svc.MatchReference(ctx, cid, noisy(faceVector("alice"), 9))
		if err != nil || !ok || score < 0.8 {
			t.Errorf("MatchReference(alice) = %v %.3f %v", ok, score, err)
		}
		ok, _, err = f.svc.MatchReference(ctx, cid, faceVector("bob"))
		if err != nil || ok {
			t.Errorf("MatchReference(bob as alice) = %v %v", ok, err)
		}
		if _, _, err := f.svc.MatchReference(ctx, cid, make([]float32, 10)); !errors.Is(err, identity.ErrModelMismatch) {
			t.Errorf("MatchReference(short vector) = %v", err)
		}
		if _, _, err := f.svc.MatchReference(ctx, "nosuchcitizen", faceVector("bob")); !errors.Is(err, identity.ErrUnknownIDNumber) {
			t.Errorf("MatchReference(unknown citizen) = %v", err)
		}
		// A disabled citizen cannot verify.
		if _, err := f.store.Citizens().Update(ctx, cid, func(c *store.Citizen) error { c.Disabled = true; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.svc.Verify(ctx, testID(t, 1), []byte("face:alice:1")); !errors.Is(err, identity.ErrDisabled) {
			t.Errorf("Verify(disabled) = %v", err)
		}
	})
}

func TestEnroll(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newFixtureOn(t, backend)
		ctx := t.Context()
		pics := photos(map[string]string{"a.jpg": "face:alice", "b.jpg": "face:bob"})
		if _, err := f.svc.ImportCSV(ctx, "operator:test", csvOf(testID(t, 1)+",Alice,a.jpg", testID(t, 2)+",Bob,b.jpg"), pics); err != nil {
			t.Fatal(err)
		}
		alice, _ := f.svc.ResolveIDNumber(ctx, testID(t, 1))

		// Enroll more live templates than the bound (3): the oldest go.
		var ids []string
		for i := range 5 {
			f.clock.Advance(1e9)
			d, p, err := f.svc.Verify(ctx, testID(t, 1), []byte(fmt.Sprintf("face:alice:%d", 100+i)))
			if err != nil || !d.Match {
				t.Fatalf("verify %d: %+v %v", i, d, err)
			}
			id, err := f.svc.Enroll(ctx, "client:test", p)
			if err != nil {
				t.Fatalf("enroll %d: %v", i, err)
			}
			ids = append(ids, id)
		}
		ts, err := f.store.Templates().ListByCitizen(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		var live []string
		for _, tp := range ts {
			if tp.Kind == store.TemplateLive {
				live = append(live, tp.ID)
			}
		}
		slices.Sort(live)
		want := slices.Clone(ids[2:])
		slices.Sort(want)
		if !slices.Equal(live, want) {
			t.Errorf("live templates %v, want the newest three %v", live, want)
		}
		if f.index.Len() != 2+3 {
			t.Errorf("index %d, want 5", f.index.Len())
		}
		d, _, err := f.svc.Verify(ctx, testID(t, 1), []byte("face:alice:1"))
		if err != nil || d.LiveTemplates != 3 || d.Score < d.RegisterScore {
			t.Errorf("verify after enrollment: %+v %v", d, err)
		}

		// A face between Alice and Bob matches Alice (verification passes) but
		// also Bob above the 1e-5 threshold: refused as a duplicate identity.
		d, p, err := f.svc.Verify(ctx, testID(t, 1), []byte("mix:alice:bob"))
		if err != nil || !d.Match {
			t.Fatalf("verify mix: %+v %v", d, err)
		}
		if _, err := f.svc.Enroll(ctx, "client:test", p); !errors.Is(err, identity.ErrDuplicateIdentity) {
			t.Errorf("Enroll(mix) = %v, want ErrDuplicateIdentity", err)
		}
		// A probe that does not match the citizen cannot be enrolled.
		_, p, err = f.svc.Verify(ctx, testID(t, 1), []byte("face:mallory"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Enroll(ctx, "client:test", p); !errors.Is(err, identity.ErrNoMatch) {
			t.Errorf("Enroll(stranger) = %v, want ErrNoMatch", err)
		}
		if f.index.Len() != 5 {
			t.Errorf("index %d after refused enrollments, want 5", f.index.Len())
		}
	})
}

func TestImportCancelled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var lines []string
	pics := map[string]string{}
	for i := range 20 {
		lines = append(lines, fmt.Sprintf("%s,Person,p%d.jpg", testID(t, i), i))
		pics[fmt.Sprintf("p%d.jpg", i)] = fmt.Sprintf("face:p%d", i)
	}
	rep, err := f.svc.ImportCSV(ctx, "operator:test", csvOf(lines...), photos(pics))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if rep == nil || rep.Rows != 20 || rep.Imported+rep.Updated+rep.Unchanged+rep.Failed != 20 {
		t.Fatalf("report does not account for every row: %+v", rep)
	}
}
