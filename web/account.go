package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/trustid/trustid/certs"
	"github.com/trustid/trustid/certs/qr"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
)

// Session is the citizen signed in with this browser, as the OIDC
// provider's browser session records it.
type Session struct {
	// SID is the session id (the holder key is kept per session).
	SID       string
	CitizenID string
	ACR       string
	AuthTime  time.Time
}

// Sessions finds the browser session of a request (cmd wires it to the
// OIDC provider's session cookie).
type Sessions interface {
	Session(r *http.Request) (Session, bool)
}

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

// CertIssuer issues net certificates (*certs.Issuer satisfies it).
type CertIssuer interface {
	Issue(ctx context.Context, req certs.IssueRequest) (*certs.Issued, error)
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
	sess, ok := s.session(r)
	if !ok {
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
	d := map[string]any{"QR": s.cfg.Certs != nil && s.cfg.Holders != nil}
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

func (s *Site) session(r *http.Request) (Session, bool) {
	if s.cfg.Sessions == nil {
		return Session{}, false
	}
	sess, ok := s.cfg.Sessions.Session(r)
	if !ok || sess.CitizenID == "" || sess.SID == "" {
		return Session{}, false
	}
	return sess, true
}

// holderRecord is the browser session's holder: the device key and the
// certificate issued to it, kept in the ephemeral store under a hash of
// the session id for as long as the certificate or the session lasts.
type holderRecord struct {
	Key     []byte    `json:"k"` // PKCS#8
	Cert    []byte    `json:"c"`
	Expires time.Time `json:"e"`
}

func holderKey(sid string) string {
	h := sha256.Sum256([]byte("trustid/web/holder\x00" + sid))
	return "web:holder:" + base64.RawURLEncoding.EncodeToString(h[:])
}

// holderTTL bounds how long a holder record is kept.
const holderTTL = 8 * time.Hour

// ErrNeedsFreshLogin says the certificate cannot be issued without a
// recent face + liveness login.
var ErrNeedsFreshLogin = errors.New("web: a recent face login is required")

// holder returns the session's holder, issuing a certificate when there
// is none or it is about to expire.
func (s *Site) holder(ctx context.Context, sess Session) (*certs.Holder, time.Time, error) {
	now := s.cfg.Now()
	var rec holderRecord
	b, err := s.cfg.Holders.Get(ctx, holderKey(sess.SID))
	if err == nil && json.Unmarshal(b, &rec) == nil && now.Add(2*time.Minute).Before(rec.Expires) {
		k, err := x509.ParsePKCS8PrivateKey(rec.Key)
		if ek, ok := k.(*ecdsa.PrivateKey); err == nil && ok {
			return &certs.Holder{Cert: rec.Cert, Key: ek, Now: s.cfg.Now, Rand: s.cfg.Rand}, rec.Expires, nil
		}
	} else if err != nil && !errors.Is(err, ephemeral.ErrNotFound) {
		return nil, time.Time{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), s.cfg.Rand)
	if err != nil {
		return nil, time.Time{}, err
	}
	is, err := s.cfg.Certs.Issue(ctx, certs.IssueRequest{CitizenID: sess.CitizenID, AuthTime: sess.AuthTime, ACR: sess.ACR, DeviceKey: &key.PublicKey})
	if errors.Is(err, certs.ErrStaleAuthentication) || errors.Is(err, certs.ErrInsufficientLevel) {
		return nil, time.Time{}, errors.Join(ErrNeedsFreshLogin, err)
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, time.Time{}, err
	}
	rec = holderRecord{Key: der, Cert: is.Cert, Expires: is.Claims.Expires()}
	if b, err := json.Marshal(rec); err == nil {
		if err := s.cfg.Holders.Set(ctx, holderKey(sess.SID), b, min(holderTTL, rec.Expires.Sub(now))); err != nil {
			return nil, time.Time{}, err
		}
	}
	return &certs.Holder{Cert: is.Cert, Key: key, Now: s.cfg.Now, Rand: s.cfg.Rand}, rec.Expires, nil
}

// qrRefresh is how often the page asks for a new presentation: well
// inside certs.DefaultWindow (60 s), so the code on screen always verifies.
const qrRefresh = 45 * time.Second

// accountQR answers a fresh live QR: {png: data URL, text, refresh_in}.
func (s *Site) accountQR(w http.ResponseWriter, r *http.Request) error {
	sess, ok := s.session(r)
	if !ok {
		return errLoginRequired
	}
	if s.cfg.Certs == nil || s.cfg.Holders == nil {
		return httperr.New(http.StatusNotFound, "not_available", "net certificates are not offered here")
	}
	h, exp, err := s.holder(r.Context(), sess)
	if errors.Is(err, ErrNeedsFreshLogin) {
		return httperr.New(http.StatusForbidden, "fresh_login_required", "sign in again with your face to show the certificate").WithCause(err)
	}
	if err != nil {
		// The holder lives in the ephemeral store and comes from the
		// issuer: whatever failed, the page may try again.
		return httperr.Unavailable(fmt.Errorf("web: holder: %w", err))
	}
	text, err := h.Present(nil)
	if err != nil {
		return fmt.Errorf("web: present: %w", err)
	}
	code, err := qr.Encode(text)
	if err != nil {
		return fmt.Errorf("web: present: %w", err)
	}
	png, err := code.PNG(6)
	if err != nil {
		return fmt.Errorf("web: present: %w", err)
	}
	return httperr.WriteJSON(w, http.StatusOK, map[string]any{
		"png":         "data:image/png;base64," + base64.StdEncoding.EncodeToString(png),
		"text":        text,
		"version":     code.Version,
		"refresh_in":  int(qrRefresh.Seconds()),
		"cert_expiry": exp.UTC(),
	})
}

// errLoginRequired answers the account's endpoints without a session.
var errLoginRequired = httperr.New(http.StatusUnauthorized, "login_required", "sign in first")

// revokeApp deletes the consent of one client (CSRF-checked form post).
func (s *Site) revokeApp(w http.ResponseWriter, r *http.Request) error {
	sess, ok := s.session(r)
	if !ok || s.cfg.Consents == nil {
		return errLoginRequired
	}
	client := r.PostFormValue("client_id")
	if client == "" || len(client) > 200 {
		return httperr.InvalidRequest("client_id is required")
	}
	err := s.cfg.Consents.Delete(r.Context(), sess.CitizenID, client)
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
	sess, ok := s.session(r)
	if !ok || s.cfg.Passkeys == nil {
		return errLoginRequired
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
