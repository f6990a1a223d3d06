package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/store"
)

// TestAuthLogExport: the operator command exports a citizen's
// verifications (and nothing else of the audit log), found by 网号 or ID
// number, and records the export in the audit log; refused requests
// export nothing and record nothing.
func TestAuthLogExport(t *testing.T) {
	t.Setenv("TRUSTID_DATA_DIR", t.TempDir())
	t.Setenv("TRUSTID_CONFIG", "")
	ctx := context.Background()
	a, err := openApp(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.store.Citizens().Create(ctx, &store.Citizen{ID: "c1", IDNumber: "110101199003071234", Name: "Zhang San"}); err != nil {
		t.Fatal(err)
	}
	nums, err := newNetNumbers(a)
	if err != nil {
		t.Fatal(err)
	}
	nn, err := nums.Ensure(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := audit.New(audit.Config{Store: a.store.Audit()})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i, e := range []*store.AuditEvent{
		{Actor: "citizen:c1", Action: "login.face", Subject: "c1", Object: "bank", Outcome: "ok", Detail: map[string]string{"acr": "urn:trustid:acr:face+liveness"}},
		{Actor: "system", Action: "login.face", Subject: "c1", Object: "bank", Outcome: "fail"},
		{Actor: "client:bank", Action: "oidc.authorize", Subject: "c1", Object: "bank", Outcome: "ok", Detail: map[string]string{"acr": "urn:trustid:acr:face+liveness"}},
		{Actor: "citizen:c1", Action: "oidc.consent.claims", Subject: "c1", Object: "bank", Outcome: "ok"},
		{Actor: "client:hotel-1", Action: "cert.verify", Subject: "c1", Object: "serial-1", Outcome: "ok", Detail: map[string]string{"purpose": "check_in", "role": "hotel"}},
		{Actor: "client:bank", Action: "oidc.authorize", Subject: "someone-else", Object: "bank", Outcome: "ok"},
	} {
		e.At = t0.Add(time.Duration(i) * time.Minute)
		if err := rec.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	a.Close() // the command opens the store itself

	exports := func() []*store.AuditEvent {
		a, err := openApp(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		evs, err := a.store.Audit().ListBySubject(ctx, "c1", "authlog.", 10)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no reason", []string{"-network-number", nn, "-operator", "alice"}},
		{"no operator", []string{"-network-number", nn, "-reason", "case 7"}},
		{"two names", []string{"-network-number", nn, "-citizen", "c1", "-operator", "alice", "-reason", "case 7"}},
		{"not a network number", []string{"-network-number", "110101199003071234", "-operator", "alice", "-reason", "case 7"}},
		{"unknown network number", []string{"-network-number", "9" + nn[1:], "-operator", "alice", "-reason", "case 7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := authLog(ctx, tc.args, &out); err == nil || out.Len() != 0 {
				t.Fatalf("err = %v, output %q", err, out.String())
			}
		})
	}
	if n := len(exports()); n != 0 {
		t.Fatalf("%d export events after refused requests", n)
	}
	for _, by := range [][]string{{"-network-number", nn}, {"-id-number", "110101199003071234"}} {
		var out bytes.Buffer
		if err := authLog(ctx, append(by, "-operator", "alice", "-reason", "court order 2026/17"), &out); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Citizen       string            `json:"citizen"`
			NetworkNumber string            `json:"network_number"`
			Entries       []audit.AuthEntry `json:"entries"`
		}
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Citizen != "c1" || got.NetworkNumber != nn || len(got.Entries) != 4 {
			t.Fatalf("export %s", out.String())
		}
		// Newest first: the certificate check, the authorisation, the failed and the good login.
		want := []audit.AuthEntry{
			{Kind: "certificate", Party: "client:hotel-1", Method: "verify", Purpose: "check_in", Role: "hotel", Result: "ok"},
			{Kind: "authorize", Party: "client:bank", ACR: "urn:trustid:acr:face+liveness", Result: "ok"},
			{Kind: "login", Party: "client:bank", Method: "face", Result: "fail"},
			{Kind: "login", Party: "client:bank", Method: "face", ACR: "urn:trustid:acr:face+liveness", Result: "ok"},
		}
		for i, w := range want {
			g := got.Entries[i]
			g.At, g.Seq = time.Time{}, 0
			if g != w {
				t.Errorf("entry %d = %+v, want %+v", i, g, w)
			}
		}
	}
	evs := exports()
	if len(evs) != 2 {
		t.Fatalf("%d export events, want 2", len(evs))
	}
	if e := evs[0]; e.Actor != "operator:alice" || e.Action != "authlog.export" || e.Detail["reason"] != "court order 2026/17" || e.Detail["entries"] != "4" || e.Object != nn {
		t.Fatalf("export event %+v", e)
	}
}
