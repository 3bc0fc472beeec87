-- The delivery queue: reported call activity (for dedupe), one delivery per
-- request owed to a Call Event, and every attempt made. Times are UTC with
-- microseconds (DATETIME(6)): due-ness and leases are compared below the
-- second. Hashes are hex in ascii_bin, a quarter of the index bytes of
-- utf8mb4. Every statement can be re-run (MySQL commits DDL implicitly).
--
-- The queue indexes are chosen so that a claim costs the same with a
-- thousand or a million finished rows in the table: each finished row
-- leaves the ranges the claim reads.

CREATE TABLE IF NOT EXISTS call_activities (
    -- SHA-256 of CallActivity.DedupeKey(): the key itself has four
    -- free-text parts, too long to index whole. The primary key is what
    -- makes a second report of the same activity add nothing.
    dedupe_hash CHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    accepted_at DATETIME(6) NOT NULL,
    PRIMARY KEY (dedupe_hash),
    -- The cleaner deletes the oldest in chunks.
    KEY call_activities_accepted_at (accepted_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS deliveries (
    -- seq is the global order of acceptance: an earlier delivery of an
    -- order key has a smaller seq. id is the public webhook-id.
    seq             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    id              VARCHAR(30)     NOT NULL,
    -- No foreign key to call_events: a delivery outlives its Call Event in
    -- the log, and the claim cancels deliveries of a deleted one.
    call_event_id   VARCHAR(30)     NOT NULL,
    extension       VARCHAR(16)     NOT NULL,
    type            SMALLINT        NOT NULL,
    call_id         VARCHAR(256)    NOT NULL,
    payload         TEXT            NOT NULL,
    -- Scheme and host of a URL of up to 2048 bytes, a space and a call id
    -- of up to 256: kept whole for the log, indexed through order_hash
    -- (SHA-256 of order_key), which fits any index length limit.
    order_key       VARCHAR(2400)   NOT NULL,
    order_hash      CHAR(64)        CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    -- pending, running, delivered, failed or cancelled.
    state           VARCHAR(16)     NOT NULL,
    attempts        INT             NOT NULL DEFAULT 0,
    next_attempt_at DATETIME(6)     NOT NULL,
    -- Set while running, with the worker that holds the lease.
    lease_until     DATETIME(6)     NULL,
    claimed_by      VARCHAR(64)     NOT NULL DEFAULT '',
    created_at      DATETIME(6)     NOT NULL,
    -- Set exactly while the state is delivered, failed or cancelled.
    finished_at     DATETIME(6)     NULL,
    last_status     INT             NOT NULL DEFAULT 0,
    last_error      VARCHAR(64)     NOT NULL DEFAULT '',
    PRIMARY KEY (seq),
    UNIQUE KEY deliveries_id (id),
    -- The claim's scan: state = 'pending' AND next_attempt_at <= now, read
    -- in (next_attempt_at, seq) order (InnoDB appends the primary key), so
    -- LIMIT n stops after n claimable rows, and FOR UPDATE SKIP LOCKED
    -- locks little beyond them. Finished rows sit under other states, out
    -- of the range. The rescuer's state = 'running' is a prefix of it too:
    -- running rows are at most the claim batches in flight, so no
    -- (state, lease_until) index is kept up to date on every claim for it.
    KEY deliveries_state_next_attempt (state, next_attempt_at),
    -- The claim's ordering check (an earlier pending or running delivery
    -- of the same order key): the earlier deliveries of one receiver and
    -- one call, a handful however large the table grows. Without state in
    -- the key, state changes leave this index alone.
    KEY deliveries_order_hash_seq (order_hash, seq),
    -- The cleaner: finished_at is set only on finished rows, so the range
    -- finished_at < before holds nothing else.
    KEY deliveries_finished_at (finished_at),
    -- The log: an extension's deliveries newest first (seq), optionally
    -- filtered by state or call id on the way.
    KEY deliveries_extension_seq (extension, seq),
    -- The log filtered by Call Event, and cancelling a disabled or deleted
    -- Call Event's pending deliveries.
    KEY deliveries_call_event_id_seq (call_event_id, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS delivery_attempts (
    seq          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    delivery_seq BIGINT UNSIGNED NOT NULL,
    attempt      INT             NOT NULL,
    at           DATETIME(6)     NOT NULL,
    -- 0 when there was no HTTP response.
    status_code  INT             NOT NULL,
    error_class  VARCHAR(64)     NOT NULL DEFAULT '',
    latency_us   BIGINT          NOT NULL,
    PRIMARY KEY (seq),
    -- A delivery's history in order (seq appended), and the cleaner's
    -- delete by delivery; the foreign key needs it as well.
    KEY delivery_attempts_delivery_seq (delivery_seq),
    CONSTRAINT delivery_attempts_delivery_seq_fk FOREIGN KEY (delivery_seq)
        REFERENCES deliveries (seq) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
