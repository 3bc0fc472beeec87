package dispatcher_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/storetest"
)

// testStore is what the tests need of a store: the delivery queue, and
// Call Events to deliver to.
type testStore interface {
	callevents.DeliveryStore
	callevents.CallEventStore
}

// backend opens a fresh, empty store for one test.
type backend struct {
	name string
	open func(t *testing.T) testStore
}

// backends are the stores the tests run on: embedded SQLite always, and
// MariaDB/MySQL when TEST_MYSQL_DSN is set (storetest.MySQLTestDSN skips
// otherwise, and fails under CI=true).
var backends = []backend{
	{"sqlite", sqliteStore},
	{"mysql", func(t *testing.T) testStore { return openStore(t, storetest.MySQLTestDSN(t)) }},
}

// forEachStore runs f as a parallel subtest for every backend.
func forEachStore(t *testing.T, f func(t *testing.T, st testStore)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, b.open(t))
		})
	}
}

// sqliteStore opens an empty embedded store: for the tests that run on
// one backend only, as those that never reach the store.
func sqliteStore(t *testing.T) testStore {
	return openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "callevents.db"))
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

// faultyStore is a real store with failures injected. Each Func, when
// set, runs before its method; an error it returns is returned instead,
// the store untouched, as a transaction that failed leaves it.
type faultyStore struct {
	testStore
	ClaimDueFunc       func(c callevents.Claim) error
	RecordAttemptsFunc func(outcomes []callevents.AttemptOutcome) error
}

func (s *faultyStore) ClaimDue(ctx context.Context, c callevents.Claim) ([]callevents.Delivery, error) {
	if s.ClaimDueFunc != nil {
		if err := s.ClaimDueFunc(c); err != nil {
			return nil, err
		}
	}
	return s.testStore.ClaimDue(ctx, c)
}

func (s *faultyStore) RecordAttempts(ctx context.Context, worker string, outcomes []callevents.AttemptOutcome) error {
	if s.RecordAttemptsFunc != nil {
		if err := s.RecordAttemptsFunc(outcomes); err != nil {
			return err
		}
	}
	return s.testStore.RecordAttempts(ctx, worker, outcomes)
}
