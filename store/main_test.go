package store_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any leaves a goroutine behind: a
// *DB not closed (database/sql runs goroutines per pool), or a caller
// still waiting in a group commit. gorm's prepared-statement cache is the
// exception: its expiry goroutine never ends, by gorm's design
// (gorm/internal/lru.NewLRU), one per SQLite *DB.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("gorm.io/gorm/internal/lru.NewLRU[...].func1"))
}
