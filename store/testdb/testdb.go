// Package testdb opens stores for tests: a migrated SQLite file in the
// test's temporary folder, or a migrated MariaDB/MySQL database of the
// test's own on the server TEST_MYSQL_DSN names, dropped when the test
// ends (storetest.MySQLTestDSN).
package testdb

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/storetest"
)

// MustOpen opens a fresh, migrated store of dialect (store.DialectSQLite
// or store.DialectMySQL) for tb alone and closes it when tb ends. MySQL
// skips tb without TEST_MYSQL_DSN, and fails it under CI=true.
func MustOpen(tb testing.TB, dialect string) *store.DB {
	tb.Helper()
	return MustOpenDSN(tb, DSN(tb, dialect), store.Options{})
}

// DSN returns the DSN of a fresh, empty database of dialect for tb alone,
// for a test that opens it itself (unmigrated, with options, or twice).
func DSN(tb testing.TB, dialect string) string {
	tb.Helper()
	switch dialect {
	case store.DialectSQLite:
		return "sqlite:" + filepath.Join(tb.TempDir(), "callevents.db")
	case store.DialectMySQL:
		return storetest.MySQLTestDSN(tb)
	}
	tb.Fatalf("testdb: unknown dialect %q", dialect)
	return ""
}

// MustOpenDSN opens dsn with opts, migrates it, and closes it when tb
// ends.
func MustOpenDSN(tb testing.TB, dsn string, opts store.Options) *store.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn, opts)
	if err != nil {
		tb.Fatalf("opening %s: %v", store.Describe(dsn), err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		tb.Fatalf("migrating %s: %v", store.Describe(dsn), err)
	}
	return db
}
