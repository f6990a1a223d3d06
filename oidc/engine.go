package oidc

import (
	"github.com/ory/fosite"

	"github.com/trustid/trustid/internal/store"
)

// OAuth2 returns the provider's fosite engine, for a program that drives
// fosite's flows in-process instead of over HTTP: the lab's benchmark token
// minting (lab/benchmint). The service never calls it.
func (p *Provider) OAuth2() fosite.OAuth2Provider { return p.f }

// NewSession returns an empty grant session of the kind the provider
// stores and decodes.
func NewSession() *Session { return newSession() }

// Subject is the sub client c sees for a citizen: pairwise unless the
// client is first-party (OpenID Connect Core 8.1).
func (p *Provider) Subject(c *store.Client, citizenID string) string {
	return p.claims.subject(c, citizenID)
}
