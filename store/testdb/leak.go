package testdb

import "go.uber.org/goleak"

// IgnoreStoreGoroutines is the goleak option for the one goroutine a
// closed store leaves behind: gorm's prepared-statement cache (SQLite
// stores) starts an expiry goroutine that gorm never ends, by its design
// (gorm/internal/lru.NewLRU; its lru.go says closing it comes after v2).
// Every other goroutine a store runs ends with Close.
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testdb.IgnoreStoreGoroutines()) }
func IgnoreStoreGoroutines() goleak.Option {
	return goleak.IgnoreTopFunction("gorm.io/gorm/internal/lru.NewLRU[...].func1")
}
