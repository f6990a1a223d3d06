package storage

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"

	"github.com/trustid/trustid/internal/clientauth"
	"github.com/trustid/trustid/internal/store"
)

var (
	_ fosite.Client                   = (*Client)(nil)
	_ fosite.ClientWithSecretRotation = (*Client)(nil)
	_ fosite.OpenIDConnectClient      = (*Client)(nil)
)

// Client adapts a store.Client to fosite.
type Client struct {
	*store.Client
	now func() time.Time

	keysOnce sync.Once
	keys     *jose.JSONWebKeySet // parsed JWKS, nil when absent or invalid
}

// NewClient wraps c; now (nil for time.Now) decides whether the rotated secret is still valid.
func NewClient(c *store.Client, now func() time.Time) *Client {
	if now == nil {
		now = time.Now
	}
	return &Client{Client: c, now: now}
}

func (c *Client) GetID() string                 { return c.ID }
func (c *Client) GetHashedSecret() []byte       { return c.SecretHash }
func (c *Client) GetRedirectURIs() []string     { return c.RedirectURIs }
func (c *Client) IsPublic() bool                { return c.Public }
func (c *Client) GetAudience() fosite.Arguments { return nil }
func (c *Client) GetScopes() fosite.Arguments   { return c.Scopes }

// GetRotatedHashes returns the previous secret's hash until it expires
// (the rule of internal/clientauth, which every client-secret check uses).
func (c *Client) GetRotatedHashes() [][]byte { return clientauth.RotatedHashes(c.Client, c.now()) }

// GetGrantTypes defaults to the authorization code and refresh token grants.
func (c *Client) GetGrantTypes() fosite.Arguments {
	if len(c.GrantTypes) == 0 {
		return fosite.Arguments{"authorization_code", "refresh_token"}
	}
	return c.GrantTypes
}

// GetResponseTypes defaults to "code".
func (c *Client) GetResponseTypes() fosite.Arguments {
	if len(c.ResponseTypes) == 0 {
		return fosite.Arguments{"code"}
	}
	return c.ResponseTypes
}

// GetTokenEndpointAuthMethod: "none" for public clients, else the
// registered method, HTTP Basic by default.
func (c *Client) GetTokenEndpointAuthMethod() string {
	switch {
	case c.Public:
		return "none"
	case c.AuthMethod != "":
		return c.AuthMethod
	}
	return "client_secret_basic"
}

// GetJSONWebKeys is the client's registered public key set (private_key_jwt).
// It is parsed once per adapter: fosite asks for it twice per assertion.
func (c *Client) GetJSONWebKeys() *jose.JSONWebKeySet {
	c.keysOnce.Do(func() {
		if ks, err := ParseJWKS(c.JWKS); err == nil {
			c.keys = ks
		}
	})
	return c.keys
}

// GetTokenEndpointAuthSigningAlgorithm is the algorithm of the client's
// first key: its "alg", or ES256 / RS256 / EdDSA by key type.
func (c *Client) GetTokenEndpointAuthSigningAlgorithm() string {
	ks := c.GetJSONWebKeys()
	if ks == nil || len(ks.Keys) == 0 {
		return ""
	}
	return KeyAlg(ks.Keys[0])
}

func (c *Client) GetRequestURIs() []string                 { return nil }
func (c *Client) GetJSONWebKeysURI() string                { return "" }
func (c *Client) GetRequestObjectSigningAlgorithm() string { return "" }

// ParseJWKS parses a public JWK set with at least one valid public key with
// a known signature algorithm.
func ParseJWKS(raw string) (*jose.JSONWebKeySet, error) {
	if raw == "" {
		return nil, errors.New("no key set")
	}
	var ks jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(raw), &ks); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	if len(ks.Keys) == 0 {
		return nil, errors.New("key set has no keys")
	}
	for _, k := range ks.Keys {
		if !k.Valid() || !k.IsPublic() || KeyAlg(k) == "" {
			return nil, fmt.Errorf("key %q: not a valid public signing key", k.KeyID)
		}
	}
	return &ks, nil
}

// KeyAlg is the signature algorithm of a public key: its alg member, or the
// default for its type (ES256 for P-256, ES384 for P-384, RS256 for RSA,
// EdDSA for Ed25519); "" when unknown.
func KeyAlg(k jose.JSONWebKey) string {
	if k.Algorithm != "" {
		return k.Algorithm
	}
	switch pk := k.Key.(type) {
	case *ecdsa.PublicKey:
		switch pk.Curve {
		case elliptic.P256():
			return "ES256"
		case elliptic.P384():
			return "ES384"
		}
	case *rsa.PublicKey:
		return "RS256"
	case ed25519.PublicKey:
		return "EdDSA"
	}
	return ""
}
