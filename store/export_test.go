package store

import (
	"context"

	"gorm.io/gorm"
)

// ExecForTest runs one statement as is, on the connection writes go
// through, for tests and benchmarks that seed tables in bulk faster than
// the store's methods could, or set a pragma of that connection.
func (db *DB) ExecForTest(ctx context.Context, query string, args ...any) error {
	return db.writeSQLite(ctx, func(w *gorm.DB) error { return w.Exec(query, args...).Error })
}

// MigrateToForTest migrates up to version only, so that a test can write
// rows as an older release did and then migrate them.
func (db *DB) MigrateToForTest(ctx context.Context, version int) error {
	return db.migrateTo(ctx, version)
}
