package dispatcher_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/callevents/callevents/store/testdb"
)

// TestMain fails the package when a goroutine outlives its tests: every
// dispatcher, receiver and store a test starts must be stopped by the
// time it ends (but for gorm's statement cache, testdb.IgnoreStoreGoroutines).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testdb.IgnoreStoreGoroutines())
}
