-- Order keys gain the Call Event's extension (SPEC.md §6): one
-- organization's failing receiver no longer holds back another's on the
-- same host. Each delivery gets its place within its key (sequence, sent as
-- X-CallEvents-Sequence) and its receiver origin (for fair share); keys get
-- a row that hands out sequences.
--
-- The old key was "origin call-id", the new one is "extension origin
-- call-id". The ALTER is one statement (MySQL 8 has no ADD COLUMN IF NOT
-- EXISTS); every statement after it can be re-run.

CREATE TABLE IF NOT EXISTS order_keys (
    order_hash    CHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    -- The last sequence handed out. An accepting transaction updates the
    -- row and holds its lock until it commits, so a later delivery of the
    -- key can neither take a smaller sequence nor commit first.
    last_sequence BIGINT      NOT NULL,
    -- The last time a sequence was handed out: the cleaner deletes the
    -- keys of the deliveries it deletes when they have none left and were
    -- idle for the retention (no index: it finds them by hash).
    updated_at    DATETIME(6) NOT NULL,
    PRIMARY KEY (order_hash)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

ALTER TABLE deliveries
    ADD COLUMN origin   VARCHAR(2100) NOT NULL DEFAULT '',
    ADD COLUMN sequence BIGINT        NOT NULL DEFAULT 0,
    DROP INDEX deliveries_order_hash_seq,
    -- The claim's ordering check compares places within the key.
    ADD INDEX deliveries_order_hash_sequence (order_hash, sequence);

-- MySQL assigns left to right, each seeing the ones before: origin reads
-- the old key before it is rewritten. origin = '' marks rows not done yet.
UPDATE deliveries
   SET origin    = SUBSTRING_INDEX(order_key, ' ', 1),
       order_key = CONCAT(extension, ' ', order_key)
 WHERE origin = '';

UPDATE deliveries SET order_hash = SHA2(order_key, 256);

-- Places in acceptance order (seq), the order the old claim kept.
UPDATE deliveries d
  JOIN (SELECT seq, ROW_NUMBER() OVER (PARTITION BY order_hash ORDER BY seq) AS n FROM deliveries) r
    ON r.seq = d.seq
   SET d.sequence = r.n;

INSERT INTO order_keys (order_hash, last_sequence, updated_at)
SELECT order_hash, MAX(sequence), MAX(created_at) FROM deliveries GROUP BY order_hash
ON DUPLICATE KEY UPDATE last_sequence = VALUES(last_sequence), updated_at = VALUES(updated_at);
