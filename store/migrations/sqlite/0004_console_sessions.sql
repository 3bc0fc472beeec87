-- Admin console sessions (SPEC.md §10): SHA-256 of the session id, hex,
-- as for access tokens. A client's sessions go with it.
CREATE TABLE IF NOT EXISTS console_sessions (
    hash       TEXT     NOT NULL PRIMARY KEY,
    client_id  TEXT     NOT NULL REFERENCES api_clients (id) ON DELETE CASCADE,
    expires_at DATETIME NOT NULL
);

CREATE INDEX IF NOT EXISTS console_sessions_expires_at ON console_sessions (expires_at);
CREATE INDEX IF NOT EXISTS console_sessions_client_id ON console_sessions (client_id);
