-- TrustID schema for SQLite. Times are INTEGER microseconds since the Unix
-- epoch (UTC), NULL for "not set". Sealed columns hold seal.Ring ciphertexts.

-- +goose Up
CREATE TABLE citizens (
    id             TEXT PRIMARY KEY,
    id_number_hash BLOB NOT NULL UNIQUE, -- keyed lookup hash
    id_number      BLOB NOT NULL,        -- sealed
    name           TEXT NOT NULL DEFAULT '',
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER,
    updated_at     INTEGER
);

CREATE TABLE templates (
    id            TEXT PRIMARY KEY,
    citizen_id    TEXT NOT NULL REFERENCES citizens (id),
    kind          TEXT NOT NULL,
    model_version TEXT NOT NULL DEFAULT '',
    vector        BLOB NOT NULL, -- sealed little-endian float32s
    photo_hash    BLOB,
    created_at    INTEGER
);
CREATE INDEX templates_citizen ON templates (citizen_id, kind);

CREATE TABLE passkeys (
    credential_id BLOB PRIMARY KEY,
    citizen_id    TEXT NOT NULL REFERENCES citizens (id),
    name          TEXT NOT NULL DEFAULT '',
    credential    BLOB,
    sign_count    INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_citizen ON passkeys (citizen_id);

CREATE TABLE clients (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL DEFAULT '',
    secret_hash            BLOB,
    secret_hash_old        BLOB,
    secret_old_expires_at  INTEGER,
    public                 INTEGER NOT NULL DEFAULT 0,
    first_party            INTEGER NOT NULL DEFAULT 0,
    redirect_uris          TEXT NOT NULL DEFAULT '[]',
    post_logout_uris       TEXT NOT NULL DEFAULT '[]',
    backchannel_logout_uri TEXT NOT NULL DEFAULT '',
    grant_types            TEXT NOT NULL DEFAULT '[]',
    response_types         TEXT NOT NULL DEFAULT '[]',
    scopes                 TEXT NOT NULL DEFAULT '[]',
    claims                 TEXT NOT NULL DEFAULT '[]',
    sector_identifier      TEXT NOT NULL DEFAULT '',
    role                   TEXT NOT NULL DEFAULT '',
    created_at             INTEGER,
    updated_at             INTEGER
);

CREATE TABLE oauth_records (
    kind       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    request_id TEXT NOT NULL DEFAULT '',
    client_id  TEXT NOT NULL DEFAULT '',
    subject    TEXT NOT NULL DEFAULT '',
    active     INTEGER NOT NULL DEFAULT 1,
    data       BLOB NOT NULL, -- sealed
    expires_at INTEGER,
    created_at INTEGER,
    PRIMARY KEY (kind, signature)
);
CREATE INDEX oauth_records_request ON oauth_records (kind, request_id);
CREATE INDEX oauth_records_expires ON oauth_records (expires_at);

CREATE TABLE consents (
    citizen_id TEXT NOT NULL REFERENCES citizens (id),
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL DEFAULT '[]',
    claims     TEXT NOT NULL DEFAULT '[]',
    granted_at INTEGER,
    updated_at INTEGER,
    PRIMARY KEY (citizen_id, client_id)
);
CREATE INDEX consents_client ON consents (client_id);

CREATE TABLE certificates (
    serial        TEXT PRIMARY KEY,
    citizen_id    TEXT NOT NULL REFERENCES citizens (id),
    status        TEXT NOT NULL,
    device_key    BLOB,
    key_id        TEXT NOT NULL DEFAULT '',
    level         TEXT NOT NULL DEFAULT '',
    payload       BLOB,
    issued_at     INTEGER,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    revoke_reason TEXT NOT NULL DEFAULT '',
    status_index  INTEGER NOT NULL UNIQUE
);
CREATE UNIQUE INDEX certificates_one_active ON certificates (citizen_id) WHERE status = 'active';
CREATE INDEX certificates_revoked ON certificates (status, status_index);

CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER,
    actor     TEXT NOT NULL DEFAULT '',
    action    TEXT NOT NULL DEFAULT '',
    subject   TEXT NOT NULL DEFAULT '',
    object    TEXT NOT NULL DEFAULT '',
    outcome   TEXT NOT NULL DEFAULT '',
    detail    TEXT NOT NULL DEFAULT '{}',
    prev_hash BLOB,
    hash      BLOB NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, seq);

CREATE TABLE signing_keys (
    id         TEXT PRIMARY KEY,
    use        TEXT NOT NULL,
    alg        TEXT NOT NULL DEFAULT '',
    private    BLOB NOT NULL, -- sealed PKCS#8
    public     BLOB,
    created_at INTEGER,
    active_at  INTEGER,
    retire_at  INTEGER,
    expires_at INTEGER
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
