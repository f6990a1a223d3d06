-- Per-client ID token signing algorithm (id_token_signed_response_alg,
-- OpenID Connect Dynamic Client Registration 1.0 section 2): RS256 or
-- ES256, '' for the provider's configured default.

-- +goose Up
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE clients DROP COLUMN id_token_signed_response_alg;
