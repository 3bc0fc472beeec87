-- Call Events, API clients and access tokens.
-- Times are UTC, whole seconds, written by the driver as
-- "2006-01-02 15:04:05+00:00" text, which sorts and compares as time.

CREATE TABLE IF NOT EXISTS call_events (
    -- seq orders paging (oldest first) and never changes; id is the public id.
    seq         INTEGER PRIMARY KEY,
    id          TEXT     NOT NULL UNIQUE,
    extension   TEXT     NOT NULL,
    type        INTEGER  NOT NULL,
    method      INTEGER  NOT NULL,
    url         TEXT     NOT NULL,
    status      INTEGER  NOT NULL,
    note        TEXT     NOT NULL DEFAULT '',
    -- Kept in clear: the dispatcher needs it to sign requests (HMAC).
    secret      TEXT     NOT NULL DEFAULT '',
    modified_at DATETIME NOT NULL
);

-- Serves listing by extension (and type) in seq order, the per-extension
-- count behind the limit, and the dispatcher's lookup by (extension, type)
-- with status checked on the at most "limit" rows of that prefix.
CREATE INDEX IF NOT EXISTS call_events_extension_type_seq ON call_events (extension, type, seq);

CREATE TABLE IF NOT EXISTS api_clients (
    id          TEXT     NOT NULL PRIMARY KEY,
    name        TEXT     NOT NULL,
    scope       TEXT     NOT NULL,
    secret_hash TEXT     NOT NULL,
    created_at  DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS access_tokens (
    -- SHA-256 of the token, hex: a leaked table grants nothing.
    hash       TEXT     NOT NULL PRIMARY KEY,
    client_id  TEXT     NOT NULL REFERENCES api_clients (id) ON DELETE CASCADE,
    expires_at DATETIME NOT NULL
);

CREATE INDEX IF NOT EXISTS access_tokens_expires_at ON access_tokens (expires_at);
CREATE INDEX IF NOT EXISTS access_tokens_client_id ON access_tokens (client_id);
