package dispatcher_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives its tests: every
// dispatcher, receiver and store a test starts must be stopped by the
// time it ends.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// gorm's prepared-statement cache (SQLite stores) starts an
		// expiry goroutine that gorm never ends: its lru.go says closing
		// it comes after v2.
		goleak.IgnoreTopFunction("gorm.io/gorm/internal/lru.NewLRU[...].func1"),
	)
}
