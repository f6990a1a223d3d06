package web

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/trustid/trustid/certs"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
)

// Session is the citizen signed in with this browser, as the OIDC
// provider's browser session records it.
type Session struct {
	// SID identifies the sign-in.
	SID       string
	CitizenID string
	ACR       string
	AuthTime  time.Time
}

// Sessions finds the browser session of a request (cmd wires it to the
// OIDC provider's session cookie).
type Sessions interface {
	// Session returns ErrNoSession when r has no signed-in session, and
	// any other error when the session could not be read (a store fault,
	// answered 503: a fault is not "sign in").
	Session(r *http.Request) (Session, error)
}

// ErrNoSession: the request has no signed-in citizen session.
var ErrNoSession = errors.New("web: no signed-in session")

// CitizenNamer gives a citizen's record (store.CitizenStore satisfies it).
type CitizenNamer interface {
	Get(ctx context.Context, id string) (*store.Citizen, error)
}

// Consents lists and deletes a citizen's consents (store.ConsentStore
// satisfies it).
type Consents interface {
	ListByCitizen(ctx context.Context, citizenID string) ([]*store.Consent, error)
	Delete(ctx context.Context, citizenID, clientID string) error
}

// ClientNamer reads client records for their display names
// (store.ClientStore satisfies it).
type ClientNamer interface {
	Get(ctx context.Context, id string) (*store.Client, error)
}

// Passkeys lists and removes a citizen's passkeys (store.PasskeyStore
// satisfies it).
type Passkeys interface {
	ListByCitizen(ctx context.Context, citizenID string) ([]*store.Passkey, error)
	Get(ctx context.Context, credentialID []byte) (*store.Passkey, error)
	Delete(ctx context.Context, credentialID []byte) error
}

// CertLog lists the certificate events of a citizen (*certs.Service
// satisfies it).
type CertLog interface {
	Log(ctx context.Context, citizenID string, limit int) ([]certs.LogEntry, error)
}

type appView struct {
	ClientID, Name string
	Scopes         []string
	Granted        time.Time
}

type passkeyView struct {
	ID      string // base64url credential id
	Name    string
	Created time.Time
}

func (s *Site) accountPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess, err := s.session(r)
	if httperr.IsUnavailable(err) {
		// The session store's fault, drawn as the site's error page with
		// the standard headers (Retry-After) and log line.
		httperr.HandlePage(s.cfg.Logger, func(http.ResponseWriter, *http.Request) error { return err }, s.errorPage).ServeHTTP(w, r)
		return
	}
	if err != nil {
		m := map[string]string{"Title": "account.title", "Text": "account.signin"}
		if s.cfg.Issuer != "" {
			m["Link"], m["LinkText"] = s.cfg.Prefix+PathAccount+"/signin", "account.signin.link"
		}
		s.render(w, r, http.StatusUnauthorized, "message", m)
		return
	}
	if r.URL.Query().Has("code") {
		// Back from the account sign-in: drop the unused code from the address.
		http.Redirect(w, r, s.cfg.Prefix+PathAccount, http.StatusSeeOther)
		return
	}
	d := map[string]any{}
	if s.cfg.Certificates {
		d["Holder"] = s.holderView()
	}
	if s.cfg.Citizens != nil {
		if c, err := s.cfg.Citizens.Get(ctx, sess.CitizenID); err == nil {
			d["Name"] = c.Name
		}
	}
	if s.cfg.Consents != nil {
		cons, err := s.cfg.Consents.ListByCitizen(ctx, sess.CitizenID)
		if err != nil {
			s.cfg.Logger.Warn("web: consents", "err", err)
		}
		var apps []appView
		for _, c := range cons {
			a := appView{ClientID: c.ClientID, Name: c.ClientID, Scopes: c.Scopes, Granted: c.GrantedAt}
			if s.cfg.Clients != nil {
				if cl, err := s.cfg.Clients.Get(ctx, c.ClientID); err == nil && cl.Name != "" {
					a.Name = cl.Name
				}
			}
			apps = append(apps, a)
		}
		sort.Slice(apps, func(i, j int) bool { return apps[i].Granted.After(apps[j].Granted) })
		d["Apps"], d["HasApps"] = apps, true
		s.rulesAccount(ctx, s.language(w, r), sess.CitizenID, d, cons)
	} else {
		s.rulesAccount(ctx, s.language(w, r), sess.CitizenID, d, nil)
	}
	if s.cfg.Passkeys != nil {
		pks, err := s.cfg.Passkeys.ListByCitizen(ctx, sess.CitizenID)
		if err != nil {
			s.cfg.Logger.Warn("web: passkeys", "err", err)
		}
		var out []passkeyView
		for _, p := range pks {
			out = append(out, passkeyView{ID: base64.RawURLEncoding.EncodeToString(p.CredentialID), Name: p.Name, Created: p.CreatedAt})
		}
		d["Passkeys"], d["HasPasskeys"] = out, true
		d["PasskeyRegister"] = s.cfg.PasskeyRegister
	}
	if s.cfg.CertLog != nil {
		log, err := s.cfg.CertLog.Log(ctx, sess.CitizenID, 50)
		if err != nil {
			s.cfg.Logger.Warn("web: certificate log", "err", err)
		}
		d["Log"], d["HasLog"] = log, true
		if cons, err := s.consentsOf(ctx, sess.CitizenID); err == nil {
			s.rulesVerifiers(s.language(w, r), d, cons, log)
		}
	}
	s.rulesTemplates(ctx, sess.CitizenID, d)
	s.rulesSignIns(ctx, sess.CitizenID, d)
	s.render(w, r, http.StatusOK, "account", d)
}

