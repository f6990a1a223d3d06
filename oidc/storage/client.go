package storage

import (
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"

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

// GetRotatedHashes returns the previous secret's hash until it expires.
func (c *Client) GetRotatedHashes() [][]byte {
	if len(c.SecretHashOld) == 0 || !c.now().Before(c.SecretOldExpiresAt) {
		return nil
	}
	return [][]byte{c.SecretHashOld}
}

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

// GetTokenEndpointAuthMethod: "none" for public clients, HTTP Basic otherwise.
func (c *Client) GetTokenEndpointAuthMethod() string {
	if c.Public {
		return "none"
	}
	return "client_secret_basic"
}

func (c *Client) GetRequestURIs() []string                     { return nil }
func (c *Client) GetJSONWebKeys() *jose.JSONWebKeySet          { return nil }
func (c *Client) GetJSONWebKeysURI() string                    { return "" }
func (c *Client) GetRequestObjectSigningAlgorithm() string     { return "" }
func (c *Client) GetTokenEndpointAuthSigningAlgorithm() string { return "" }
