// Package storetest is the conformance suite every store.Store
// implementation runs: storetest.Run(t, newStore), where newStore returns a
// fresh, empty, migrated store for each subtest (and registers its cleanup).
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/store"
)

// Raw is implemented by backends that let the suite see columns as stored,
// to check that sealed columns hold no plaintext and are bound to their row.
// Queries use '?' placeholders.
type Raw interface {
	RawBytes(ctx context.Context, query string, args ...any) ([][]byte, error)
	RawExec(ctx context.Context, query string, args ...any) error
}

// Run runs the whole suite. Subtests run in parallel, each on its own store.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Lifecycle", testLifecycle},
		{"Citizens", testCitizens},
		{"CitizenPaging", testCitizenPaging},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"UpdaterError", testUpdaterError},
		{"Templates", testTemplates},
		{"TemplateFeed", testTemplateFeed},
		{"Passkeys", testPasskeys},
		{"Clients", testClients},
		{"ClientIDTokenAlg", testClientIDTokenAlg},
		{"OAuth", testOAuth},
		{"OAuthByRequestAndExpiry", testOAuthByRequestAndExpiry},
		{"Transaction", testTransaction},
		{"ConcurrentRotation", testConcurrentRotation},
		{"Rotate", testRotate},
		{"RotateInTransaction", testRotateInTransaction},
		{"ConcurrentRotate", testConcurrentRotate},
		{"Consents", testConsents},
		{"Certificates", testCertificates},
		{"ConcurrentIssue", testConcurrentIssue},
		{"Audit", testAudit},
		{"ConcurrentAudit", testConcurrentAudit},
		{"Keys", testKeys},
		{"TimesUTC", testTimesUTC},
		{"SealedAtRest", testSealedAtRest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Each subtest has its own store, so they may run together
			// (most of a PostgreSQL test's time is waiting on DDL commits).
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// Fixed inputs: a non-UTC zone with nanoseconds, to check normalisation.
var (
	cst   = time.FixedZone("CST", 8*3600)
	t0    = time.Date(2026, 3, 4, 13, 6, 7, 123456789, cst)
	t0UTC = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
)

func ctxT(t *testing.T) context.Context { return t.Context() }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || (!got.IsZero() && got.Location() != time.UTC) {
		t.Errorf("%s = %v (%v), want %v UTC", what, got, got.Location(), want)
	}
}

func idNumber(i int) string { return fmt.Sprintf("11010119900307%04d", i) }

func newCitizen(t *testing.T, s store.Store, id string, i int) *store.Citizen {
	t.Helper()
	c := &store.Citizen{ID: id, IDNumber: idNumber(i), Name: "Name " + id, CreatedAt: t0, UpdatedAt: t0}
	must(t, s.Citizens().Create(ctxT(t), c))
	return c
}

func newClient(t *testing.T, s store.Store, id string) *store.Client {
	t.Helper()
	c := &store.Client{ID: id, Name: id, RedirectURIs: []string{"https://" + id + ".example/cb"}, CreatedAt: t0}
	must(t, s.Clients().Create(ctxT(t), c))
	return c
}

func testLifecycle(t *testing.T, s store.Store) {
	must(t, s.Ping(ctxT(t)))
	// Migrate is idempotent on an already-migrated store.
	must(t, s.Migrate(ctxT(t)))
	must(t, s.Migrate(ctxT(t)))
}

func testCitizens(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	cs := s.Citizens()
	c := newCitizen(t, s, "c1", 1)
	sameTime(t, "normalised CreatedAt", c.CreatedAt, t0UTC)

	got, err := cs.Get(ctx, "c1")
	must(t, err)
	if got.ID != "c1" || got.IDNumber != idNumber(1) || got.Name != "Name c1" || got.Disabled {
		t.Fatalf("Get = %+v", got)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, t0UTC)
	got, err = cs.GetByIDNumber(ctx, idNumber(1))
	must(t, err)
	if got.ID != "c1" {
		t.Fatalf("GetByIDNumber = %+v", got)
	}

	// The lookup is on the canonical form of the number (check character x/X).
	xc := &store.Citizen{ID: "cx", IDNumber: "11010119900307123x"}
	must(t, cs.Create(ctx, xc))
	got, err = cs.GetByIDNumber(ctx, " 11010119900307123X")
	must(t, err)
	if got.ID != "cx" || got.IDNumber != "11010119900307123x" {
		t.Fatalf("GetByIDNumber(X) = %+v", got)
	}

	tests := []struct {
		name string
		err  error
		want error
	}{
		{"duplicate id number other spelling", cs.Create(ctx, &store.Citizen{ID: "cy", IDNumber: "11010119900307123X"}), store.ErrAlreadyExists},
		{"duplicate id", cs.Create(ctx, &store.Citizen{ID: "c1", IDNumber: idNumber(2)}), store.ErrAlreadyExists},
		{"duplicate id number", cs.Create(ctx, &store.Citizen{ID: "c2", IDNumber: idNumber(1)}), store.ErrAlreadyExists},
		{"get missing", second(cs.Get(ctx, "nope")), store.ErrNotFound},
		{"get by missing id number", second(cs.GetByIDNumber(ctx, idNumber(99))), store.ErrNotFound},
		{"update missing", second(cs.Update(ctx, "nope", func(*store.Citizen) error { return nil })), store.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.err, tc.want) })
	}

	// Update: new ID number moves the lookup; key and CreatedAt are kept.
	up, err := cs.Update(ctx, "c1", func(c *store.Citizen) error {
		c.ID = "hijack"
		c.IDNumber = idNumber(3)
		c.Disabled = true
		c.CreatedAt = time.Unix(0, 0)
		return nil
	})
	must(t, err)
	if up.ID != "c1" || !up.Disabled || up.IDNumber != idNumber(3) {
		t.Fatalf("Update = %+v", up)
	}
	sameTime(t, "CreatedAt after update", up.CreatedAt, t0UTC)
	if !up.UpdatedAt.After(t0UTC) {
		t.Errorf("UpdatedAt not advanced: %v", up.UpdatedAt)
	}
	got, err = cs.GetByIDNumber(ctx, idNumber(3))
	must(t, err)
	if got.ID != "c1" || !got.Disabled || !got.UpdatedAt.Equal(up.UpdatedAt) {
		t.Fatalf("after update = %+v", got)
	}
	_, err = cs.GetByIDNumber(ctx, idNumber(1))
	wantErr(t, err, store.ErrNotFound)
	if _, err := cs.Get(ctx, "hijack"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("updater changed the key: %v", err)
	}
	// Moving to a taken ID number is a unique violation.
	newCitizen(t, s, "c2", 2)
	_, err = cs.Update(ctx, "c1", func(c *store.Citizen) error { c.IDNumber = idNumber(2); return nil })
	wantErr(t, err, store.ErrAlreadyExists)

	testNetworkNumber(t, s)
}

// testNetworkNumber: the 网号 is unset at first, assigned once by Update,
// found by GetByNetworkNumber, unique, and never changed or cleared.
func testNetworkNumber(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	cs := s.Citizens()
	got, err := cs.Get(ctx, "c2")
	must(t, err)
	if got.NetworkNumber != "" {
		t.Fatalf("new citizen has network number %q", got.NetworkNumber)
	}
	wantErr(t, second(cs.GetByNetworkNumber(ctx, "")), store.ErrNotFound)
	up, err := cs.Update(ctx, "c2", func(c *store.Citizen) error { c.NetworkNumber = "1ABCDEFGH"; return nil })
	must(t, err)
	if up.NetworkNumber != "1ABCDEFGH" {
		t.Fatalf("Update network number = %q", up.NetworkNumber)
	}
	got, err = cs.GetByNetworkNumber(ctx, "1ABCDEFGH")
	must(t, err)
	if got.ID != "c2" || got.IDNumber != idNumber(2) {
		t.Fatalf("GetByNetworkNumber = %+v", got)
	}
	wantErr(t, second(cs.GetByNetworkNumber(ctx, "1ZZZZ")), store.ErrNotFound)
	// Other updates keep it.
	up, err = cs.Update(ctx, "c2", func(c *store.Citizen) error { c.Name = "renamed"; return nil })
	must(t, err)
	if up.NetworkNumber != "1ABCDEFGH" {
		t.Fatalf("network number after rename = %q", up.NetworkNumber)
	}
	for _, nn := range []string{"", "1OTHER"} {
		if _, err := cs.Update(ctx, "c2", func(c *store.Citizen) error { c.NetworkNumber = nn; return nil }); err == nil {
			t.Fatalf("network number changed to %q", nn)
		}
	}
	// Unique: another citizen cannot take it.
	_, err = cs.Update(ctx, "c1", func(c *store.Citizen) error { c.NetworkNumber = "1ABCDEFGH"; return nil })
	wantErr(t, err, store.ErrAlreadyExists)
	// Many citizens may have none (NULL, not a duplicate empty string).
	newCitizen(t, s, "c5", 5)
	newCitizen(t, s, "c6", 6)
}

