package store_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/callevents/callevents/store/testdb"
)

// TestMain fails the package's tests if any leaves a goroutine behind: a
// *DB not closed (database/sql runs goroutines per pool), or a caller
// still waiting in a group commit. gorm's prepared-statement cache is the
// exception (testdb.IgnoreStoreGoroutines).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testdb.IgnoreStoreGoroutines())
}
