-- What a conversation came to, and what customers said of the answers.

-- The answer of each exchange gets an id the customer rates it by (older answers have none and cannot be rated).
ALTER TABLE messages ADD COLUMN exchange_id TEXT;
CREATE UNIQUE INDEX messages_exchange ON messages (exchange_id);

-- last_active_at: when the conversation last had a message (it is decided once idle for --conversation-idle).
-- topic: the intent of its first answer that is not small talk (NULL while there is none).
-- outcome: resolved, escalated or abandoned once decided; conversations from before this migration are marked
-- 'untracked' rather than all decided (and counted) at once on the first sweep after an upgrade.
ALTER TABLE sessions ADD COLUMN last_active_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN topic TEXT;
ALTER TABLE sessions ADD COLUMN outcome TEXT;
UPDATE sessions SET last_active_at = created_at, outcome = 'untracked';
CREATE INDEX sessions_undecided ON sessions (last_active_at) WHERE outcome IS NULL;

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
