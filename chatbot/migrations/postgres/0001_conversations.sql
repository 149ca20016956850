-- Sessions, their messages and the tickets opened when the bot hands over to a person.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_type   TEXT NOT NULL,
    language    TEXT NOT NULL,
    created_at  BIGINT NOT NULL -- unix milliseconds
);

CREATE TABLE messages (
    id          BIGSERIAL PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    role        TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content     TEXT NOT NULL,
    intent      TEXT,
    confidence  DOUBLE PRECISION,
    model       TEXT,
    ticket_id   TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX messages_session ON messages (session_id, id);

CREATE TABLE tickets (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    intent      TEXT NOT NULL,
    user_type   TEXT NOT NULL,
    language    TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX tickets_session ON tickets (session_id);
