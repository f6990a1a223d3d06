-- Net certificates on several devices (issue 23): a citizen may hold one
-- active certificate per device key, listed with a device name and the
-- time of its last accepted verification; the one-active-per-citizen
-- index gives way to a lookup index.

-- +goose Up
DROP INDEX certificates_one_active;
CREATE INDEX certificates_citizen ON certificates (citizen_id, status);
ALTER TABLE certificates ADD COLUMN device_name TEXT NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN last_used_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE certificates DROP COLUMN last_used_at;
ALTER TABLE certificates DROP COLUMN device_name;
DROP INDEX certificates_citizen;
CREATE UNIQUE INDEX certificates_one_active ON certificates (citizen_id) WHERE status = 'active';