func (s *Site) session(r *http.Request) (Session, error) {
	if s.cfg.Sessions == nil {
		return Session{}, ErrNoSession
	}
	sess, err := s.cfg.Sessions.Session(r)
	if err != nil {
		return Session{}, err
	}
	if sess.CitizenID == "" || sess.SID == "" {
		return Session{}, ErrNoSession
	}
	return sess, nil
}

// errLoginRequired answers the account's endpoints without a session.
var errLoginRequired = httperr.New(http.StatusUnauthorized, "login_required", "sign in first")

// loginRequired is the answer of an account endpoint whose session err
// (from session) or dependency is missing: a session store's fault as
// itself (503), anything else errLoginRequired.
func loginRequired(err error) error {
	if httperr.IsUnavailable(err) {
		return err
	}
	return errLoginRequired
}

// revokeApp deletes the consent of one client (CSRF-checked form post).
func (s *Site) revokeApp(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.session(r)
	if err != nil || s.cfg.Consents == nil {
		return loginRequired(err)
	}
	client := r.PostFormValue("client_id")
	if client == "" || len(client) > 200 {
		return httperr.InvalidRequest("client_id is required")
	}
	err = s.cfg.Consents.Delete(r.Context(), sess.CitizenID, client)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return httperr.Unavailable(fmt.Errorf("web: revoke consent: %w", err))
	}
	if err == nil {
		s.auditRevoke(r, sess.CitizenID, client)
	}
	if r.Header.Get("X-CSRF-Token") == "" { // a plain form: back to the page
		http.Redirect(w, r, s.cfg.Prefix+PathAccount, http.StatusSeeOther)
		return nil
	}
	return httperr.WriteJSON(w, http.StatusOK, map[string]string{"revoked": client})
}

// removePasskey deletes one passkey of the signed-in citizen
// (CSRF-checked post of credential_id, base64url). A credential of another
// citizen is refused and left in place; an unknown one is not found.
func (s *Site) removePasskey(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.session(r)
	if err != nil || s.cfg.Passkeys == nil {
		return loginRequired(err)
	}
	raw := r.PostFormValue("credential_id")
	id, err := base64.RawURLEncoding.DecodeString(raw)
	if raw == "" || len(raw) > 1400 || err != nil || len(id) == 0 {
		return httperr.InvalidRequest("credential_id must be a base64url credential id")
	}
	ctx := r.Context()
	pk, err := s.cfg.Passkeys.Get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httperr.NotFound("no such passkey").WithCause(err)
	case err != nil:
		return httperr.Unavailable(fmt.Errorf("web: remove passkey: %w", err))
	case pk.CitizenID != sess.CitizenID:
		s.cfg.Logger.Warn("web: remove passkey", "outcome", "refused_foreign")
		return httperr.New(http.StatusForbidden, "not_yours", "this passkey belongs to another account")
	}
	if err := s.cfg.Passkeys.Delete(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return httperr.Unavailable(fmt.Errorf("web: remove passkey: %w", err))
	}
	s.cfg.Logger.Info("web: remove passkey", "outcome", "removed")
	if r.Header.Get("X-CSRF-Token") == "" { // a plain form: back to the page
		http.Redirect(w, r, s.cfg.Prefix+PathAccount, http.StatusSeeOther)
		return nil
	}
	return httperr.WriteJSON(w, http.StatusOK, map[string]string{"removed": raw})
}
