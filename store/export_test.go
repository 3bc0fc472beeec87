package store

import "context"

// ExecForTest runs one statement as is, for tests and benchmarks that seed
// tables in bulk faster than the store's methods could.
func (db *DB) ExecForTest(ctx context.Context, query string, args ...any) error {
	return db.gorm.WithContext(ctx).Exec(query, args...).Error
}
