-- Call Events, API clients and access tokens (InnoDB, utf8mb4).
-- utf8mb4_bin everywhere: ids, hashes and secrets are case-sensitive, and
-- nothing is searched case-insensitively. Times are UTC, whole seconds.
-- MySQL commits DDL implicitly, so each statement is written to be re-run
-- safely should a migration stop halfway.

CREATE TABLE IF NOT EXISTS call_events (
    -- seq orders paging (oldest first) and never changes; id is the public id.
    seq         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    id          VARCHAR(30)     NOT NULL,
    extension   VARCHAR(16)     NOT NULL,
    type        SMALLINT        NOT NULL,
    method      SMALLINT        NOT NULL,
    url         VARCHAR(2048)   NOT NULL,
    status      SMALLINT        NOT NULL,
    note        TEXT            NOT NULL,
    -- Kept in clear: the dispatcher needs it to sign requests (HMAC).
    secret      VARCHAR(128)    NOT NULL DEFAULT '',
    modified_at DATETIME        NOT NULL,
    PRIMARY KEY (seq),
    UNIQUE KEY call_events_id (id),
    -- Serves listing by extension (and type) in seq order, the
    -- per-extension count behind the limit, and the dispatcher's lookup by
    -- (extension, type) with status checked on the at most "limit" rows of
    -- that prefix.
    KEY call_events_extension_type_seq (extension, type, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS api_clients (
    id          VARCHAR(64)  NOT NULL,
    name        VARCHAR(255) NOT NULL,
    scope       VARCHAR(32)  NOT NULL,
    secret_hash VARCHAR(255) NOT NULL,
    created_at  DATETIME     NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS access_tokens (
    -- SHA-256 of the token, hex: a leaked table grants nothing.
    hash       CHAR(64)    NOT NULL,
    client_id  VARCHAR(64) NOT NULL,
    expires_at DATETIME    NOT NULL,
    PRIMARY KEY (hash),
    KEY access_tokens_expires_at (expires_at),
    KEY access_tokens_client_id (client_id),
    CONSTRAINT access_tokens_client_id_fk FOREIGN KEY (client_id)
        REFERENCES api_clients (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per lock name ("extension:0003*210", "first-client"), created on
-- first use. Writers take the row with a locking write before reading what
-- they guard, so a count and the insert that depends on it are atomic.
-- Range locks (SELECT … FOR UPDATE over call_events) would do the same in
-- theory, but contended inserts into a locked range deadlock in storms.
-- SQLite needs no such table: its immediate transactions serialise writers.
CREATE TABLE IF NOT EXISTS locks (
    name VARCHAR(64) NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
