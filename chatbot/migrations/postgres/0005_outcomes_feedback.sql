-- What a conversation came to, and what customers said of the answers.

-- The answer of each exchange gets an id the customer rates it by (older answers have none and cannot be rated).
-- No index of its own: a rating names its conversation too, whose few messages messages_session finds, and an
-- index here would cost every exchange a write.
ALTER TABLE messages ADD COLUMN exchange_id TEXT;

-- topic: the intent of the conversation's first answer that is not small talk (NULL while there is none).
-- outcome: resolved, escalated or abandoned, once decided.
ALTER TABLE sessions ADD COLUMN topic TEXT;
ALTER TABLE sessions ADD COLUMN outcome TEXT;

-- Conversations are decided from the messages written since the last decision (messages_created finds them), not
-- from an index on each session's last activity, which every exchange would have to update. Conversations whose
-- last message predates this migration are not decided, so an upgrade does not count months of them at once.
CREATE TABLE outcome_watermark (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    decided_before  BIGINT NOT NULL -- unix milliseconds: conversations idle since before this are decided
);
INSERT INTO outcome_watermark (id, decided_before) VALUES (1, (extract(epoch from now()) * 1000)::bigint);

-- One rating per answer. The comment is the customer's words: erased with the conversation, purged with the
-- retention like messages.
CREATE TABLE feedback (
    exchange_id  TEXT PRIMARY KEY NOT NULL,
    session_id   TEXT NOT NULL REFERENCES sessions (id),
    rating       TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment      TEXT,
    intent       TEXT NOT NULL,
    user_type    TEXT NOT NULL,
    created_at   BIGINT NOT NULL -- unix milliseconds
);
CREATE INDEX feedback_session ON feedback (session_id, created_at);
CREATE INDEX feedback_created ON feedback (created_at);
