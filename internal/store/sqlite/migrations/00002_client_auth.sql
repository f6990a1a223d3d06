-- Client authentication at the token endpoint: the registered method
-- ('' = client_secret_basic, or none for public clients; client_secret_post;
-- private_key_jwt) and, for private_key_jwt, the client's public JWK set.

-- +goose Up
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN jwks TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE clients DROP COLUMN jwks;
ALTER TABLE clients DROP COLUMN token_endpoint_auth_method;
