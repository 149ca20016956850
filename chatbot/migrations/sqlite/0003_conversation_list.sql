-- Agents list conversations newest first, a page at a time, by (created_at, id): one index range per page, ties
-- included. It serves the retention purge's reads by created_at as well as the index it replaces.
DROP INDEX sessions_created;
CREATE INDEX sessions_created_id ON sessions (created_at, id);