func second[T any](_ T, err error) error { return err }

func testCitizenPaging(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	var ids []string
	for i := range 7 {
		id := fmt.Sprintf("p%02d", 6-i) // created out of order
		newCitizen(t, s, id, i)
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var got []string
	after := ""
	for {
		page, err := s.Citizens().List(ctx, after, 3)
		must(t, err)
		if len(page) > 3 {
			t.Fatalf("page of %d > limit 3", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			got = append(got, c.ID)
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("paged ids = %v, want %v", got, ids)
	}
	all, err := s.Citizens().List(ctx, "", 0)
	must(t, err)
	if len(all) != 7 {
		t.Fatalf("default limit returned %d", len(all))
	}
	if all[0].IDNumber != idNumber(6) {
		t.Fatalf("List did not open id numbers: %+v", all[0])
	}
}

const workers = 20

func testConcurrentUpdates(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	newCitizen(t, s, "c1", 1)
	must(t, s.Passkeys().Create(ctx, &store.Passkey{CredentialID: []byte{1, 2, 3}, CitizenID: "c1"}))
	must(t, s.Clients().Create(ctx, &store.Client{ID: "cl"}))
	must(t, s.OAuth().Create(ctx, &store.OAuthRecord{Kind: store.OAuthRefresh, Signature: "sig", Active: true}))

	var wg sync.WaitGroup
	errs := make(chan error, 4*workers)
	for i := range workers {
		wg.Go(func() {
			_, err := s.Passkeys().Update(ctx, []byte{1, 2, 3}, func(p *store.Passkey) error { p.SignCount++; return nil })
			errs <- err
		})
		wg.Go(func() {
			_, err := s.Citizens().Update(ctx, "c1", func(c *store.Citizen) error { c.Name += "x"; return nil })
			errs <- err
		})
		wg.Go(func() {
			_, err := s.Clients().Update(ctx, "cl", func(c *store.Client) error {
				c.Scopes = append(c.Scopes, fmt.Sprint(i))
				return nil
			})
			errs <- err
		})
		wg.Go(func() {
			_, err := s.OAuth().Update(ctx, store.OAuthRefresh, "sig", func(r *store.OAuthRecord) error {
				r.Data = append(r.Data, byte(i))
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	p, err := s.Passkeys().Get(ctx, []byte{1, 2, 3})
	must(t, err)
	if p.SignCount != workers {
		t.Errorf("sign count = %d, want %d (lost updates)", p.SignCount, workers)
	}
	c, err := s.Citizens().Get(ctx, "c1")
	must(t, err)
	if c.Name != "Name c1"+strings.Repeat("x", workers) {
		t.Errorf("name = %q (lost updates)", c.Name)
	}
	cl, err := s.Clients().Get(ctx, "cl")
	must(t, err)
	if len(cl.Scopes) != workers {
		t.Errorf("client scopes = %d, want %d (lost updates)", len(cl.Scopes), workers)
	}
	r, err := s.OAuth().Get(ctx, store.OAuthRefresh, "sig")
	must(t, err)
	if len(r.Data) != workers {
		t.Errorf("oauth data = %d bytes, want %d (lost updates)", len(r.Data), workers)
	}
}

func testUpdaterError(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	newCitizen(t, s, "c1", 1)
	boom := errors.New("boom")
	_, err := s.Citizens().Update(ctx, "c1", func(c *store.Citizen) error {
		c.Name = "changed"
		return boom
	})
	wantErr(t, err, boom)
	c, err := s.Citizens().Get(ctx, "c1")
	must(t, err)
	if c.Name != "Name c1" {
		t.Fatalf("failed updater's change was stored: %q", c.Name)
	}
}

func vec(seed float32) []float32 {
	v := make([]float32, 512)
	for i := range v {
		v[i] = seed + float32(i)/1024
	}
	return v
}

func testTemplates(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	ts := s.Templates()
	newCitizen(t, s, "c1", 1)
	newCitizen(t, s, "c2", 2)
	hash := sha256.Sum256([]byte("photo"))
	t1 := &store.Template{ID: "t1", CitizenID: "c1", Kind: store.TemplateRegister, ModelVersion: "fr1", Vector: vec(0.5), PhotoHash: hash[:], CreatedAt: t0}
	must(t, ts.Create(ctx, t1))
	must(t, ts.Create(ctx, &store.Template{ID: "t2", CitizenID: "c1", Kind: store.TemplateLive, ModelVersion: "fr1", Vector: vec(0.25), CreatedAt: t0.Add(time.Second)}))
	must(t, ts.Create(ctx, &store.Template{ID: "t3", CitizenID: "c2", Kind: store.TemplateRegister, ModelVersion: "fr1", Vector: vec(-1)}))

	got, err := ts.Get(ctx, "t1")
	must(t, err)
	if got.CitizenID != "c1" || got.Kind != store.TemplateRegister || got.ModelVersion != "fr1" ||
		!slices.Equal(got.Vector, t1.Vector) || !bytes.Equal(got.PhotoHash, hash[:]) {
		t.Fatalf("Get = %+v", got)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, t0UTC)
	wantErr(t, ts.Create(ctx, &store.Template{ID: "t1", CitizenID: "c1", Kind: store.TemplateLive, Vector: vec(0)}), store.ErrAlreadyExists)
	wantErr(t, ts.Create(ctx, &store.Template{ID: "t9", CitizenID: "ghost", Kind: store.TemplateLive, Vector: vec(0)}), store.ErrNotFound)
	wantErr(t, second(ts.Get(ctx, "nope")), store.ErrNotFound)

	list, err := ts.ListByCitizen(ctx, "c1")
	must(t, err)
	if len(list) != 2 || list[0].ID != "t1" || list[1].ID != "t2" {
		t.Fatalf("ListByCitizen = %v", ids(list))
	}
	page, err := ts.ListAll(ctx, "t1", 1)
	must(t, err)
	if len(page) != 1 || page[0].ID != "t2" {
		t.Fatalf("ListAll after t1 = %v", ids(page))
	}
	all, err := ts.ListAll(ctx, "", 0)
	must(t, err)
	if len(all) != 3 {
		t.Fatalf("ListAll = %v", ids(all))
	}
	countCitizens(t, ts)

	// ReplaceRegister swaps only the register template, atomically.
	must(t, ts.ReplaceRegister(ctx, &store.Template{ID: "t4", CitizenID: "c1", Kind: store.TemplateRegister, ModelVersion: "fr2", Vector: vec(2)}))
	list, err = ts.ListByCitizen(ctx, "c1")
	must(t, err)
	gotIDs := ids(list)
	slices.Sort(gotIDs)
	if !slices.Equal(gotIDs, []string{"t2", "t4"}) {
		t.Fatalf("after ReplaceRegister = %v", gotIDs)
	}
	wantErr(t, ts.ReplaceRegister(ctx, &store.Template{ID: "t5", CitizenID: "ghost", Kind: store.TemplateRegister, Vector: vec(2)}), store.ErrNotFound)
	if err := ts.ReplaceRegister(ctx, &store.Template{ID: "t6", CitizenID: "c1", Kind: store.TemplateLive, Vector: vec(2)}); err == nil {
		t.Fatal("ReplaceRegister accepted a live template")
	}
	// A failed replacement (duplicate id) keeps the old register template.
	wantErr(t, ts.ReplaceRegister(ctx, &store.Template{ID: "t3", CitizenID: "c1", Kind: store.TemplateRegister, Vector: vec(3)}), store.ErrAlreadyExists)
	if _, err := ts.Get(ctx, "t4"); err != nil {
		t.Fatalf("failed ReplaceRegister lost the old template: %v", err)
	}

	must(t, ts.Delete(ctx, "t2"))
	wantErr(t, ts.Delete(ctx, "t2"), store.ErrNotFound)
	wantErr(t, second(ts.Get(ctx, "t2")), store.ErrNotFound)
	countCitizens(t, ts)
	rest, err := ts.ListAll(ctx, "", 0)
	must(t, err)
	for _, tp := range rest {
		must(t, ts.Delete(ctx, tp.ID))
	}
	if n, err := ts.CountCitizens(ctx); err != nil || n != 0 {
		t.Fatalf("CountCitizens of no templates = %d, %v", n, err)
	}
}

// countCitizens checks CountCitizens against the distinct citizens of ListAll.
func countCitizens(t *testing.T, ts store.TemplateStore) {
	t.Helper()
	all, err := ts.ListAll(ctxT(t), "", 0)
	must(t, err)
	seen := map[string]bool{}
	for _, tp := range all {
		seen[tp.CitizenID] = true
	}
	n, err := ts.CountCitizens(ctxT(t))
	must(t, err)
	if n != int64(len(seen)) || n == 0 && len(all) > 0 {
		t.Fatalf("CountCitizens = %d, want %d (templates %v)", n, len(seen), ids(all))
	}
}

func ids(ts []*store.Template) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func testPasskeys(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	ps := s.Passkeys()
	newCitizen(t, s, "c1", 1)
	p := &store.Passkey{CredentialID: []byte("cred-1"), CitizenID: "c1", Name: "phone", Credential: []byte(`{"k":1}`), SignCount: 7, CreatedAt: t0}
	must(t, ps.Create(ctx, p))
	must(t, ps.Create(ctx, &store.Passkey{CredentialID: []byte("cred-2"), CitizenID: "c1", CreatedAt: t0.Add(time.Minute)}))
	wantErr(t, ps.Create(ctx, &store.Passkey{CredentialID: []byte("cred-1"), CitizenID: "c1"}), store.ErrAlreadyExists)
	wantErr(t, ps.Create(ctx, &store.Passkey{CredentialID: []byte("cred-3"), CitizenID: "ghost"}), store.ErrNotFound)

	got, err := ps.Get(ctx, []byte("cred-1"))
	must(t, err)
	if got.CitizenID != "c1" || got.Name != "phone" || string(got.Credential) != `{"k":1}` || got.SignCount != 7 || !got.LastUsedAt.IsZero() {
		t.Fatalf("Get = %+v", got)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, t0UTC)
	wantErr(t, second(ps.Get(ctx, []byte("nope"))), store.ErrNotFound)

	up, err := ps.Update(ctx, []byte("cred-1"), func(p *store.Passkey) error {
		p.SignCount = 8
		p.LastUsedAt = t0.Add(time.Hour)
		return nil
	})
	must(t, err)
	if up.SignCount != 8 {
		t.Fatalf("Update = %+v", up)
	}
	got, err = ps.Get(ctx, []byte("cred-1"))
	must(t, err)
	sameTime(t, "LastUsedAt", got.LastUsedAt, t0UTC.Add(time.Hour))
	wantErr(t, second(ps.Update(ctx, []byte("nope"), func(*store.Passkey) error { return nil })), store.ErrNotFound)

	list, err := ps.ListByCitizen(ctx, "c1")
	must(t, err)
	if len(list) != 2 || string(list[0].CredentialID) != "cred-1" {
		t.Fatalf("ListByCitizen = %d", len(list))
	}
	must(t, ps.Delete(ctx, []byte("cred-1")))
	wantErr(t, ps.Delete(ctx, []byte("cred-1")), store.ErrNotFound)
	list, err = ps.ListByCitizen(ctx, "c1")
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("after delete: %d passkeys", len(list))
	}
}

func testClients(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	cs := s.Clients()
	c := &store.Client{
		ID: "app", Name: "App", SecretHash: bytes.Repeat([]byte{1}, 32), SecretHashOld: bytes.Repeat([]byte{2}, 32),
		SecretOldExpiresAt: t0.Add(time.Hour), FirstParty: true,
		RedirectURIs: []string{"https://app.example/cb", "https://app.example/cb2"}, PostLogoutURIs: []string{"https://app.example/"},
		BackchannelLogoutURI: "https://app.example/bcl", GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, Scopes: []string{"openid", "profile"}, Claims: []string{"id_number"},
		SectorIdentifier: "app.example", Role: "hotel", AuthMethod: "client_secret_post", CreatedAt: t0,
	}
	must(t, cs.Create(ctx, c))
	must(t, cs.Create(ctx, &store.Client{ID: "pub", Public: true}))
	wantErr(t, cs.Create(ctx, &store.Client{ID: "app"}), store.ErrAlreadyExists)

	got, err := cs.Get(ctx, "app")
	must(t, err)
	want := *c
	if !clientEqual(got, &want) {
		t.Fatalf("Get =\n%+v\nwant\n%+v", got, &want)
	}
	pub, err := cs.Get(ctx, "pub")
	must(t, err)
	if !pub.Public || pub.SecretHash != nil || pub.RedirectURIs != nil {
		t.Fatalf("public client = %+v", pub)
	}
	wantErr(t, second(cs.Get(ctx, "nope")), store.ErrNotFound)

	up, err := cs.Update(ctx, "app", func(c *store.Client) error {
		c.SecretHashOld, c.SecretHash = c.SecretHash, bytes.Repeat([]byte{3}, 32)
		c.RedirectURIs = nil
		c.Name = "App 2"
		c.AuthMethod, c.JWKS = "private_key_jwt", `{"keys":[]}`
		return nil
	})
	must(t, err)
	got, err = cs.Get(ctx, "app")
	must(t, err)
	if got.Name != "App 2" || got.RedirectURIs != nil || !bytes.Equal(got.SecretHashOld, c.SecretHash) || !clientEqual(got, up) ||
		got.AuthMethod != "private_key_jwt" || got.JWKS != `{"keys":[]}` {
		t.Fatalf("after update = %+v", got)
	}
	wantErr(t, second(cs.Update(ctx, "nope", func(*store.Client) error { return nil })), store.ErrNotFound)

	list, err := cs.List(ctx)
	must(t, err)
	if len(list) != 2 || list[0].ID != "app" || list[1].ID != "pub" {
		t.Fatalf("List = %d", len(list))
	}
	must(t, cs.Delete(ctx, "pub"))
	wantErr(t, cs.Delete(ctx, "pub"), store.ErrNotFound)
}

func clientEqual(a, b *store.Client) bool {
	return a.ID == b.ID && a.Name == b.Name && bytes.Equal(a.SecretHash, b.SecretHash) && bytes.Equal(a.SecretHashOld, b.SecretHashOld) &&
		a.SecretOldExpiresAt.Equal(b.SecretOldExpiresAt) && a.Public == b.Public && a.FirstParty == b.FirstParty &&
		slices.Equal(a.RedirectURIs, b.RedirectURIs) && slices.Equal(a.PostLogoutURIs, b.PostLogoutURIs) &&
		a.BackchannelLogoutURI == b.BackchannelLogoutURI && slices.Equal(a.GrantTypes, b.GrantTypes) &&
		slices.Equal(a.ResponseTypes, b.ResponseTypes) && slices.Equal(a.Scopes, b.Scopes) && slices.Equal(a.Claims, b.Claims) &&
		a.SectorIdentifier == b.SectorIdentifier && a.Role == b.Role && a.CreatedAt.Equal(b.CreatedAt) &&
		a.AuthMethod == b.AuthMethod && a.JWKS == b.JWKS
}

func testOAuth(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	os := s.OAuth()
	r := &store.OAuthRecord{Kind: store.OAuthCode, Signature: "sig1", RequestID: "req1", ClientID: "app", Subject: "sub",
		Active: true, Data: []byte(`{"session":1}`), ExpiresAt: t0.Add(10 * time.Minute), CreatedAt: t0}
	must(t, os.Create(ctx, r))
	wantErr(t, os.Create(ctx, &store.OAuthRecord{Kind: store.OAuthCode, Signature: "sig1"}), store.ErrAlreadyExists)
	// Same signature, different kind: a different record.
	must(t, os.Create(ctx, &store.OAuthRecord{Kind: store.OAuthAccess, Signature: "sig1", RequestID: "req1", Active: true}))

	got, err := os.Get(ctx, store.OAuthCode, "sig1")
	must(t, err)
	if got.RequestID != "req1" || got.ClientID != "app" || got.Subject != "sub" || !got.Active || string(got.Data) != `{"session":1}` {
		t.Fatalf("Get = %+v", got)
	}
	sameTime(t, "ExpiresAt", got.ExpiresAt, t0UTC.Add(10*time.Minute))
	sameTime(t, "CreatedAt", got.CreatedAt, t0UTC)
	wantErr(t, second(os.Get(ctx, store.OAuthRefresh, "sig1")), store.ErrNotFound)

	must(t, os.Deactivate(ctx, store.OAuthCode, "sig1"))
	must(t, os.Deactivate(ctx, store.OAuthCode, "sig1")) // idempotent
	got, err = os.Get(ctx, store.OAuthCode, "sig1")
	must(t, err)
	if got.Active {
		t.Fatal("still active after Deactivate")
	}
	wantErr(t, os.Deactivate(ctx, store.OAuthCode, "nope"), store.ErrNotFound)
	// Consume: only an active record, once.
	must(t, os.Create(ctx, &store.OAuthRecord{Kind: store.OAuthRefresh, Signature: "c1", RequestID: "r", ClientID: "app",
		Active: true, Data: []byte(`{"session":2}`), ExpiresAt: t0.Add(time.Hour)}))
	must(t, os.Consume(ctx, store.OAuthRefresh, "c1"))
	wantErr(t, os.Consume(ctx, store.OAuthRefresh, "c1"), store.ErrConflict)
	wantErr(t, os.Consume(ctx, store.OAuthRefresh, "nope"), store.ErrNotFound)
	// The consumed record keeps what reuse detection needs, not its data.
	if r, err := os.Get(ctx, store.OAuthRefresh, "c1"); err != nil || r.Active || r.Data != nil || r.RequestID != "r" || r.ClientID != "app" {
		t.Errorf("after Consume: %+v, %v; want inactive, request and client kept, no data", r, err)
	} else {
		sameTime(t, "consumed ExpiresAt", r.ExpiresAt, t0UTC.Add(time.Hour))
	}

	up, err := os.Update(ctx, store.OAuthCode, "sig1", func(r *store.OAuthRecord) error {
		r.Active = true
		r.Data = []byte("new")
		r.Signature = "hijack"
		return nil
	})
	must(t, err)
	if up.Signature != "sig1" || string(up.Data) != "new" {
		t.Fatalf("Update = %+v", up)
	}
	got, err = os.Get(ctx, store.OAuthCode, "sig1")
	must(t, err)
	if !got.Active || string(got.Data) != "new" {
		t.Fatalf("after Update = %+v", got)
	}
	wantErr(t, second(os.Update(ctx, store.OAuthCode, "nope", func(*store.OAuthRecord) error { return nil })), store.ErrNotFound)

	must(t, os.Delete(ctx, store.OAuthCode, "sig1"))
	wantErr(t, os.Delete(ctx, store.OAuthCode, "sig1"), store.ErrNotFound)
	if _, err := os.Get(ctx, store.OAuthAccess, "sig1"); err != nil {
		t.Fatalf("deleting the code removed the access token: %v", err)
	}
}

func testOAuthByRequestAndExpiry(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	os := s.OAuth()
	mk := func(kind store.OAuthKind, sig, req string, exp time.Time) {
		t.Helper()
		must(t, os.Create(ctx, &store.OAuthRecord{Kind: kind, Signature: sig, RequestID: req, Active: true, ExpiresAt: exp}))
	}
	mk(store.OAuthAccess, "a1", "r1", t0.Add(time.Hour))
	mk(store.OAuthAccess, "a2", "r1", t0.Add(-time.Hour))
	mk(store.OAuthAccess, "a3", "r2", t0.Add(-time.Minute))
	mk(store.OAuthRefresh, "f1", "r1", time.Time{}) // never expires
	mk(store.OAuthRefresh, "f2", "r1", t0.Add(time.Hour))

	// ListByRequestID: newest first, limited, consumed ones without data.
	for i, sig := range []string{"l1", "l2", "l3"} {
		must(t, os.Create(ctx, &store.OAuthRecord{Kind: store.OAuthRefresh, Signature: sig, RequestID: "fam", Active: true,
			Data: []byte("data-" + sig), CreatedAt: t0.Add(time.Duration(i) * time.Second), ExpiresAt: t0.Add(time.Hour)}))
	}
	must(t, os.Consume(ctx, store.OAuthRefresh, "l2"))
	got, err := os.ListByRequestID(ctx, store.OAuthRefresh, "fam", 2)
	must(t, err)
	if len(got) != 2 || got[0].Signature != "l3" || got[1].Signature != "l2" || !got[0].Active || got[1].Active ||
		string(got[0].Data) != "data-l3" || len(got[1].Data) != 0 {
		t.Fatalf("ListByRequestID(limit 2) = %+v, want l3 (active, with data) then l2 (consumed)", got)
	}
	if got, err := os.ListByRequestID(ctx, store.OAuthRefresh, "fam", 0); err != nil || len(got) != 3 || got[2].Signature != "l1" {
		t.Fatalf("ListByRequestID(all) = %+v, %v", got, err)
	}
	if got, err := os.ListByRequestID(ctx, store.OAuthAccess, "fam", 0); err != nil || len(got) != 0 {
		t.Fatalf("ListByRequestID(other kind) = %+v, %v", got, err)
	}
	_, err = os.DeleteByRequestID(ctx, store.OAuthRefresh, "fam")
	must(t, err)

	n, err := os.DeactivateByRequestID(ctx, store.OAuthRefresh, "r1")
	must(t, err)
	if n != 2 {
		t.Fatalf("DeactivateByRequestID = %d, want 2", n)
	}
	for _, sig := range []string{"f1", "f2"} {
		r, err := os.Get(ctx, store.OAuthRefresh, sig)
		must(t, err)
		if r.Active {
			t.Fatalf("%s still active", sig)
		}
	}
	if r, _ := os.Get(ctx, store.OAuthAccess, "a1"); r == nil || !r.Active {
		t.Fatal("DeactivateByRequestID touched another kind")
	}

	n, err = os.DeleteExpired(ctx, t0)
	must(t, err)
	if n != 2 {
		t.Fatalf("DeleteExpired = %d, want 2", n)
	}
	wantErr(t, second(os.Get(ctx, store.OAuthAccess, "a2")), store.ErrNotFound)
	wantErr(t, second(os.Get(ctx, store.OAuthAccess, "a3")), store.ErrNotFound)
	if _, err := os.Get(ctx, store.OAuthRefresh, "f1"); err != nil {
		t.Fatalf("record without expiry deleted: %v", err)
	}

	n, err = os.DeleteByRequestID(ctx, store.OAuthAccess, "r1")
	must(t, err)
	if n != 1 {
		t.Fatalf("DeleteByRequestID = %d, want 1", n)
	}
	n, err = os.DeleteByRequestID(ctx, store.OAuthAccess, "r1")
	must(t, err)
	if n != 0 {
		t.Fatalf("second DeleteByRequestID = %d, want 0", n)
	}
	if _, err := os.Get(ctx, store.OAuthRefresh, "f2"); err != nil {
		t.Fatalf("DeleteByRequestID removed another kind: %v", err)
	}
}

func testConsents(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	cs := s.Consents()
	newCitizen(t, s, "c1", 1)
	newClient(t, s, "app")
	newClient(t, s, "bank")
	c := &store.Consent{CitizenID: "c1", ClientID: "app", Scopes: []string{"openid"}, Claims: []string{"name"}, GrantedAt: t0, ClaimsGrantedAt: t0.Add(time.Minute)}
	must(t, cs.Put(ctx, c))
	got, err := cs.Get(ctx, "c1", "app")
	must(t, err)
	if !slices.Equal(got.Scopes, []string{"openid"}) || !slices.Equal(got.Claims, []string{"name"}) {
		t.Fatalf("Get = %+v", got)
	}
	sameTime(t, "GrantedAt", got.GrantedAt, t0UTC)
	sameTime(t, "ClaimsGrantedAt", got.ClaimsGrantedAt, t0UTC.Add(time.Minute))
	// Put replaces.
	must(t, cs.Put(ctx, &store.Consent{CitizenID: "c1", ClientID: "app", Scopes: []string{"openid", "profile"}, GrantedAt: t0.Add(time.Hour)}))
	got, err = cs.Get(ctx, "c1", "app")
	must(t, err)
	if !slices.Equal(got.Scopes, []string{"openid", "profile"}) || got.Claims != nil || !got.ClaimsGrantedAt.IsZero() {
		t.Fatalf("after replace = %+v", got)
	}
	sameTime(t, "GrantedAt after replace", got.GrantedAt, t0UTC.Add(time.Hour))
	must(t, cs.Put(ctx, &store.Consent{CitizenID: "c1", ClientID: "bank", Scopes: []string{"openid"}}))
	wantErr(t, cs.Put(ctx, &store.Consent{CitizenID: "ghost", ClientID: "bank"}), store.ErrNotFound)
	wantErr(t, cs.Put(ctx, &store.Consent{CitizenID: "c1", ClientID: "ghost"}), store.ErrNotFound)
	wantErr(t, second(cs.Get(ctx, "c1", "nope")), store.ErrNotFound)

	list, err := cs.ListByCitizen(ctx, "c1")
	must(t, err)
	if len(list) != 2 || list[0].ClientID != "app" || list[1].ClientID != "bank" {
		t.Fatalf("ListByCitizen = %d", len(list))
	}
	must(t, cs.Delete(ctx, "c1", "app"))
	wantErr(t, cs.Delete(ctx, "c1", "app"), store.ErrNotFound)
	// Deleting a client deletes its consents.
	must(t, s.Clients().Delete(ctx, "bank"))
	list, err = cs.ListByCitizen(ctx, "c1")
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("consents left after client delete: %d", len(list))
	}
}

func testCertificates(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	cs := s.Certificates()
	newCitizen(t, s, "c1", 1)
	newCitizen(t, s, "c2", 2)
	c1 := &store.Certificate{Serial: "s1", CitizenID: "c1", DeviceKey: []byte("dk"), KeyID: "k1", Level: "high",
		Payload: []byte("cose"), IssuedAt: t0, ExpiresAt: t0.Add(24 * time.Hour), DeviceName: "phone"}
	must(t, cs.Issue(ctx, c1, 3))
	if c1.Status != store.CertActive || c1.StatusIndex <= 0 {
		t.Fatalf("Issue did not assign status/index: %+v", c1)
	}
	got, err := cs.Get(ctx, "s1")
	must(t, err)
	if got.CitizenID != "c1" || got.Status != store.CertActive || string(got.DeviceKey) != "dk" || got.KeyID != "k1" ||
		got.Level != "high" || string(got.Payload) != "cose" || got.StatusIndex != c1.StatusIndex || !got.RevokedAt.IsZero() ||
		got.DeviceName != "phone" || !got.LastUsedAt.IsZero() {
		t.Fatalf("Get = %+v", got)
	}
	sameTime(t, "IssuedAt", got.IssuedAt, t0UTC)
	sameTime(t, "ExpiresAt", got.ExpiresAt, t0UTC.Add(24*time.Hour))

	// A second device keeps the first one active.
	c2 := &store.Certificate{Serial: "s2", CitizenID: "c1", DeviceKey: []byte("dk2"), IssuedAt: t0.Add(time.Hour), ExpiresAt: t0.Add(48 * time.Hour)}
	must(t, cs.Issue(ctx, c2, 3))
	if c2.StatusIndex <= c1.StatusIndex {
		t.Fatalf("status index not monotonic: %d then %d", c1.StatusIndex, c2.StatusIndex)
	}
	if g, err := cs.Get(ctx, "s1"); err != nil || g.Status != store.CertActive {
		t.Fatalf("a second device revoked the first: %+v %v", g, err)
	}
	// The same device again supersedes its own certificate only.
	c3 := &store.Certificate{Serial: "s3", CitizenID: "c1", DeviceKey: []byte("dk"), IssuedAt: t0.Add(2 * time.Hour), ExpiresAt: t0.Add(48 * time.Hour)}
	must(t, cs.Issue(ctx, c3, 3))
	old, err := cs.Get(ctx, "s1")
	must(t, err)
	if old.Status != store.CertRevoked || old.RevokeReason != "superseded" {
		t.Fatalf("previous certificate of the device = %+v", old)
	}
	sameTime(t, "superseded RevokedAt", old.RevokedAt, t0UTC.Add(2*time.Hour))
	list, err := cs.ListByCitizen(ctx, "c1", t0)
	must(t, err)
	if len(list) != 3 || list[0].Serial != "s3" || list[1].Serial != "s2" || list[2].Serial != "s1" {
		t.Fatalf("ListByCitizen = %v", serials(list))
	}
	// Expired certificates drop out of the list.
	if list, err := cs.ListByCitizen(ctx, "c1", t0.Add(30*time.Hour)); err != nil || len(list) != 2 {
		t.Fatalf("ListByCitizen after the first expiry = %v, %v", serials(list), err)
	}
	// The device limit: with two active, a third device is refused and nothing changes.
	wantErr(t, cs.Issue(ctx, &store.Certificate{Serial: "s4", CitizenID: "c1", DeviceKey: []byte("dk4")}, 2), store.ErrConflict)
	wantErr(t, second(cs.Get(ctx, "s4")), store.ErrNotFound)
	// ... but a device already counted may renew.
	must(t, cs.Issue(ctx, &store.Certificate{Serial: "s5", CitizenID: "c1", DeviceKey: []byte("dk2"), IssuedAt: t0.Add(3 * time.Hour), ExpiresAt: t0.Add(48 * time.Hour)}, 2))
	// Another citizen is unaffected.
	must(t, cs.Issue(ctx, &store.Certificate{Serial: "s6", CitizenID: "c2", DeviceKey: []byte("dk")}, 1))
	if g, err := cs.Get(ctx, "s3"); err != nil || g.Status != store.CertActive {
		t.Fatalf("issuing for c2 changed c1: %+v %v", g, err)
	}

	// Duplicate serial fails and rolls back the supersession.
	wantErr(t, cs.Issue(ctx, &store.Certificate{Serial: "s3", CitizenID: "c1", DeviceKey: []byte("dk")}, 0), store.ErrAlreadyExists)
	if g, err := cs.Get(ctx, "s3"); err != nil || g.Status != store.CertActive {
		t.Fatalf("failed issue revoked the active certificate: %+v %v", g, err)
	}
	wantErr(t, cs.Issue(ctx, &store.Certificate{Serial: "s9", CitizenID: "ghost"}, 0), store.ErrNotFound)
	wantErr(t, second(cs.Get(ctx, "nope")), store.ErrNotFound)

	must(t, cs.MarkUsed(ctx, "s3", t0.Add(90*time.Minute)))
	got, err = cs.Get(ctx, "s3")
	must(t, err)
	sameTime(t, "LastUsedAt", got.LastUsedAt, t0UTC.Add(90*time.Minute))
	wantErr(t, cs.MarkUsed(ctx, "nope", t0), store.ErrNotFound)

	must(t, cs.Revoke(ctx, "s3", "lost phone", t0.Add(4*time.Hour)))
	must(t, cs.Revoke(ctx, "s3", "again", t0.Add(5*time.Hour))) // not an error, keeps the first
	got, err = cs.Get(ctx, "s3")
	must(t, err)
	if got.Status != store.CertRevoked || got.RevokeReason != "lost phone" {
		t.Fatalf("revoked = %+v", got)
	}
	sameTime(t, "RevokedAt", got.RevokedAt, t0UTC.Add(4*time.Hour))
	wantErr(t, cs.Revoke(ctx, "nope", "x", t0), store.ErrNotFound)

	revoked, err := cs.Revoked(ctx)
	must(t, err)
	c2now, err := cs.Get(ctx, "s2")
	must(t, err)
	if !slices.Equal(revoked, []int64{c1.StatusIndex, c2now.StatusIndex, c3.StatusIndex}) {
		t.Fatalf("Revoked = %v, want %v", revoked, []int64{c1.StatusIndex, c2now.StatusIndex, c3.StatusIndex})
	}
}

func serials(cs []*store.Certificate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Serial)
	}
	return out
}

func testConcurrentIssue(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	newCitizen(t, s, "c1", 1)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	// One device renewing concurrently: exactly one certificate stays active.
	for i := range workers {
		wg.Go(func() {
			errs <- s.Certificates().Issue(ctx, &store.Certificate{Serial: fmt.Sprintf("s%02d", i), CitizenID: "c1", DeviceKey: []byte("dk")}, 0)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	active, revoked := 0, 0
	seen := map[int64]bool{}
	for i := range workers {
		c, err := s.Certificates().Get(ctx, fmt.Sprintf("s%02d", i))
		must(t, err)
		if seen[c.StatusIndex] {
			t.Fatalf("status index %d assigned twice", c.StatusIndex)
		}
		seen[c.StatusIndex] = true
		switch c.Status {
		case store.CertActive:
			active++
		case store.CertRevoked:
			revoked++
		}
	}
	if active != 1 || revoked != workers-1 {
		t.Fatalf("active=%d revoked=%d, want 1 and %d", active, revoked, workers-1)
	}
	idx, err := s.Certificates().Revoked(ctx)
	must(t, err)
	if len(idx) != workers-1 {
		t.Fatalf("Revoked = %d indexes", len(idx))
	}
	// Many devices at once under a limit: never more active than allowed.
	newCitizen(t, s, "c2", 2)
	const limit = 3
	errs = make(chan error, workers)
	for i := range workers {
		wg.Go(func() {
			errs <- s.Certificates().Issue(ctx, &store.Certificate{Serial: fmt.Sprintf("d%02d", i), CitizenID: "c2", DeviceKey: fmt.Appendf(nil, "dk%d", i)}, limit)
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrConflict):
		default:
			t.Fatal(err)
		}
	}
	if ok != limit {
		t.Fatalf("%d devices issued under a limit of %d", ok, limit)
	}
}

// verifyChain checks events are 1..n, linked and hashed.
func verifyChain(t *testing.T, evs []*store.AuditEvent) {
	t.Helper()
	var prev []byte
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			t.Fatalf("event %d: prev hash does not link", e.Seq)
		}
		if want := audit.Chain(prev, e); !bytes.Equal(e.Hash, want) {
			t.Fatalf("event %d: hash mismatch", e.Seq)
		}
		prev = e.Hash
	}
}

func testAudit(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	as := s.Audit()
	add := func(subject, action string, detail map[string]string) *store.AuditEvent {
		t.Helper()
		e := &store.AuditEvent{At: t0, Actor: "system", Action: action, Subject: subject, Object: "obj", Outcome: "ok", Detail: detail}
		must(t, as.Append(ctx, e))
		return e
	}
	e1 := add("c1", "login.face", map[string]string{"client": "app"})
	if e1.Seq != 1 || e1.PrevHash != nil || len(e1.Hash) == 0 {
		t.Fatalf("first event = %+v", e1)
	}
	sameTime(t, "At", e1.At, t0UTC)
	e2 := add("c2", "cert.verify", nil)
	if e2.Seq != 2 || !bytes.Equal(e2.PrevHash, e1.Hash) {
		t.Fatalf("second event = %+v", e2)
	}
	add("c1", "cert.verify", nil)
	add("c1", "cert%verify", nil) // LIKE wildcards in data must not match as patterns
	add("c1", "certXverify", nil)

	all, err := as.List(ctx, 0, 0)
	must(t, err)
	if len(all) != 5 {
		t.Fatalf("List = %d events", len(all))
	}
	verifyChain(t, all)
	if n, err := audit.Verify(ctx, as); err != nil || n != 5 {
		t.Fatalf("audit.Verify = %d, %v; want 5 events intact", n, err)
	}
	if all[0].Detail["client"] != "app" || all[1].Detail != nil {
		t.Fatalf("details = %v, %v", all[0].Detail, all[1].Detail)
	}
	page, err := as.List(ctx, 2, 2)
	must(t, err)
	if len(page) != 2 || page[0].Seq != 3 || page[1].Seq != 4 {
		t.Fatalf("List(2,2) = %d", len(page))
	}

	tests := []struct {
		name, subject, prefix string
		limit                 int
		want                  []int64
	}{
		{"all of c1 newest first", "c1", "", 0, []int64{5, 4, 3, 1}},
		{"prefix", "c1", "cert.", 0, []int64{3}},
		{"percent is literal", "c1", "cert%", 0, []int64{4}},
		{"limit", "c1", "", 2, []int64{5, 4}},
		{"other subject", "c2", "cert", 0, []int64{2}},
		{"none", "c3", "", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := as.ListBySubject(ctx, tc.subject, tc.prefix, tc.limit)
			must(t, err)
			var got []int64
			for _, e := range evs {
				got = append(got, e.Seq)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func testConcurrentAudit(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Go(func() {
			errs <- s.Audit().Append(ctx, &store.AuditEvent{Actor: fmt.Sprint("w", i), Action: "test.append", Outcome: "ok"})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	all, err := s.Audit().List(ctx, 0, 1000)
	must(t, err)
	if len(all) != workers {
		t.Fatalf("%d events, want %d", len(all), workers)
	}
	verifyChain(t, all)
}

func testKeys(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	ks := s.Keys()
	k1 := &store.SigningKey{ID: "k1", Use: "oidc", Alg: "ES256", Private: []byte("private-pkcs8-1"), Public: []byte("pub1"),
		CreatedAt: t0, ActiveAt: t0.Add(time.Hour), RetireAt: t0.Add(48 * time.Hour), ExpiresAt: t0.Add(72 * time.Hour)}
	must(t, ks.Create(ctx, k1))
	must(t, ks.Create(ctx, &store.SigningKey{ID: "k0", Use: "oidc", Alg: "ES256", Private: []byte("p0"), Public: []byte("pub0"), CreatedAt: t0.Add(time.Hour)}))
	must(t, ks.Create(ctx, &store.SigningKey{ID: "c1", Use: "cert", Alg: "ES256", Private: []byte("pc"), Public: []byte("pubc"), CreatedAt: t0}))
	wantErr(t, ks.Create(ctx, &store.SigningKey{ID: "k1", Use: "oidc", Private: []byte("x")}), store.ErrAlreadyExists)

	got, err := ks.Get(ctx, "k1")
	must(t, err)
	if got.Use != "oidc" || got.Alg != "ES256" || string(got.Private) != "private-pkcs8-1" || string(got.Public) != "pub1" {
		t.Fatalf("Get = %+v", got)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, t0UTC)
	sameTime(t, "ActiveAt", got.ActiveAt, t0UTC.Add(time.Hour))
	sameTime(t, "RetireAt", got.RetireAt, t0UTC.Add(48*time.Hour))
	sameTime(t, "ExpiresAt", got.ExpiresAt, t0UTC.Add(72*time.Hour))
	wantErr(t, second(ks.Get(ctx, "nope")), store.ErrNotFound)

	list, err := ks.List(ctx, "oidc")
	must(t, err)
	if len(list) != 2 || list[0].ID != "k1" || list[1].ID != "k0" {
		t.Fatalf("List(oidc) = %d (oldest first wanted)", len(list))
	}
	list, err = ks.List(ctx, "cert")
	must(t, err)
	if len(list) != 1 || list[0].ID != "c1" || string(list[0].Private) != "pc" {
		t.Fatalf("List(cert) = %d", len(list))
	}
	must(t, ks.Delete(ctx, "k1"))
	wantErr(t, ks.Delete(ctx, "k1"), store.ErrNotFound)
}

func testTimesUTC(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	// Zero times round-trip as zero; sub-microsecond digits are dropped
	// (truncated, not rounded).
	in := time.Date(2030, 12, 31, 23, 59, 59, 999999999, time.FixedZone("X", -5*3600))
	newCitizen(t, s, "c1", 1)
	must(t, s.Passkeys().Create(ctx, &store.Passkey{CredentialID: []byte("c"), CitizenID: "c1", CreatedAt: in}))
	p, err := s.Passkeys().Get(ctx, []byte("c"))
	must(t, err)
	sameTime(t, "CreatedAt", p.CreatedAt, time.Date(2031, 1, 1, 4, 59, 59, 999999000, time.UTC))
	if !p.LastUsedAt.IsZero() {
		t.Errorf("zero LastUsedAt came back as %v", p.LastUsedAt)
	}
	// Defaults come from the store's clock, in UTC.
	c := &store.Citizen{ID: "c2", IDNumber: idNumber(2)}
	must(t, s.Citizens().Create(ctx, c))
	got, err := s.Citizens().Get(ctx, "c2")
	must(t, err)
	if c.CreatedAt.IsZero() || !got.CreatedAt.Equal(c.CreatedAt) || got.CreatedAt.Location() != time.UTC || got.CreatedAt.Nanosecond()%1000 != 0 {
		t.Errorf("default CreatedAt = %v, stored %v", c.CreatedAt, got.CreatedAt)
	}
}

func testSealedAtRest(t *testing.T, s store.Store) {
	raw, ok := s.(Raw)
	if !ok {
		t.Skip("backend gives no raw access")
	}
	ctx := ctxT(t)
	newCitizen(t, s, "c1", 1)
	newCitizen(t, s, "c2", 2)
	v := vec(0.125)
	must(t, s.Templates().Create(ctx, &store.Template{ID: "t1", CitizenID: "c1", Kind: store.TemplateLive, Vector: v}))
	must(t, s.Keys().Create(ctx, &store.SigningKey{ID: "k1", Use: "oidc", Private: []byte("-----PRIVATE-KEY-MATERIAL-----")}))
	must(t, s.OAuth().Create(ctx, &store.OAuthRecord{Kind: store.OAuthAccess, Signature: "s", Data: []byte(`{"id_number":"110101"}`)}))

	vb := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(vb[4*i:], math.Float32bits(f))
	}
	tests := []struct {
		name, query string
		plain       []byte
	}{
		{"id number", `SELECT id_number FROM citizens WHERE id = 'c1'`, []byte(idNumber(1))},
		{"id number hash", `SELECT id_number_hash FROM citizens WHERE id = 'c1'`, []byte(idNumber(1))},
		{"template vector", `SELECT vector FROM templates`, vb[:64]},
		{"private key", `SELECT private FROM signing_keys`, []byte("PRIVATE-KEY-MATERIAL")},
		{"oauth data", `SELECT data FROM oauth_records`, []byte("id_number")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := raw.RawBytes(ctx, tc.query)
			must(t, err)
			if len(vals) != 1 || len(vals[0]) == 0 {
				t.Fatalf("raw query returned %d values", len(vals))
			}
			if bytes.Contains(vals[0], tc.plain) {
				t.Fatalf("plaintext stored in the clear")
			}
		})
	}

	// A sealed value moved to another row must not open there.
	vals, err := raw.RawBytes(ctx, `SELECT id_number FROM citizens WHERE id = ?`, "c1")
	must(t, err)
	must(t, raw.RawExec(ctx, `UPDATE citizens SET id_number = ? WHERE id = ?`, vals[0], "c2"))
	got, err := s.Citizens().Get(ctx, "c2")
	if err == nil {
		t.Fatalf("swapped ciphertext opened: %q", got.IDNumber)
	}
	if errors.Is(err, store.ErrNotFound) {
		t.Fatalf("swapped ciphertext reported as not found: %v", err)
	}
}

// RunShared checks that two independent handles on one database (as two
// processes or nodes would have) never lose updates, keep one active
// certificate and one linear audit chain. open returns both handles, fresh
// and empty.
func RunShared(t *testing.T, open func(t *testing.T) (a, b store.Store)) {
	a, b := open(t)
	ctx := ctxT(t)
	newCitizen(t, a, "c1", 1)
	must(t, a.Passkeys().Create(ctx, &store.Passkey{CredentialID: []byte("cred"), CitizenID: "c1"}))

	var wg sync.WaitGroup
	errs := make(chan error, 3*workers)
	for i := range workers {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			_, err := s.Passkeys().Update(ctx, []byte("cred"), func(p *store.Passkey) error { p.SignCount++; return nil })
			errs <- err
		})
		wg.Go(func() {
			errs <- s.Audit().Append(ctx, &store.AuditEvent{Actor: fmt.Sprint("w", i), Action: "test.shared", Outcome: "ok"})
		})
		wg.Go(func() {
			errs <- s.Certificates().Issue(ctx, &store.Certificate{Serial: fmt.Sprintf("s%02d", i), CitizenID: "c1", DeviceKey: []byte("dk")}, 0)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	p, err := b.Passkeys().Get(ctx, []byte("cred"))
	must(t, err)
	if p.SignCount != workers {
		t.Errorf("sign count = %d, want %d (lost updates across handles)", p.SignCount, workers)
	}
	evs, err := a.Audit().List(ctx, 0, 1000)
	must(t, err)
	if len(evs) != workers {
		t.Fatalf("%d audit events, want %d", len(evs), workers)
	}
	verifyChain(t, evs)
	revoked, err := b.Certificates().Revoked(ctx)
	must(t, err)
	if len(revoked) != workers-1 {
		t.Errorf("%d revoked certificates, want %d", len(revoked), workers-1)
	}
	active := 0
	for i := range workers {
		if c, err := a.Certificates().Get(ctx, fmt.Sprintf("s%02d", i)); err == nil && c.Status == store.CertActive {
			active++
		}
	}
	if active != 1 {
		t.Errorf("%d active certificates of one device after concurrent renewals, want 1", active)
	}
}

// testTransaction checks store.Transactor: calls made with the context of
// BeginTx commit together or not at all.
func testTransaction(t *testing.T, s store.Store) {
	tr, ok := s.(store.Transactor)
	if !ok {
		t.Skip("store is not a store.Transactor")
	}
	ctx := ctxT(t)
	os := s.OAuth()
	must(t, os.Create(ctx, &store.OAuthRecord{Kind: store.OAuthRefresh, Signature: "old", RequestID: "req", Active: true}))
	must(t, os.Create(ctx, &store.OAuthRecord{Kind: store.OAuthAccess, Signature: "at", RequestID: "req", Active: true}))
	rotate := func(tctx context.Context, newSig string) error {
		if _, err := os.Update(tctx, store.OAuthRefresh, "old", func(r *store.OAuthRecord) error {
			if !r.Active {
				return store.ErrConflict
			}
			r.Active = false
			return nil
		}); err != nil {
			return err
		}
		if _, err := os.DeleteByRequestID(tctx, store.OAuthAccess, "req"); err != nil {
			return err
		}
		return os.Create(tctx, &store.OAuthRecord{Kind: store.OAuthRefresh, Signature: newSig, RequestID: "req", Active: true})
	}

	// Rolled back: nothing changed.
	tctx, err := tr.BeginTx(ctx)
	must(t, err)
	must(t, rotate(tctx, "new1"))
	if r, err := os.Get(tctx, store.OAuthRefresh, "new1"); err != nil || !r.Active {
		t.Errorf("inside the transaction: new1 = %v, %v; want it visible", r, err)
	}
	must(t, tr.Rollback(tctx))
	must(t, tr.Rollback(tctx)) // idempotent
	wantErr(t, second(os.Get(ctx, store.OAuthRefresh, "new1")), store.ErrNotFound)
	if r, err := os.Get(ctx, store.OAuthRefresh, "old"); err != nil || !r.Active {
		t.Errorf("after rollback: old = %v, %v; want active", r, err)
	}
	must(t, second(os.Get(ctx, store.OAuthAccess, "at")))
	if _, err := os.Get(tctx, store.OAuthRefresh, "old"); err == nil {
		t.Error("a call with a finished transaction's context succeeded")
	}

	// Committed: every change is there.
	tctx, err = tr.BeginTx(ctx)
	must(t, err)
	must(t, rotate(tctx, "new2"))
	must(t, tr.Commit(tctx))
	must(t, tr.Rollback(tctx)) // after Commit: no-op
	if r, err := os.Get(ctx, store.OAuthRefresh, "old"); err != nil || r.Active {
		t.Errorf("after commit: old = %v, %v; want inactive", r, err)
	}
	wantErr(t, second(os.Get(ctx, store.OAuthAccess, "at")), store.ErrNotFound)
	must(t, second(os.Get(ctx, store.OAuthRefresh, "new2")))
}

// testConcurrentRotation runs refresh-style rotations of one token in
// concurrent transactions: exactly one may win.
func testConcurrentRotation(t *testing.T, s store.Store) {
	tr, ok := s.(store.Transactor)
	if !ok {
		t.Skip("store is not a store.Transactor")
	}
	ctx := ctxT(t)
	os := s.OAuth()
	must(t, os.Create(ctx, &store.OAuthRecord{Kind: store.OAuthRefresh, Signature: "old", RequestID: "req", Active: true}))
	var wg sync.WaitGroup
	wins := make(chan int, workers)
	errs := make(chan error, workers)
	for i := range workers {
		wg.Go(func() {
			tctx, err := tr.BeginTx(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer tr.Rollback(tctx)
			// Half the workers read-modify-write, half use Consume: both
			// must see the other's change.
			if i%2 == 0 {
				err = os.Consume(tctx, store.OAuthRefresh, "old")
			} else {
				_, err = os.Update(tctx, store.OAuthRefresh, "old", func(r *store.OAuthRecord) error {
					if !r.Active {
						return store.ErrConflict
					}
					r.Active = false
					return nil
				})
			}
			if errors.Is(err, store.ErrConflict) {
				return
			}
			if err == nil {
				err = os.Create(tctx, &store.OAuthRecord{Kind: store.OAuthRefresh, Signature: fmt.Sprint("new", i), RequestID: "req", Active: true})
			}
			if err == nil {
				err = tr.Commit(tctx)
			}
			if err != nil {
				errs <- err
				return
			}
			wins <- i
		})
	}
	wg.Wait()
	close(errs)
	close(wins)
	for err := range errs {
		must(t, err)
	}
	if n := len(wins); n != 1 {
		t.Fatalf("%d rotations won, want exactly 1", n)
	}
	active := 0
	for i := range workers {
		if r, err := os.Get(ctx, store.OAuthRefresh, fmt.Sprint("new", i)); err == nil && r.Active {
			active++
		}
	}
	if active != 1 {
		t.Errorf("%d new tokens stored, want 1", active)
	}
}

// oauthRec is an active record of the family req.
func oauthRec(kind store.OAuthKind, sig, req string) *store.OAuthRecord {
	return &store.OAuthRecord{Kind: kind, Signature: sig, RequestID: req, ClientID: "app", Subject: "sub",
		Active: true, Data: []byte(`{"sig":"` + sig + `"}`), ExpiresAt: t0.Add(time.Hour), CreatedAt: t0}
}

// oauthState reports, for each (kind, sig), "active", "inactive" or "missing".
func oauthState(t *testing.T, s store.Store, keys ...[2]string) map[[2]string]string {
	t.Helper()
	out := map[[2]string]string{}
	for _, k := range keys {
		r, err := s.OAuth().Get(ctxT(t), store.OAuthKind(k[0]), k[1])
		switch {
		case errors.Is(err, store.ErrNotFound):
			out[k] = "missing"
		case err != nil:
			t.Fatal(err)
		case r.Active:
			out[k] = "active"
		default:
			out[k] = "inactive"
		}
	}
	return out
}

func wantOAuthState(t *testing.T, s store.Store, want map[[2]string]string) {
	t.Helper()
	var keys [][2]string
	for k := range want {
		keys = append(keys, k)
	}
	got := oauthState(t, s, keys...)
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s %s: %s, want %s", k[0], k[1], got[k], w)
		}
	}
}

// testRotate checks OAuthStore.Rotate: consume, revoke the family, insert,
// all or nothing.
func testRotate(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	os := s.OAuth()
	for _, r := range []*store.OAuthRecord{
		oauthRec(store.OAuthRefresh, "rt1", "fam"), oauthRec(store.OAuthAccess, "at1", "fam"),
		oauthRec(store.OAuthAccess, "at2", "fam"), oauthRec(store.OAuthAccess, "other", "fam2"),
		oauthRec(store.OAuthCode, "code", "fam3"),
	} {
		must(t, os.Create(ctx, r))
	}
	at3, rt2 := oauthRec(store.OAuthAccess, "at3", "fam"), oauthRec(store.OAuthRefresh, "rt2", "fam")
	at3.CreatedAt, at3.ExpiresAt = t0, t0.Add(time.Minute)
	must(t, os.Rotate(ctx, store.OAuthRefresh, "rt1", store.OAuthAccess, "fam", at3, rt2))
	wantOAuthState(t, s, map[[2]string]string{
		{"refresh", "rt1"}: "inactive", {"access", "at1"}: "missing", {"access", "at2"}: "missing",
		{"access", "other"}: "active", {"access", "at3"}: "active", {"refresh", "rt2"}: "active",
	})
	got, err := os.Get(ctx, store.OAuthAccess, "at3")
	must(t, err)
	if got.RequestID != "fam" || got.ClientID != "app" || got.Subject != "sub" || string(got.Data) != `{"sig":"at3"}` {
		t.Errorf("inserted record = %+v", got)
	}
	if c, err := os.Get(ctx, store.OAuthRefresh, "rt1"); err != nil || c.Active || c.Data != nil || c.RequestID != "fam" {
		t.Errorf("rotated record = %+v, %v; want inactive with its request ID and no data", c, err)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, t0UTC)
	sameTime(t, "ExpiresAt", got.ExpiresAt, t0UTC.Add(time.Minute))
	sameTime(t, "caller's CreatedAt", at3.CreatedAt, t0UTC)

	tests := []struct {
		name   string
		kind   store.OAuthKind
		sig    string
		revoke store.OAuthKind
		recs   []*store.OAuthRecord
		want   error
	}{
		{"already consumed", store.OAuthRefresh, "rt1", store.OAuthAccess,
			[]*store.OAuthRecord{oauthRec(store.OAuthAccess, "x1", "fam"), oauthRec(store.OAuthRefresh, "x2", "fam")}, store.ErrConflict},
		{"missing", store.OAuthRefresh, "nope", store.OAuthAccess,
			[]*store.OAuthRecord{oauthRec(store.OAuthAccess, "x1", "fam")}, store.ErrNotFound},
		{"insert of an existing record", store.OAuthRefresh, "rt2", store.OAuthAccess,
			[]*store.OAuthRecord{oauthRec(store.OAuthAccess, "x1", "fam"), oauthRec(store.OAuthRefresh, "rt2", "fam")}, store.ErrAlreadyExists},
		{"duplicate in recs", store.OAuthRefresh, "rt2", store.OAuthAccess,
			[]*store.OAuthRecord{oauthRec(store.OAuthAccess, "x1", "fam"), oauthRec(store.OAuthAccess, "x1", "fam")}, store.ErrAlreadyExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, os.Rotate(ctx, tc.kind, tc.sig, tc.revoke, "fam", tc.recs...), tc.want)
			// Nothing changed.
			wantOAuthState(t, s, map[[2]string]string{
				{"refresh", "rt1"}: "inactive", {"refresh", "rt2"}: "active", {"access", "at3"}: "active",
				{"access", "x1"}: "missing", {"refresh", "x2"}: "missing",
			})
		})
	}
	if err := os.Rotate(ctx, store.OAuthRefresh, "rt2", store.OAuthRefresh, "fam"); err == nil {
		t.Error("Rotate with revoke == kind succeeded")
	}

	// A code exchange: no family to revoke.
	must(t, os.Rotate(ctx, store.OAuthCode, "code", "", "fam3", oauthRec(store.OAuthAccess, "at-code", "fam3")))
	wantErr(t, os.Rotate(ctx, store.OAuthCode, "code", "", "fam3", oauthRec(store.OAuthAccess, "at-code2", "fam3")), store.ErrConflict)
	// Nothing to insert: consume and revoke only.
	must(t, os.Rotate(ctx, store.OAuthRefresh, "rt2", store.OAuthAccess, "fam"))
	wantOAuthState(t, s, map[[2]string]string{
		{"code", "code"}: "inactive", {"access", "at-code"}: "active", {"access", "at-code2"}: "missing",
		{"refresh", "rt2"}: "inactive", {"access", "at3"}: "missing", {"access", "other"}: "active",
	})
}

// testRotateInTransaction checks Rotate joins a Transactor's transaction.
func testRotateInTransaction(t *testing.T, s store.Store) {
	tr, ok := s.(store.Transactor)
	if !ok {
		t.Skip("store is not a store.Transactor")
	}
	ctx := ctxT(t)
	os := s.OAuth()
	must(t, os.Create(ctx, oauthRec(store.OAuthRefresh, "rt1", "fam")))
	must(t, os.Create(ctx, oauthRec(store.OAuthAccess, "at1", "fam")))
	before := map[[2]string]string{{"refresh", "rt1"}: "active", {"access", "at1"}: "active", {"refresh", "rt2"}: "missing"}
	after := map[[2]string]string{{"refresh", "rt1"}: "inactive", {"access", "at1"}: "missing", {"refresh", "rt2"}: "active"}

	tctx, err := tr.BeginTx(ctx)
	must(t, err)
	must(t, os.Rotate(tctx, store.OAuthRefresh, "rt1", store.OAuthAccess, "fam", oauthRec(store.OAuthRefresh, "rt2", "fam")))
	if r, err := os.Get(tctx, store.OAuthRefresh, "rt2"); err != nil || !r.Active {
		t.Errorf("inside the transaction: rt2 = %v, %v", r, err)
	}
	must(t, tr.Rollback(tctx))
	wantOAuthState(t, s, before)

	tctx, err = tr.BeginTx(ctx)
	must(t, err)
	must(t, os.Rotate(tctx, store.OAuthRefresh, "rt1", store.OAuthAccess, "fam", oauthRec(store.OAuthRefresh, "rt2", "fam")))
	must(t, tr.Commit(tctx))
	wantOAuthState(t, s, after)
}

// testConcurrentRotate rotates one token from many goroutines: exactly one
// wins, the others get ErrConflict and leave nothing behind.
func testConcurrentRotate(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	os := s.OAuth()
	must(t, os.Create(ctx, oauthRec(store.OAuthRefresh, "rt", "fam")))
	must(t, os.Create(ctx, oauthRec(store.OAuthAccess, "at", "fam")))
	var wg sync.WaitGroup
	wins := make(chan int, workers)
	errs := make(chan error, workers)
	for i := range workers {
		wg.Go(func() {
			err := os.Rotate(ctx, store.OAuthRefresh, "rt", store.OAuthAccess, "fam",
				oauthRec(store.OAuthAccess, fmt.Sprint("at", i), "fam"), oauthRec(store.OAuthRefresh, fmt.Sprint("rt", i), "fam"))
			switch {
			case err == nil:
				wins <- i
			case !errors.Is(err, store.ErrConflict):
				errs <- err
			}
		})
	}
	wg.Wait()
	close(wins)
	close(errs)
	for err := range errs {
		must(t, err)
	}
	if len(wins) != 1 {
		t.Fatalf("%d rotations won, want exactly 1", len(wins))
	}
	w := <-wins
	for i := range workers {
		want := "missing"
		if i == w {
			want = "active"
		}
		wantOAuthState(t, s, map[[2]string]string{
			{"access", fmt.Sprint("at", i)}: want, {"refresh", fmt.Sprint("rt", i)}: want,
		})
	}
	wantOAuthState(t, s, map[[2]string]string{{"refresh", "rt"}: "inactive", {"access", "at"}: "missing"})
}
