-- Room in each heap page of oauth_records for the new version of a row a
-- rotation updates (active = false): the update then stays on the page as
-- a heap-only tuple and adds no entries to the table's three indexes.
-- Every refresh and code exchange makes one such update. Pages written
-- before this migration fill up as before.

-- +goose Up
ALTER TABLE oauth_records SET (fillfactor = 70);

-- +goose Down
ALTER TABLE oauth_records RESET (fillfactor);
