package store

import "context"

// ExecForTest runs one statement as is, for tests and benchmarks that seed
// tables in bulk faster than the store's methods could.
func (db *DB) ExecForTest(ctx context.Context, query string, args ...any) error {
	return db.gorm.WithContext(ctx).Exec(query, args...).Error
}

// MigrateToForTest migrates up to version only, so that a test can write
// rows as an older release did and then migrate them.
func (db *DB) MigrateToForTest(ctx context.Context, version int) error {
	return db.migrateTo(ctx, version)
}
