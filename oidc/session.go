package oidc

import (
	"github.com/mohae/deepcopy"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// Session is the fosite session of a grant: the ID token claims (with the
// pairwise sub, acr, amr, auth_time) plus the internal citizen id, which
// never leaves the server, and the browser session id (sid) for logout.
type Session struct {
	openid.DefaultSession
	CitizenID string `json:"citizen_id,omitempty"`
	SID       string `json:"sid,omitempty"`
	// DPoPJKT is the SHA-256 thumbprint of the client key the tokens are
	// bound to (RFC 9449), empty for bearer tokens.
	DPoPJKT string `json:"dpop_jkt,omitempty"`
}

var (
	_ openid.Session            = (*Session)(nil)
	_ fosite.ExtraClaimsSession = (*Session)(nil)
)

// GetExtraClaims adds the confirmation claim of a DPoP-bound token to the
// introspection response, so resource servers can check the proof key.
func (s *Session) GetExtraClaims() map[string]any {
	if s == nil || s.DPoPJKT == "" {
		return nil
	}
	return map[string]any{"cnf": map[string]any{"jkt": s.DPoPJKT}}
}

func newSession() *Session {
	return &Session{DefaultSession: openid.DefaultSession{Claims: &jwt.IDTokenClaims{}, Headers: &jwt.Headers{}}}
}

// Clone implements fosite.Session (DefaultSession's Clone would drop our fields).
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	return deepcopy.Copy(s).(*Session)
}
