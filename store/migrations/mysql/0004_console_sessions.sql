-- Admin console sessions (SPEC.md §10): SHA-256 of the session id, hex,
-- as for access tokens. A client's sessions go with it.
CREATE TABLE IF NOT EXISTS console_sessions (
    hash       CHAR(64)    NOT NULL,
    client_id  VARCHAR(64) NOT NULL,
    expires_at DATETIME    NOT NULL,
    PRIMARY KEY (hash),
    KEY console_sessions_expires_at (expires_at),
    KEY console_sessions_client_id (client_id),
    CONSTRAINT console_sessions_client_id_fk FOREIGN KEY (client_id)
        REFERENCES api_clients (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
