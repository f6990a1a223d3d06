-- The 2025 national rules (issue 20): the citizen's 网号 (network number,
-- assigned once, unique, not plaintext identity) and the time of the
-- separate consent to release plaintext identity claims to a client.

-- +goose Up
ALTER TABLE citizens ADD COLUMN network_number TEXT;
CREATE UNIQUE INDEX citizens_network_number ON citizens (network_number);
ALTER TABLE consents ADD COLUMN claims_granted_at INTEGER;

-- +goose Down
DROP INDEX citizens_network_number;
ALTER TABLE citizens DROP COLUMN network_number;
ALTER TABLE consents DROP COLUMN claims_granted_at;
