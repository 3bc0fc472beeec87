package dispatcher_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/storetest"
)

// The behaviour tests run on the real stores: embedded SQLite always, and
// MariaDB/MySQL when TEST_MYSQL_DSN is set (storetest.MySQLTestDSN skips
// otherwise, and fails under CI=true).
func init() {
	backends = append(backends,
		backend{"sqlite", func(t *testing.T) testStore {
			return openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "callevents.db"))
		}},
		backend{"mysql", func(t *testing.T) testStore {
			return openStore(t, storetest.MySQLTestDSN(t))
		}},
	)
}

func openStore(t *testing.T, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn, store.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}
