-- Retention purges by age in bounded batches: each table is read by created_at.
CREATE INDEX messages_created ON messages (created_at);
CREATE INDEX tickets_created ON tickets (created_at);
CREATE INDEX sessions_created ON sessions (created_at);
