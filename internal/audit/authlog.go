package audit

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/trustid/trustid/internal/httperr"
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

// ExportAuthLog is the lawful-request export of a citizen's authentication
// log: the export is recorded first (actor, the request's reference, how
// many entries), and nothing is returned when that record cannot be
// written. The operator command and the admin API both use it.
func ExportAuthLog(ctx context.Context, rec *Recorder, st store.AuditStore, cit *store.Citizen, actor, reason string, limit int) ([]AuthEntry, error) {
	if actor == "" || strings.TrimSpace(reason) == "" {
		return nil, fmt.Errorf("audit: auth log export: actor and reason are required")
	}
	entries, err := AuthLog(ctx, st, cit.ID, limit)
	if err != nil {
		return nil, err
	}
	if err := rec.Record(ctx, &store.AuditEvent{Actor: actor, Action: "authlog.export", Subject: cit.ID, Object: cit.NetworkNumber,
		Outcome: "ok", Detail: map[string]string{"reason": reason, "entries": fmt.Sprint(len(entries))}}); err != nil {
		return nil, fmt.Errorf("audit the export (nothing exported): %w", err)
	}
	return entries, nil
}

// AuthLogCitizens finds the citizen a lawful request names
// (store.CitizenStore satisfies it).
type AuthLogCitizens interface {
	GetByNetworkNumber(ctx context.Context, networkNumber string) (*store.Citizen, error)
	GetByIDNumber(ctx context.Context, idNumber string) (*store.Citizen, error)
}

// AuthLogAPI is the admin API of the export: GET with network_number or
// id_number, operator and reason, authorised by the admin bearer token.
type AuthLogAPI struct {
	Token    string // the admin token; empty disables the API
	Citizens AuthLogCitizens
	Store    store.AuditStore
	Recorder *Recorder
	Logger   *slog.Logger
}

// ServeHTTP answers {"citizen", "network_number", "entries"}.
func (a AuthLogAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httperr.Handle(a.Logger, func(w http.ResponseWriter, r *http.Request) error {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if a.Token == "" || !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(a.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="admin"`)
			return httperr.Unauthorized("the admin token is required")
		}
		q := r.URL.Query()
		nn, idn, op, reason := q.Get("network_number"), q.Get("id_number"), q.Get("operator"), q.Get("reason")
		if (nn == "") == (idn == "") || op == "" || reason == "" || len(nn) > 64 || len(idn) > 64 || len(op) > 100 || len(reason) > 500 {
			return httperr.InvalidRequest("give one of network_number or id_number, and operator and reason")
		}
		var cit *store.Citizen
		var err error
		if nn != "" {
			cit, err = a.Citizens.GetByNetworkNumber(r.Context(), nn)
		} else {
			cit, err = a.Citizens.GetByIDNumber(r.Context(), idn)
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			return httperr.NotFound("no such citizen").WithCause(err)
		case err != nil:
			return httperr.Unavailable(err)
		}
		entries, err := ExportAuthLog(r.Context(), a.Recorder, a.Store, cit, "operator:"+op, reason, 100000)
		if err != nil {
			return httperr.Unavailable(err)
		}
		return httperr.WriteJSON(w, http.StatusOK, map[string]any{"citizen": cit.ID, "network_number": cit.NetworkNumber, "entries": entries})
	}).ServeHTTP(w, r)
}
