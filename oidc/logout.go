package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/store"
)

// backchannelEvent is the event of a logout token (OIDC Back-Channel Logout 1.0, 2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// logout is the sessions/logout component: RP-initiated logout with its
// confirmation page and back-channel logout. It holds its narrow storage
// (logout_storage.go), the ID token signer and a few hooks of the
// provider's browser session and pages; New builds it.
type logout struct {
	issuer  string
	action  string // the logout endpoint's path, the confirmation's action
	csrfKey []byte
	clients logoutClients
	eph     logoutSessions
	tokens  logoutTokens
	signer  *signer
	http    *http.Client
	log     *slog.Logger
	events  events
	now     func() time.Time
	pages   PageRenderer

	// Hooks of the provider's other concerns.
	session     func(*http.Request) (*browserSession, string, error)
	page        func(w http.ResponseWriter, status int, title, text string, data any)
	clearCookie func(w http.ResponseWriter, name string)
	subject     func(*store.Client, string) string
}

// logout is RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0):
// it ends the browser session, notifies the clients of that session by
// back-channel logout tokens, and returns to post_logout_redirect_uri when
// it exactly matches one registered for the client named by id_token_hint
// or client_id. Without an id_token_hint of the current session, a
// signed-in citizen is asked first (section 2: the OP MUST ask); the
// confirmation form's POST, checked by a CSRF token bound to the session,
// performs the logout. A link on another site therefore cannot sign the
// citizen out.
func (l *logout) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		l.page(w, http.StatusBadRequest, "Sign-out failed", "The request could not be read.", nil)
		return
	}
	hint, redirect, clientID := r.Form.Get("id_token_hint"), r.Form.Get("post_logout_redirect_uri"), r.Form.Get("client_id")
	var hintSID string
	if hint != "" {
		tok, err := l.signer.Decode(ctx, hint)
		var claims jwt.MapClaims
		if tok != nil {
			claims = tok.Claims
		}
		var ve *jwt.ValidationError
		expiredOnly := err != nil && asValidation(err, &ve) && ve.Errors == jwt.ValidationErrorExpired
		if (err != nil && !expiredOnly) || claims == nil || claims["iss"] != l.issuer {
			l.page(w, http.StatusBadRequest, "Sign-out failed", "The id_token_hint is not valid.", nil)
			return
		}
		aud := audiences(claims["aud"])
		if clientID != "" && !slices.Contains(aud, clientID) {
			l.page(w, http.StatusBadRequest, "Sign-out failed", "client_id does not match the id_token_hint.", nil)
			return
		}
		if clientID == "" && len(aud) == 1 {
			clientID = aud[0]
		}
		hintSID, _ = claims["sid"].(string)
	}
	var target *url.URL
	if redirect != "" {
		if clientID == "" {
			l.page(w, http.StatusBadRequest, "Sign-out failed", "post_logout_redirect_uri needs id_token_hint or client_id.", nil)
			return
		}
		c, err := l.clients.Get(ctx, clientID)
		if err != nil || !slices.Contains(c.PostLogoutURIs, redirect) {
			l.page(w, http.StatusBadRequest, "Sign-out failed", "post_logout_redirect_uri is not registered for this client.", nil)
			return
		}
		target, _ = url.Parse(redirect)
	}
	s, id, err := l.session(r)
	if err != nil {
		// The session could not be read: signing out now would clear the
		// cookie while the session and its tokens live on (a success that
		// did not happen). Keep everything and ask for a retry.
		l.log.Error("oidc: logout: read session", "err", err)
		w.Header().Set("Retry-After", retryAfter)
		l.page(w, http.StatusServiceUnavailable, "Sign-out failed", "The service cannot sign you out right now. Please try again in a moment.", nil)
		return
	}
	confirmed := false
	if s != nil && (hint == "" || hintSID != "" && hintSID != s.SID) {
		switch {
		case r.Method != http.MethodPost || r.PostForm.Get("csrf") == "":
			l.confirmLogout(w, r, id, clientID)
			return
		case subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(l.logoutCSRF(id))) != 1:
			l.page(w, http.StatusForbidden, "Request refused", "The form has expired. Please start again.", nil)
			return
		case r.PostForm.Get("decision") != "logout":
			l.page(w, http.StatusOK, "Still signed in", "You are still signed in to TrustID.", nil)
			return
		}
		confirmed = true
	}
	if s != nil {
		if hintSID == "" || hintSID == s.SID || confirmed {
			ended, err := l.endSession(ctx, id)
			if err != nil {
				l.log.Error("oidc: logout", "err", err)
				w.Header().Set("Retry-After", retryAfter)
				l.page(w, http.StatusServiceUnavailable, "Sign-out failed", "The service cannot sign you out right now. Please try again in a moment.", nil)
				return
			}
			if ended != nil { // else a concurrent logout ended it
				l.backchannelLogout(ctx, ended)
				l.events.record(ctx, "citizen:"+ended.Auth.CitizenID, "oidc.logout", ended.Auth.CitizenID, clientID, "ok", nil)
			}
		}
	}
	l.clearCookie(w, cookieSession)
	l.clearCookie(w, cookieLogin)
	if target != nil {
		if st := r.Form.Get("state"); st != "" {
			q := target.Query()
			q.Set("state", st)
			target.RawQuery = q.Encode()
		}
		http.Redirect(w, r, target.String(), http.StatusFound)
		return
	}
	l.page(w, http.StatusOK, "Signed out", "You are signed out of TrustID.", nil)
}

