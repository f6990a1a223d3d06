-- TrustID schema for PostgreSQL. Times are timestamptz (microseconds), NULL
-- for "not set". Sealed columns hold seal.Ring ciphertexts. Key columns use
-- the "C" collation so paging order is byte order on every server.

-- +goose Up
CREATE TABLE citizens (
    id             TEXT COLLATE "C" PRIMARY KEY,
    id_number_hash BYTEA NOT NULL UNIQUE, -- keyed lookup hash
    id_number      BYTEA NOT NULL,        -- sealed
    name           TEXT NOT NULL DEFAULT '',
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ
);

CREATE TABLE templates (
    id            TEXT COLLATE "C" PRIMARY KEY,
    citizen_id    TEXT COLLATE "C" NOT NULL REFERENCES citizens (id),
    kind          TEXT NOT NULL,
    model_version TEXT NOT NULL DEFAULT '',
    vector        BYTEA NOT NULL, -- sealed little-endian float32s
    photo_hash    BYTEA,
    created_at    TIMESTAMPTZ
);
CREATE INDEX templates_citizen ON templates (citizen_id, kind);

CREATE TABLE passkeys (
    credential_id BYTEA PRIMARY KEY,
    citizen_id    TEXT COLLATE "C" NOT NULL REFERENCES citizens (id),
    name          TEXT NOT NULL DEFAULT '',
    credential    BYTEA,
    sign_count    BIGINT NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ
);
CREATE INDEX passkeys_citizen ON passkeys (citizen_id);

CREATE TABLE clients (
    id                     TEXT COLLATE "C" PRIMARY KEY,
    name                   TEXT NOT NULL DEFAULT '',
    secret_hash            BYTEA,
    secret_hash_old        BYTEA,
    secret_old_expires_at  TIMESTAMPTZ,
    public                 BOOLEAN NOT NULL DEFAULT FALSE,
    first_party            BOOLEAN NOT NULL DEFAULT FALSE,
    redirect_uris          JSONB NOT NULL DEFAULT '[]',
    post_logout_uris       JSONB NOT NULL DEFAULT '[]',
    backchannel_logout_uri TEXT NOT NULL DEFAULT '',
    grant_types            JSONB NOT NULL DEFAULT '[]',
    response_types         JSONB NOT NULL DEFAULT '[]',
    scopes                 JSONB NOT NULL DEFAULT '[]',
    claims                 JSONB NOT NULL DEFAULT '[]',
    sector_identifier      TEXT NOT NULL DEFAULT '',
    role                   TEXT NOT NULL DEFAULT '',
    created_at             TIMESTAMPTZ,
    updated_at             TIMESTAMPTZ
);

CREATE TABLE oauth_records (
    kind       TEXT COLLATE "C" NOT NULL,
    signature  TEXT COLLATE "C" NOT NULL,
    request_id TEXT COLLATE "C" NOT NULL DEFAULT '',
    client_id  TEXT COLLATE "C" NOT NULL DEFAULT '',
    subject    TEXT NOT NULL DEFAULT '',
    active     BOOLEAN NOT NULL DEFAULT TRUE,
    data       BYTEA NOT NULL, -- sealed
    expires_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ,
    PRIMARY KEY (kind, signature)
);
CREATE INDEX oauth_records_request ON oauth_records (kind, request_id);
CREATE INDEX oauth_records_expires ON oauth_records (expires_at);

CREATE TABLE consents (
    citizen_id TEXT COLLATE "C" NOT NULL REFERENCES citizens (id),
    client_id  TEXT COLLATE "C" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     JSONB NOT NULL DEFAULT '[]',
    claims     JSONB NOT NULL DEFAULT '[]',
    granted_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    PRIMARY KEY (citizen_id, client_id)
);
CREATE INDEX consents_client ON consents (client_id);

CREATE SEQUENCE certificate_status_index;

CREATE TABLE certificates (
    serial        TEXT COLLATE "C" PRIMARY KEY,
    citizen_id    TEXT COLLATE "C" NOT NULL REFERENCES citizens (id),
    status        TEXT NOT NULL,
    device_key    BYTEA,
    key_id        TEXT NOT NULL DEFAULT '',
    level         TEXT NOT NULL DEFAULT '',
    payload       BYTEA,
    issued_at     TIMESTAMPTZ,
    expires_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    revoke_reason TEXT NOT NULL DEFAULT '',
    status_index  BIGINT NOT NULL UNIQUE
);
CREATE UNIQUE INDEX certificates_one_active ON certificates (citizen_id) WHERE status = 'active';
CREATE INDEX certificates_revoked ON certificates (status, status_index);

CREATE TABLE audit_events (
    seq       BIGINT PRIMARY KEY,
    at        TIMESTAMPTZ,
    actor     TEXT NOT NULL DEFAULT '',
    action    TEXT NOT NULL DEFAULT '',
    subject   TEXT NOT NULL DEFAULT '',
    object    TEXT NOT NULL DEFAULT '',
    outcome   TEXT NOT NULL DEFAULT '',
    detail    JSONB NOT NULL DEFAULT '{}',
    prev_hash BYTEA,
    hash      BYTEA NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, seq);

CREATE TABLE signing_keys (
    id         TEXT COLLATE "C" PRIMARY KEY,
    use        TEXT NOT NULL,
    alg        TEXT NOT NULL DEFAULT '',
    private    BYTEA NOT NULL, -- sealed PKCS#8
    public     BYTEA,
    created_at TIMESTAMPTZ,
    active_at  TIMESTAMPTZ,
    retire_at  TIMESTAMPTZ,
    expires_at TIMESTAMPTZ
);
CREATE INDEX signing_keys_use ON signing_keys (use, created_at);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE audit_events;
DROP TABLE certificates;
DROP TABLE consents;
DROP TABLE oauth_records;
DROP TABLE clients;
DROP TABLE passkeys;
DROP TABLE templates;
DROP TABLE citizens;
DROP SEQUENCE certificate_status_index;
