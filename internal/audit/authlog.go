package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/trustid/trustid/internal/store"
)

// AuthEntry is one verification of a citizen: a sign-in, an authorisation
// given to an app, a desk (CIBA) request, or a check of the net
// certificate by a verifier (MPS Order No. 173: the authentication logs
// authorities may obtain).
type AuthEntry struct {
	At time.Time `json:"at"`
	// Kind is "login", "authorize", "backchannel" or "certificate".
	Kind string `json:"kind"`
	// Party is the app or verifier ("client:<id>"), empty for a sign-in
	// started without one.
	Party string `json:"party,omitempty"`
	// Method is the login method ("face", "passkey", ...) or, for a
	// certificate, "certificate".
	Method string `json:"method,omitempty"`
	ACR    string `json:"acr,omitempty"`
	// Purpose and Role are a verifier's stated purpose and role.
	Purpose string `json:"purpose,omitempty"`
	Role    string `json:"role,omitempty"`
	Result  string `json:"result"`
	Seq     int64  `json:"seq"` // the audit event, for the chain check
}

// authKind classifies an audit action as a verification, "" otherwise.
func authKind(action string) (kind, method string) {
	switch {
	case strings.HasPrefix(action, "login."):
		return "login", strings.TrimPrefix(action, "login.")
	case action == "oidc.authorize":
		return "authorize", ""
	case strings.HasPrefix(action, "oidc.ciba."):
		return "backchannel", strings.TrimPrefix(action, "oidc.ciba.")
	case action == "cert.verify" || action == "cert.face_check":
		return "certificate", strings.TrimPrefix(action, "cert.")
	}
	return "", ""
}

// AuthLog lists the verifications of a citizen from the audit log, newest
// first, at most limit audit events read (0: the store's default page).
func AuthLog(ctx context.Context, st store.AuditStore, citizenID string, limit int) ([]AuthEntry, error) {
	if citizenID == "" {
		return nil, fmt.Errorf("audit: auth log: no citizen")
	}
	evs, err := st.ListBySubject(ctx, citizenID, "", limit)
	if err != nil {
		return nil, fmt.Errorf("audit: auth log: %w", err)
	}
	out := []AuthEntry{}
	for _, e := range evs {
		kind, method := authKind(e.Action)
		if kind == "" {
			continue
		}
		a := AuthEntry{At: e.At.UTC(), Kind: kind, Method: method, Result: e.Outcome, Seq: e.Seq,
			ACR: e.Detail["acr"], Purpose: e.Detail["purpose"], Role: e.Detail["role"]}
		switch {
		case strings.HasPrefix(e.Actor, "client:"):
			a.Party = e.Actor
		case e.Object != "" && kind != "certificate":
			a.Party = "client:" + e.Object
		}
		out = append(out, a)
	}
	return out, nil
}
