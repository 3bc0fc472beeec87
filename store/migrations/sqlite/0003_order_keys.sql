-- Order keys gain the Call Event's extension (SPEC.md §6): one
-- organization's failing receiver no longer holds back another's on the
-- same host. Each delivery gets its place within its key (sequence, sent as
-- X-CallEvents-Sequence) and its receiver origin (for fair share); keys get
-- a row that hands out sequences.
--
-- The old key was "origin call-id", the new one is "extension origin
-- call-id"; callevents_sha256 is registered by the store (SQLite has no
-- SHA-256 of its own) and matches what new rows are hashed with.

ALTER TABLE deliveries ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;

-- Every expression of one UPDATE reads the old values.
UPDATE deliveries
   SET origin    = substr(order_key, 1, instr(order_key, ' ') - 1),
       order_key = extension || ' ' || order_key;

UPDATE deliveries SET order_hash = callevents_sha256(order_key);

-- Places in acceptance order (seq), the order the old claim kept; the old
-- (order_hash, seq) index makes each count a short range.
UPDATE deliveries
   SET sequence = (SELECT COUNT(*) FROM deliveries e
                   WHERE e.order_hash = deliveries.order_hash AND e.seq <= deliveries.seq);

-- One row per order key with its last sequence handed out. An accepting
-- transaction updates it (SQLite: under the write lock; MySQL: holding the
-- row lock until commit), so sequences follow commit order.
CREATE TABLE IF NOT EXISTS order_keys (
    order_hash    TEXT     NOT NULL PRIMARY KEY,
    last_sequence INTEGER  NOT NULL,
    -- The last time a sequence was handed out: the cleaner deletes keys
    -- idle for the retention and without deliveries.
    updated_at    DATETIME NOT NULL
) WITHOUT ROWID;

INSERT INTO order_keys (order_hash, last_sequence, updated_at)
SELECT order_hash, MAX(sequence), MAX(created_at) FROM deliveries GROUP BY order_hash;

CREATE INDEX IF NOT EXISTS order_keys_updated_at ON order_keys (updated_at);

-- The claim's ordering check now compares places within the key.
DROP INDEX IF EXISTS deliveries_order_hash_seq;
CREATE INDEX IF NOT EXISTS deliveries_order_hash_sequence ON deliveries (order_hash, sequence);
