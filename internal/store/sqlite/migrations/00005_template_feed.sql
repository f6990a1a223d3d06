-- The template change feed (issue 22), as in the PostgreSQL store: every
-- insert or delete of a face template is logged with a sequence number, so
-- an index built in another process on the same file can follow it (SQLite
-- has no notifications; readers poll).

-- +goose Up
CREATE TABLE template_changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    template_id TEXT NOT NULL,
    citizen_id  TEXT NOT NULL,
    deleted     INTEGER NOT NULL,
    at          INTEGER NOT NULL DEFAULT (CAST(strftime('%s','now') AS INTEGER) * 1000000)
);
CREATE INDEX template_changes_at ON template_changes (at);

-- +goose StatementBegin
CREATE TRIGGER templates_feed_insert AFTER INSERT ON templates BEGIN
    INSERT INTO template_changes (template_id, citizen_id, deleted) VALUES (NEW.id, NEW.citizen_id, 0);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER templates_feed_delete AFTER DELETE ON templates BEGIN
    INSERT INTO template_changes (template_id, citizen_id, deleted) VALUES (OLD.id, OLD.citizen_id, 1);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER templates_feed_delete;
DROP TRIGGER templates_feed_insert;
DROP TABLE template_changes;
