-- Order keys gain the Call Event's extension (SPEC.md §6): one
-- organization's failing receiver no longer holds back another's on the
-- same host. Each delivery gets its place within its key (sequence, sent as
-- X-CallEvents-Sequence) and its receiver origin (for fair share). The next
-- place of a key is one after its deliveries' largest (SQLite has one
-- writer, so nothing else can take it meanwhile).
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

-- The claim's ordering check now compares places within the key.
DROP INDEX IF EXISTS deliveries_order_hash_seq;
CREATE INDEX IF NOT EXISTS deliveries_order_hash_sequence ON deliveries (order_hash, sequence);
