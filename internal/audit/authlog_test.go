package audit_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlite/sqlitetest"
)

// TestAuthLogAPI: only the admin token exports; the export names the
// citizen by 网号 or ID number, lists the verifications only, and is
// recorded (operator, reason) before the answer; refusals record nothing.
func TestAuthLogAPI(t *testing.T) {
	ctx := context.Background()
	db := sqlitetest.Open(t)
	if err := db.Citizens().Create(ctx, &store.Citizen{ID: "c1", IDNumber: "110101199003071234", NetworkNumber: "1ABCDEFGHJKMNPQRSTVWX"}); err != nil {
		t.Fatal(err)
	}
	rec, err := audit.New(audit.Config{Store: db.Audit()})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*store.AuditEvent{
		{Actor: "citizen:c1", Action: "login.passkey", Subject: "c1", Object: "bank", Outcome: "ok", Detail: map[string]string{"acr": "urn:trustid:acr:passkey"}},
		{Actor: "citizen:c1", Action: "oidc.consent", Subject: "c1", Object: "bank", Outcome: "ok"},
	} {
		if err := rec.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(audit.AuthLogAPI{Token: "admin-secret", Citizens: db.Citizens(), Store: db.Audit(), Recorder: rec})
	defer srv.Close()
	get := func(token string, q url.Values) (int, map[string]any) {
		req, _ := http.NewRequest("GET", srv.URL+"/admin/auth-log?"+q.Encode(), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	full := url.Values{"network_number": {"1ABCDEFGHJKMNPQRSTVWX"}, "operator": {"alice"}, "reason": {"case 9"}}
	for _, tc := range []struct {
		name  string
		token string
		q     url.Values
		want  int
	}{
		{"no token", "", full, 401},
		{"wrong token", "guess", full, 401},
		{"no reason", "admin-secret", url.Values{"network_number": {"1ABCDEFGHJKMNPQRSTVWX"}, "operator": {"alice"}}, 400},
		{"two names", "admin-secret", url.Values{"network_number": {"1ABCDEFGHJKMNPQRSTVWX"}, "id_number": {"110101199003071234"}, "operator": {"a"}, "reason": {"r"}}, 400},
		{"unknown", "admin-secret", url.Values{"network_number": {"1ZZZZZZZZZZZZZZZZZZZZ"}, "operator": {"a"}, "reason": {"r"}}, 404},
	} {
		if status, _ := get(tc.token, tc.q); status != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, status, tc.want)
		}
	}
	if evs, _ := db.Audit().ListBySubject(ctx, "c1", "authlog.", 10); len(evs) != 0 {
		t.Fatalf("refused requests recorded %d exports", len(evs))
	}
	status, m := get("admin-secret", full)
	entries, _ := m["entries"].([]any)
	if status != 200 || m["citizen"] != "c1" || len(entries) != 1 {
		t.Fatalf("export: %d %v", status, m)
	}
	if e, _ := entries[0].(map[string]any); e["kind"] != "login" || e["method"] != "passkey" || e["party"] != "client:bank" || e["acr"] != "urn:trustid:acr:passkey" {
		t.Fatalf("entry %v", e)
	}
	evs, _ := db.Audit().ListBySubject(ctx, "c1", "authlog.", 10)
	if len(evs) != 1 || evs[0].Actor != "operator:alice" || evs[0].Detail["reason"] != "case 9" {
		t.Fatalf("export events %+v", evs)
	}
	if status, _ := get("admin-secret", url.Values{"id_number": {"110101199003071234"}, "operator": {"bob"}, "reason": {"case 10"}}); status != 200 {
		t.Fatalf("by ID number: %d", status)
	}
}
