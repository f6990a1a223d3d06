package oidc

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
)

// browser is the browser-session concern shared by the other components:
// the provider's cookies and the session and login state they name in the
// ephemeral store (read only; the authorizer writes them, logout deletes
// the session).
type browser struct {
	eph    kvGetter
	log    *slog.Logger
	path   string // cookie path: the issuer's path + "/"
	secure bool   // the Secure flag (off only for plain-HTTP development)
}

var _ kvGetter = ephemeral.Store(nil)

func (b *browser) setCookie(w http.ResponseWriter, name, value string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: b.path, MaxAge: int(ttl.Seconds()),
		HttpOnly: true, Secure: b.secure, SameSite: http.SameSiteLaxMode,
	})
}

func (b *browser) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: b.path, MaxAge: -1,
		HttpOnly: true, Secure: b.secure, SameSite: http.SameSiteLaxMode})
}

// sessionOrFault returns the browser session named by the cookie: nil and
// a nil error when there is none, a non-nil error when it could not be read
// (a store fault, never to be taken for "signed out").
func (b *browser) sessionOrFault(r *http.Request) (*browserSession, string, error) {
	c, err := r.Cookie(cookieSession)
	if err != nil || c.Value == "" {
		return nil, "", nil
	}
	var s browserSession
	if err := getJSON(r.Context(), b.eph, sessionKey(c.Value), &s); err != nil {
		if errors.Is(err, ephemeral.ErrNotFound) {
			return nil, "", nil
		}
		return nil, "", fmt.Errorf("oidc: load session: %w", err)
	}
	return &s, c.Value, nil
}

// login returns the login state named by the cookie.
func (b *browser) login(r *http.Request) (*loginState, string, error) {
	c, err := r.Cookie(cookieLogin)
	if err != nil || c.Value == "" {
		return nil, "", ephemeral.ErrNotFound
	}
	var ls loginState
	if err := getJSON(r.Context(), b.eph, loginKey(c.Value), &ls); err != nil {
		return nil, "", err
	}
	return &ls, c.Value, nil
}
