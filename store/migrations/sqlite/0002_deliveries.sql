-- The delivery queue: reported call activity (for dedupe), one delivery per
-- request owed to a Call Event, and every attempt made. Times are UTC with
-- microseconds, written as "2006-01-02 15:04:05.999999+00:00" text, which
-- sorts and compares as time (the fraction is cut short, and '+' sorts
-- below '.' and every digit).
--
-- The queue indexes are chosen so that a claim costs the same with a
-- thousand or a million finished rows in the table: each finished row
-- leaves the ranges the claim reads.

CREATE TABLE IF NOT EXISTS call_activities (
    -- SHA-256 of CallActivity.DedupeKey(), hex: the primary key makes a
    -- second report of the same activity add nothing.
    dedupe_hash TEXT     NOT NULL PRIMARY KEY,
    accepted_at DATETIME NOT NULL
) WITHOUT ROWID;

-- The cleaner deletes the oldest in chunks.
CREATE INDEX IF NOT EXISTS call_activities_accepted_at ON call_activities (accepted_at);

CREATE TABLE IF NOT EXISTS deliveries (
    -- seq is the global order of acceptance (the rowid: a new row gets
    -- one above every live row): an earlier delivery of an order key has a
    -- smaller seq. id is the public webhook-id.
    seq             INTEGER PRIMARY KEY,
    id              TEXT     NOT NULL UNIQUE,
    -- No foreign key to call_events: a delivery outlives its Call Event in
    -- the log, and the claim cancels deliveries of a deleted one.
    call_event_id   TEXT     NOT NULL,
    extension       TEXT     NOT NULL,
    type            INTEGER  NOT NULL,
    call_id         TEXT     NOT NULL,
    payload         TEXT     NOT NULL,
    -- Kept whole for the log; indexed through order_hash (SHA-256, hex),
    -- the same as on MySQL.
    order_key       TEXT     NOT NULL,
    order_hash      TEXT     NOT NULL,
    -- pending, running, delivered, failed or cancelled.
    state           TEXT     NOT NULL,
    attempts        INTEGER  NOT NULL DEFAULT 0,
    next_attempt_at DATETIME NOT NULL,
    -- Set while running, with the worker that holds the lease.
    lease_until     DATETIME,
    claimed_by      TEXT     NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL,
    -- Set exactly while the state is delivered, failed or cancelled.
    finished_at     DATETIME,
    last_status     INTEGER  NOT NULL DEFAULT 0,
    last_error      TEXT     NOT NULL DEFAULT ''
);

-- The claim's scan: state = 'pending' AND next_attempt_at <= now, read in
-- (next_attempt_at, seq) order (the rowid is the last column of every
-- index), so LIMIT n stops after n claimable rows. Finished rows sit under
-- other states, out of the range. The rescuer's state = 'running' is a
-- prefix of it too: running rows are at most the claim batches in flight,
-- so no (state, lease_until) index is kept up to date on every claim.
CREATE INDEX IF NOT EXISTS deliveries_state_next_attempt ON deliveries (state, next_attempt_at);
-- The claim's ordering check (an earlier pending or running delivery of
-- the same order key): the earlier deliveries of one receiver and one call,
-- a handful however large the table grows. Without state in the key, state
-- changes leave this index alone.
CREATE INDEX IF NOT EXISTS deliveries_order_hash_seq ON deliveries (order_hash, seq);
-- The cleaner: finished_at is set only on finished rows, so the range
-- finished_at < before holds nothing else.
CREATE INDEX IF NOT EXISTS deliveries_finished_at ON deliveries (finished_at);
-- The log: an extension's deliveries newest first, optionally filtered by
-- state or call id on the way.
CREATE INDEX IF NOT EXISTS deliveries_extension_seq ON deliveries (extension, seq);
-- The log filtered by Call Event, and cancelling a disabled or deleted
-- Call Event's pending deliveries.
CREATE INDEX IF NOT EXISTS deliveries_call_event_id_seq ON deliveries (call_event_id, seq);

CREATE TABLE IF NOT EXISTS delivery_attempts (
    seq          INTEGER PRIMARY KEY,
    delivery_seq INTEGER  NOT NULL REFERENCES deliveries (seq) ON DELETE CASCADE,
    attempt      INTEGER  NOT NULL,
    at           DATETIME NOT NULL,
    -- 0 when there was no HTTP response.
    status_code  INTEGER  NOT NULL,
    error_class  TEXT     NOT NULL DEFAULT '',
    latency_us   INTEGER  NOT NULL
);

-- A delivery's history in order (rowid appended), the cleaner's delete by
-- delivery, and the foreign key's check when a delivery is deleted.
CREATE INDEX IF NOT EXISTS delivery_attempts_delivery_seq ON delivery_attempts (delivery_seq);
