package identity_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/internal/store"
)

// TestCitizenTemplates: a citizen sees their templates, deletes a live one
// (store and index), may not delete the register template or another
// citizen's; live templates older than the retention expire.
func TestCitizenTemplates(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, c := range []string{"c1", "c2"} {
		if err := f.store.Citizens().Create(ctx, &store.Citizen{ID: c, IDNumber: "99000020000101" + map[string]string{"c1": "0011", "c2": "0022"}[c]}); err != nil {
			t.Fatal(err)
		}
	}
	now := f.clock.Now()
	vec := make([]float32, dim)
	vec[0] = 1
	for _, tp := range []*store.Template{
		{ID: "reg-1", CitizenID: "c1", Kind: store.TemplateRegister, CreatedAt: now.Add(-1000 * time.Hour)},
		{ID: "live-old", CitizenID: "c1", Kind: store.TemplateLive, CreatedAt: now.Add(-100 * time.Hour)},
		{ID: "live-new", CitizenID: "c1", Kind: store.TemplateLive, CreatedAt: now.Add(-time.Hour)},
		{ID: "live-c2", CitizenID: "c2", Kind: store.TemplateLive, CreatedAt: now.Add(-time.Hour)},
	} {
		tp.ModelVersion, tp.Vector = testModel, vec
		if err := f.store.Templates().Create(ctx, tp); err != nil {
			t.Fatal(err)
		}
		if err := f.index.Add(tp.CitizenID+"/"+tp.ID, vec); err != nil {
			t.Fatal(err)
		}
	}
	ts, err := f.svc.Templates(ctx, "c1")
	if err != nil || len(ts) != 3 {
		t.Fatalf("Templates = %d, %v", len(ts), err)
	}
	for _, tc := range []struct {
		name, citizen, id string
		want              error
	}{
		{"register template", "c1", "reg-1", identity.ErrRegisterTemplate},
		{"another citizen's", "c1", "live-c2", identity.ErrNotYours},
		{"unknown", "c1", "nope", store.ErrNotFound},
		{"own live template", "c1", "live-new", nil},
	} {
		if err := f.svc.DeleteTemplate(ctx, "citizen:"+tc.citizen, tc.citizen, tc.id); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := f.store.Templates().Get(ctx, "live-new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted template still stored: %v", err)
	}
	before := f.index.Len()
	n, err := f.svc.PurgeExpired(ctx, 48*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("PurgeExpired = %d, %v", n, err)
	}
	if _, err := f.store.Templates().Get(ctx, "live-old"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("expired template still stored")
	}
	if _, err := f.store.Templates().Get(ctx, "reg-1"); err != nil {
		t.Fatal("the register template expired")
	}
	if f.index.Len() != before-1 {
		t.Fatalf("index %d after purge, want %d", f.index.Len(), before-1)
	}
	if n, err := f.svc.PurgeExpired(ctx, 0); n != 0 || err != nil {
		t.Fatalf("retention 0 purged %d, %v", n, err)
	}
	evs, _ := f.store.Audit().ListBySubject(ctx, "c1", "face.template.", 10)
	if len(evs) != 2 {
		t.Fatalf("%d audit events, want delete and expire", len(evs))
	}
}
