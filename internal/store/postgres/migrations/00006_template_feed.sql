-- The template change feed (issue 22): every insert or delete of a face
-- template is logged with a sequence number and announced with NOTIFY, so
-- every node's in-memory 1:N index can follow the others' enrolments and
-- deletions (authn/identity.Follower). The notification only wakes the
-- readers; they read the log by sequence, so a missed notification costs
-- latency (until the periodic catch-up), never a change.

-- +goose Up
CREATE TABLE template_changes (
    seq         BIGSERIAL PRIMARY KEY,
    template_id TEXT COLLATE "C" NOT NULL,
    citizen_id  TEXT COLLATE "C" NOT NULL,
    deleted     BOOLEAN NOT NULL,
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX template_changes_at ON template_changes (at);

-- +goose StatementBegin
CREATE FUNCTION template_feed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO template_changes (template_id, citizen_id, deleted) VALUES (OLD.id, OLD.citizen_id, true);
    ELSE
        INSERT INTO template_changes (template_id, citizen_id, deleted) VALUES (NEW.id, NEW.citizen_id, false);
    END IF;
    -- Delivered at commit; the payload names the schema so that stores
    -- sharing a server (tests, tenants) wake only their own readers.
    PERFORM pg_notify('trustid_templates', current_schema());
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER templates_feed AFTER INSERT OR DELETE ON templates
    FOR EACH ROW EXECUTE FUNCTION template_feed();

-- +goose Down
DROP TRIGGER templates_feed ON templates;
DROP FUNCTION template_feed();
DROP TABLE template_changes;