// logoutCSRF is the confirmation form's CSRF token for the browser session
// named by cookie id: a MAC of the id, so only a page that saw the
// session's cookie can post it, and nothing needs storing.
func (l *logout) logoutCSRF(id string) string {
	m := hmac.New(sha256.New, l.csrfKey)
	m.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// confirmLogout asks the citizen whether to sign out, carrying the
// request's parameters to the confirmation's POST.
func (l *logout) confirmLogout(w http.ResponseWriter, r *http.Request, id, clientID string) {
	lp := LogoutPage{CSRF: l.logoutCSRF(id), Action: l.action, Hidden: map[string]string{}}
	for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales"} {
		if v := r.Form.Get(k); v != "" {
			lp.Hidden[k] = v
		}
	}
	if clientID != "" {
		if c, err := l.clients.Get(r.Context(), clientID); err == nil {
			lp.Client = c.Name
			if lp.Client == "" {
				lp.Client = c.ID
			}
		}
	}
	if lr, ok := l.pages.(LogoutRenderer); ok {
		lr.RenderLogout(w, r, lp)
		return
	}
	l.page(w, http.StatusOK, "Sign out?", "", lp)
}

// endSession ends the browser session named by cookie id under its lock
// (sessionLock): it re-reads the session, so grants recorded since the
// caller's read are revoked too, revokes its grants' access tokens and
// deletes it. Tokens first: if they cannot be revoked, the session stays
// so that a retry finds them; a session that cannot be deleted, or a lock
// that expired meanwhile, is an error too (the citizen would see "signed
// out" while the session lives on). It returns the ended session, or nil
// if it was already gone.
func (l *logout) endSession(ctx context.Context, id string) (*browserSession, error) {
	var ended *browserSession
	err := withSessionLock(ctx, l.eph, l.log, id, func(lk *sessionLock) error {
		var s browserSession
		if err := getJSON(ctx, l.eph, sessionKey(id), &s); err != nil {
			if errors.Is(err, ephemeral.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("oidc: load session: %w", err)
		}
		if err := revokeGrants(ctx, l.tokens, &s); err != nil {
			return fmt.Errorf("oidc: revoke access tokens: %w", err)
		}
		if err := lk.held(ctx); err != nil {
			return err
		}
		if err := l.eph.Delete(ctx, sessionKey(id)); err != nil {
			return fmt.Errorf("oidc: delete session: %w", err)
		}
		ended = &s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ended, nil
}

// revokeGrants ends the access tokens of every grant given in the
// browser session (at logout, and when another citizen's sign-in replaces
// the session). Refresh tokens exist only for offline_access, which asks
// for access "even when the End-User is not logged in" (OIDC Core 11), so
// they survive logout; the citizen revokes them per app.
func revokeGrants(ctx context.Context, tokens logoutTokens, s *browserSession) error {
	for _, g := range s.Grants {
		if err := tokens.RevokeAccessToken(ctx, g.ID); err != nil {
			return err
		}
	}
	return nil
}

func asValidation(err error, ve **jwt.ValidationError) bool {
	v, ok := err.(*jwt.ValidationError)
	if ok {
		*ve = v
	}
	return ok
}

func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return a
	}
	return nil
}

// backchannelLogout posts a logout token to every client of the session that
// registered a back-channel logout URI, in parallel, and waits (bounded by
// the HTTP client's timeout) so tests and callers see a settled state.
func (l *logout) backchannelLogout(ctx context.Context, s *browserSession) {
	var wg sync.WaitGroup
	for _, id := range s.Clients {
		c, err := l.clients.Get(ctx, id)
		if err != nil || c.BackchannelLogoutURI == "" {
			continue
		}
		tok, err := l.logoutToken(ctx, c, s)
		if err != nil {
			l.log.Warn("oidc: logout token", "client", c.ID, "err", err)
			continue
		}
		wg.Add(1)
		go func(c *store.Client) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI,
				strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
			if err != nil {
				l.log.Warn("oidc: back-channel logout", "client", c.ID, "err", err)
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := l.http.Do(req)
			if err != nil {
				l.log.Warn("oidc: back-channel logout", "client", c.ID, "err", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
				l.log.Warn("oidc: back-channel logout refused", "client", c.ID, "status", resp.StatusCode)
			}
		}(c)
	}
	wg.Wait()
}

// logoutToken builds the logout token (OIDC Back-Channel Logout 1.0, 2.4).
func (l *logout) logoutToken(ctx context.Context, c *store.Client, s *browserSession) (string, error) {
	now := l.now().UTC()
	claims := jwt.MapClaims{
		"iss":    l.issuer,
		"aud":    []string{c.ID},
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    randomID(),
		"sub":    l.subject(c, s.Auth.CitizenID),
		"sid":    s.SID,
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
	// Signed like the client's ID tokens (Back-Channel Logout 1.0, 2.4).
	tok, _, err := l.signer.Generate(withSigningAlg(ctx, c.IDTokenAlg), claims, &jwt.Headers{Extra: map[string]any{"typ": "logout+jwt"}})
	if err != nil {
		return "", fmt.Errorf("oidc: sign logout token: %w", err)
	}
	return tok, nil
}
