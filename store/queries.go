package store

import "strings"

// The store's raw SQL, every statement in one place. Plain CRUD goes
// through gorm's builder (Where, Updates, CreateInBatches); raw SQL is for
// what the builder cannot say, or says at a cost: the queue's set-wise
// statements (the claim's scan, a move guarded by the lease, INSERT …
// SELECT), MySQL's upserts and locks, and the migrations' bookkeeping.
// Placeholders are gorm's: ? for a value, and for a slice in IN ?.

// claimQuery returns the query that selects claimable deliveries: pending,
// due, of an origin not in skip and no organization's paused one, and with
// no earlier (smaller sequence) delivery of the same order key still
// pending or running unless due before the hold edge; oldest due first.
// The scan walks deliveries_state_next_attempt in order and stops after
// LIMIT matches; the NOT EXISTS probes deliveries_order_hash_sequence, the
// handful of deliveries of one extension, receiver and call. On MySQL the
// claim appends FOR UPDATE SKIP LOCKED: rows another claimer holds are
// passed over, not waited for. That clause locks only the outer rows; the
// subquery is a consistent read, so a row another claimer is taking still
// counts as pending there and holds back the later ones of its key (and
// ClaimDue checks again after the scan: see laterOnes).
func claimQuery(skip, paused int, hold bool, mysql bool) string {
	var b strings.Builder
	b.WriteString(`SELECT ` + deliveryColumns + ` FROM deliveries
WHERE state = ? AND next_attempt_at <= ?`)
	if skip > 0 {
		b.WriteString(` AND origin NOT IN ?`)
	}
	for range paused {
		b.WriteString(` AND NOT (origin = ? AND extension LIKE ?)`)
	}
	b.WriteString(` AND (`)
	if hold {
		b.WriteString(`next_attempt_at <= ? OR `)
	}
	b.WriteString(`NOT EXISTS (SELECT 1 FROM deliveries e
                  WHERE e.order_hash = deliveries.order_hash AND e.sequence < deliveries.sequence AND e.state IN (?, ?)))
ORDER BY next_attempt_at, seq
LIMIT ?`)
	if mysql {
		b.WriteString(" FOR UPDATE SKIP LOCKED")
	}
	return b.String()
}

// The queue's moves (queue.go).
const (
	// finishDeliveriesSQL ends a group of deliveries that recordFinished
	// found held by their worker: state, last status, last error class,
	// finished_at; then the seqs.
	finishDeliveriesSQL = `UPDATE deliveries SET state = ?, lease_until = NULL, claimed_by = '', last_status = ?, last_error = ?, finished_at = ?
	WHERE seq IN ?`

	// recordOutcomeSQL moves one delivery if worker still holds it: the
	// lease check and the move in one statement. Arguments: state, last
	// status, last error class, next attempt (NULL keeps it), finished_at;
	// then id, running, worker.
	recordOutcomeSQL = `UPDATE deliveries SET state = ?, lease_until = NULL, claimed_by = '', last_status = ?, last_error = ?,
	next_attempt_at = COALESCE(?, next_attempt_at), finished_at = ?
	WHERE id = ? AND state = ? AND claimed_by = ?`

	// insertAttemptSQL stores one attempt of the delivery id under the
	// attempt number the worker sent (given twice), or else the one it was
	// claimed as; then at, status, error class, latency in µs, id.
	insertAttemptSQL = `INSERT INTO delivery_attempts (delivery_seq, attempt, at, status_code, error_class, latency_us)
	SELECT seq, CASE WHEN ? > 0 THEN ? ELSE attempts END, ?, ?, ?, ? FROM deliveries WHERE id = ?`
)

// MySQL's order keys (intake.go, maintenance.go); SQLite derives the last
// place of a key from its deliveries.
const (
	// upsertOrderKeysSQL adds to the keys' last places, one (hash, count,
	// now) row per key in place of %s, and locks the key rows until the
	// transaction ends.
	upsertOrderKeysSQL = `INSERT INTO order_keys (order_hash, last_sequence, updated_at) VALUES %s
	ON DUPLICATE KEY UPDATE last_sequence = last_sequence + VALUES(last_sequence), updated_at = VALUES(updated_at)`

	// deleteUnusedOrderKeysSQL deletes the keys among the hashes that no
	// delivery uses and no accept has touched since before.
	deleteUnusedOrderKeysSQL = `DELETE FROM order_keys WHERE order_hash IN ? AND updated_at < ?
	AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.order_hash = order_keys.order_hash)`
)

// MySQL sessions and locks (store.go, tx.go).
const (
	readCommittedSQL = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"

	// lockSQL is a no-op upsert: it write-locks the lock row whether it
	// inserts it or finds it, and needs no second statement for a row that
	// does not exist yet.
	lockSQL = "INSERT INTO locks (name) VALUES (?) ON DUPLICATE KEY UPDATE name = name"
)

// The migrations' bookkeeping (migrate.go); the migrations themselves are
// the files under migrations/.
const (
	sqliteMigrationsTableSQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER  NOT NULL PRIMARY KEY,
	applied_at DATETIME NOT NULL)`

	mysqlMigrationsTableSQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INT      NOT NULL PRIMARY KEY,
	applied_at DATETIME NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`

	// The migration lock is named after the database, so migrating one
	// database does not hold up another on the same server. SHA1 keeps the
	// name within MySQL's 64 characters.
	migrationLockNameSQL    = `CONCAT('callevents.migrate.', SHA1(DATABASE()))`
	getMigrationLockSQL     = `SELECT GET_LOCK(` + migrationLockNameSQL + `, ?)`
	releaseMigrationLockSQL = `DO RELEASE_LOCK(` + migrationLockNameSQL + `)`

	recordMigrationSQL = `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`
	schemaVersionSQL   = `SELECT MAX(version) FROM schema_migrations`
)
