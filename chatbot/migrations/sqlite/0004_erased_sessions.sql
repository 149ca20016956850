-- An erased conversation stays erased: an exchange answered while its conversation was being erased, or any later
-- chat or rating for it, is refused rather than bringing the session back. Only the random session id is kept,
-- never content, and only as long as the retention (the purge deletes these rows by erased_at).
CREATE TABLE erased_sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    erased_at   INTEGER NOT NULL -- unix milliseconds
);
CREATE INDEX erased_sessions_erased ON erased_sessions (erased_at);
