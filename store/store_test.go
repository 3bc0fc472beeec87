package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/storetest"
	"github.com/callevents/callevents/store/testdb"
)

// backends lists the databases every test below runs on. MySQL tests skip
// (or fail under CI) without TEST_MYSQL_DSN.
var backends = []struct {
	name    string
	dialect string
}{
	{"SQLite", store.DialectSQLite},
	{"MySQL", store.DialectMySQL},
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			storetest.Exercise(t, func(t *testing.T) storetest.Store {
				return testdb.MustOpen(t, b.dialect)
			})
		})
	}
}

func TestOpenRejectsBadDSN(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u@localhost/db",
		"mysql:callevents",
		"mysql://root@127.0.0.1:3306/",
		"mysql://root@127.0.0.1:3306",
		"mysql:///callevents",
		"sqlite:",
		"",
	} {
		_, err := store.Open(context.Background(), dsn, store.Options{})
		if err == nil {
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if !strings.Contains(err.Error(), "sqlite:PATH") || !strings.Contains(err.Error(), "mysql://") {
			t.Fatalf("Open(%q): error %q does not name the accepted forms", dsn, err)
		}
	}
}

func TestOpenMySQLBadPasswordHidesIt(t *testing.T) {
	dsn := testdb.DSN(t, store.DialectMySQL)
	bad := strings.Replace(dsn, "mysql://root@", "mysql://nosuchuser:s3cr3t-pw@", 1)
	if bad == dsn {
		t.Skip("TEST_MYSQL_DSN does not connect as root without a password")
	}
	_, err := store.Open(context.Background(), bad, store.Options{})
	if err == nil {
		t.Fatal("Open with a wrong user succeeded")
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("the error reveals the password: %v", err)
	}
}

func TestOpenSQLiteForms(t *testing.T) {
	dir := t.TempDir()
	for _, dsn := range []string{
		filepath.Join(dir, "bare.db"),
		"sqlite:" + filepath.Join(dir, "prefixed.db"),
		"sqlite://" + filepath.Join(dir, "slashes.db"),
		"sqlite:" + filepath.Join(dir, "params.db") + "?_txlock=deferred&_time_format=sqlite&_pragma=cache_size(-4000)",
	} {
		db := testdb.MustOpenDSN(t, dsn, store.Options{})
		if db.Dialect() != store.DialectSQLite {
			t.Fatalf("Open(%q).Dialect() = %q", dsn, db.Dialect())
		}
		if err := db.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSQLiteLimitAcrossHandles stands in for two processes on one SQLite
// file: the in-process writer queue cannot help there, only the immediate
// transaction can. One handle even asks for deferred transactions, which
// Open overrides.
func TestSQLiteLimitAcrossHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	a := testdb.MustOpenDSN(t, "sqlite:"+path, store.Options{})
	b := testdb.MustOpenDSN(t, "sqlite:"+path+"?_txlock=deferred", store.Options{})
	if got := createConcurrently(t, []*store.DB{a, b}, 20, 10); got != 10 {
		t.Fatalf("%d of 20 creates succeeded with limit 10, want 10", got)
	}
}

// createConcurrently starts n creators on one extension, spread over dbs,
// and returns how many succeeded; any error but 308 fails the test.
func createConcurrently(t *testing.T, dbs []*store.DB, n, limit int) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			c := callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: "0004*100", Type: callevents.EventType(i % 5),
				URL: "https://receiver.example/", Status: callevents.StatusEnabled, Modified: time.Now()}
			err := dbs[i%len(dbs)].CreateCallEvent(context.Background(), c, limit)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case callevents.ErrorCode(err, 0) != callevents.CodeLimitReached:
				t.Errorf("create: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	return created
}

func TestMigrateIsIdempotent(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, testdb.DSN(t, b.dialect), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if v, err := db.SchemaVersion(ctx); err != nil || v != 0 {
				t.Fatalf("SchemaVersion before Migrate = %d, %v; want 0", v, err)
			}
			latest := db.LatestSchemaVersion()
			if latest < 1 {
				t.Fatalf("LatestSchemaVersion = %d", latest)
			}
			for range 2 {
				if err := db.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				if v, err := db.SchemaVersion(ctx); err != nil || v != latest {
					t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, latest)
				}
			}
		})
	}
}

func TestMigrateConcurrently(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := testdb.DSN(t, b.dialect)
			const n = 4
			dbs := make([]*store.DB, n)
			for i := range dbs {
				db, err := store.Open(ctx, dsn, store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				dbs[i] = db
			}
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, db := range dbs {
				wg.Go(func() {
					<-start
					errs[i] = db.Migrate(ctx)
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("migration %d: %v", i, err)
				}
			}
			for _, db := range dbs {
				if v, err := db.SchemaVersion(ctx); err != nil || v != db.LatestSchemaVersion() {
					t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, db.LatestSchemaVersion())
				}
			}
		})
	}
}

// TestInternalErrorsHideSQL closes the database under the store: every
// failure must come back as 151 (read) or 152 (write) with a public
// message free of SQL, the cause kept in the chain for the log.
func TestInternalErrorsHideSQL(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := testdb.MustOpen(t, b.dialect)
			db.Close()
			ext := callevents.Extension("0003*210")
			_, _, findErr := db.FindCallEvents(ctx, callevents.CallEventFilter{Extension: ext})
			_, findClientErr := db.FindClientByID(ctx, "x")
			_, _, findTokenErr := db.FindAccessToken(ctx, "x")
			_, clientsErr := db.FindClients(ctx)
			createErr := db.CreateCallEvent(ctx, callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: ext}, 100)
			_, updateErr := db.UpdateCallEvent(ctx, ext, 0, "x", callevents.CallEventUpdate{}, time.Now())
			_, deleteErr := db.DeleteCallEvents(ctx, callevents.CallEventFilter{Extension: ext})
			_, firstErr := db.CreateFirstClient(ctx, callevents.Client{ID: "x"})
			activity := callevents.CallActivity{CallID: "c", Phase: callevents.PhaseDial, CallerExtension: string(ext)}
			_, acceptErr := db.AcceptActivity(ctx, []callevents.CallActivity{activity}, time.Now(), nil)
			_, claimErr := db.ClaimDue(ctx, callevents.Claim{Worker: "w", N: 10, Now: time.Now(), Lease: time.Minute})
			_, rescueErr := db.RescueExpired(ctx, time.Now())
			_, cleanErr := db.CleanFinished(ctx, time.Now())
			_, _, findDeliveriesErr := db.FindDeliveries(ctx, callevents.DeliveryFilter{Extension: ext})
			_, resendErr := db.ResendDelivery(ctx, ext, "dlv_x", time.Now())
			outcomes := []callevents.AttemptOutcome{{DeliveryID: "dlv_x", Next: callevents.DeliveryDelivered}}
			for _, c := range []struct {
				name string
				err  error
				code callevents.Code
			}{
				{"FindCallEvents", findErr, callevents.CodeRetrieveFailed},
				{"FindClientByID", findClientErr, callevents.CodeRetrieveFailed},
				{"FindAccessToken", findTokenErr, callevents.CodeRetrieveFailed},
				{"FindClients", clientsErr, callevents.CodeRetrieveFailed},
				{"CreateCallEvent", createErr, callevents.CodeUpdateFailed},
				{"UpdateCallEvent", updateErr, callevents.CodeUpdateFailed},
				{"DeleteCallEvents", deleteErr, callevents.CodeUpdateFailed},
				{"CreateFirstClient", firstErr, callevents.CodeUpdateFailed},
				{"CreateClient", db.CreateClient(ctx, callevents.Client{ID: "x"}), callevents.CodeUpdateFailed},
				{"DeleteClient", db.DeleteClient(ctx, "x"), callevents.CodeUpdateFailed},
				{"CreateAccessToken", db.CreateAccessToken(ctx, callevents.AccessToken{Hash: "x", ClientID: "x"}), callevents.CodeUpdateFailed},
				{"DeleteExpiredAccessTokens", db.DeleteExpiredAccessTokens(ctx, time.Now()), callevents.CodeUpdateFailed},
				{"AcceptActivity", acceptErr, callevents.CodeUpdateFailed},
				{"ClaimDue", claimErr, callevents.CodeUpdateFailed},
				{"RecordAttempts", db.RecordAttempts(ctx, "w", outcomes), callevents.CodeUpdateFailed},
				{"ReleaseClaims", db.ReleaseClaims(ctx, "w", []string{"dlv_x"}), callevents.CodeUpdateFailed},
				{"RescueExpired", rescueErr, callevents.CodeUpdateFailed},
				{"CleanFinished", cleanErr, callevents.CodeUpdateFailed},
				{"FindDeliveries", findDeliveriesErr, callevents.CodeRetrieveFailed},
				{"ResendDelivery", resendErr, callevents.CodeUpdateFailed},
			} {
				if got := callevents.ErrorCode(c.err, 0); got != c.code {
					t.Fatalf("%s: got %v (code %d), want code %d", c.name, c.err, got, c.code)
				}
				var coded *callevents.Error
				if !errors.As(c.err, &coded) || coded.Err == nil {
					t.Fatalf("%s: the cause is not kept for the log: %#v", c.name, c.err)
				}
				msg := strings.ToLower(callevents.ErrorMessage(c.err))
				for _, leak := range []string{"select", "insert", "where", "delete", "call_events", "api_clients", "access_tokens", "deliveries", "sql", "database"} {
					if strings.Contains(msg, leak) {
						t.Fatalf("%s: public message %q contains %q", c.name, msg, leak)
					}
				}
			}
		})
	}
}

func TestCreateAccessTokenForUnknownClient(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db := testdb.MustOpen(t, b.dialect)
			err := db.CreateAccessToken(context.Background(), callevents.AccessToken{Hash: strings.Repeat("a", 64), ClientID: "nosuchclient", Expires: time.Now()})
			if !errors.Is(err, callevents.ErrClientNotFound) {
				t.Fatalf("got %v, want ErrClientNotFound", err)
			}
		})
	}
}

func TestTimesAreTruncatedToSeconds(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := testdb.MustOpen(t, b.dialect)
			// .999 would round up on MySQL: truncation must not.
			modified := time.Date(2025, 1, 2, 3, 4, 5, 999_000_000, time.UTC)
			c := callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: "0003*210", URL: "https://receiver.example/",
				Status: callevents.StatusEnabled, Modified: modified}
			if err := db.CreateCallEvent(ctx, c, 100); err != nil {
				t.Fatal(err)
			}
			items, _, err := db.FindCallEvents(ctx, callevents.CallEventFilter{Extension: c.Extension})
			if err != nil {
				t.Fatal(err)
			}
			if want := modified.Truncate(time.Second); len(items) != 1 || !items[0].Modified.Equal(want) {
				t.Fatalf("got %v, want Modified %v", items, want)
			}
			updated, err := db.UpdateCallEvent(ctx, c.Extension, c.Type, c.ID, callevents.CallEventUpdate{}, modified.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if want := modified.Add(time.Hour).Truncate(time.Second); !updated.Modified.Equal(want) {
				t.Fatalf("UpdateCallEvent returned Modified %v, want %v", updated.Modified, want)
			}
		})
	}
}

func TestOpenSQLiteInMemory(t *testing.T) {
	ctx := context.Background()
	db := testdb.MustOpenDSN(t, "sqlite::memory:", store.Options{})
	c := callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: "0003*210", URL: "https://receiver.example/", Modified: time.Now()}
	if err := db.CreateCallEvent(ctx, c, 100); err != nil {
		t.Fatal(err)
	}
	// Another pooled connection would see another, empty database.
	if _, total, err := db.FindCallEvents(ctx, callevents.CallEventFilter{Extension: c.Extension}); err != nil || total != 1 {
		t.Fatalf("FindCallEvents = %d, %v; want 1", total, err)
	}
}

func TestDeliveryConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			storetest.ExerciseDeliveries(t, func(t *testing.T) storetest.DeliveryStore {
				return testdb.MustOpen(t, b.dialect)
			})
		})
	}
}

// TestSQLiteOneConnection runs queue transactions on a file database with
// a pool of one: nothing may wait for a second connection.
func TestSQLiteOneConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, testdb.DSN(t, store.DialectSQLite), store.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c := callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: "0003*210", Type: callevents.DialOut,
		URL: "https://receiver.example/", Status: callevents.StatusEnabled, Modified: time.Now()}
	if err := db.CreateCallEvent(ctx, c, 100); err != nil {
		t.Fatal(err)
	}
	activity := callevents.CallActivity{CallID: "c1", Phase: callevents.PhaseDial, CallerExtension: "0003*210"}
	if n, err := db.AcceptActivity(ctx, []callevents.CallActivity{activity}, time.Now(), nil); err != nil || n.Queued != 1 {
		t.Fatalf("AcceptActivity = %+v, %v", n, err)
	}
	ds, err := db.ClaimDue(ctx, callevents.Claim{Worker: "w", N: 10, Now: time.Now(), Lease: time.Minute})
	if err != nil || len(ds) != 1 {
		t.Fatalf("ClaimDue = %d, %v", len(ds), err)
	}
	err = db.RecordAttempts(ctx, "w", []callevents.AttemptOutcome{{DeliveryID: ds[0].ID, Next: callevents.DeliveryDelivered,
		Attempt: callevents.DeliveryAttempt{Attempt: 1, At: time.Now(), StatusCode: 200}}})
	if err != nil {
		t.Fatal(err)
	}
}

// Deliveries written before order keys had an extension (schema 2) move to
// the new key with their places in it: ordering still holds across the
// upgrade, and the next delivery of the key follows them.
func TestMigrateOrderKeys(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, testdb.DSN(t, b.dialect), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if err := db.MigrateToForTest(ctx, 2); err != nil {
				t.Fatalf("migrating to 2: %v", err)
			}
			at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
			ce := callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: "0003*210", Type: callevents.Hangup,
				Method: callevents.MethodPOST, URL: "https://CRM.example.com:8443/hangup", Status: callevents.StatusEnabled, Modified: at}
			if err := db.CreateCallEvent(ctx, ce, 100); err != nil {
				t.Fatal(err)
			}
			other := ce
			other.ID, other.Extension = callevents.NewCallEventID(), "0004*210"
			if err := db.CreateCallEvent(ctx, other, 100); err != nil {
				t.Fatal(err)
			}
			// As schema 2 wrote them: key "origin call-id", hashed.
			old := func(id, callEventID, ext, callID, state string) {
				t.Helper()
				key := "https://crm.example.com:8443 " + callID
				var finished any
				if state == "delivered" {
					finished = at
				}
				err := db.ExecForTest(ctx, `INSERT INTO deliveries (id, call_event_id, extension, type, call_id, payload, order_key, order_hash,
					state, attempts, next_attempt_at, claimed_by, created_at, finished_at, last_status, last_error)
					VALUES (?, ?, ?, ?, ?, 'CallID=x', ?, ?, ?, 0, ?, '', ?, ?, 0, '')`,
					id, callEventID, ext, int(callevents.Hangup), callID, key, sha256Hex(key), state, at, at, finished)
				if err != nil {
					t.Fatalf("writing a schema-2 delivery: %v", err)
				}
			}
			old("dlv_old1xxxxxxxxxxxxxxxxxxxxxx", ce.ID, "0003*210", "call-1", "delivered")
			old("dlv_old2xxxxxxxxxxxxxxxxxxxxxx", ce.ID, "0003*210", "call-1", "pending")
			old("dlv_old3xxxxxxxxxxxxxxxxxxxxxx", other.ID, "0004*210", "call-1", "pending")
			old("dlv_old4xxxxxxxxxxxxxxxxxxxxxx", ce.ID, "0003*210", "call-2", "pending")
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("migrating to the latest: %v", err)
			}
			if v, _ := db.SchemaVersion(ctx); v != db.LatestSchemaVersion() {
				t.Fatalf("schema version %d, want %d", v, db.LatestSchemaVersion())
			}
			want := map[string]struct {
				key string
				seq int
			}{
				"dlv_old1xxxxxxxxxxxxxxxxxxxxxx": {"0003*210 https://crm.example.com:8443 call-1", 1},
				"dlv_old2xxxxxxxxxxxxxxxxxxxxxx": {"0003*210 https://crm.example.com:8443 call-1", 2},
				"dlv_old3xxxxxxxxxxxxxxxxxxxxxx": {"0004*210 https://crm.example.com:8443 call-1", 1},
				"dlv_old4xxxxxxxxxxxxxxxxxxxxxx": {"0003*210 https://crm.example.com:8443 call-2", 1},
			}
			for _, ext := range []callevents.Extension{"0003*210", "0004*210"} {
				ds, _, err := db.FindDeliveries(ctx, callevents.DeliveryFilter{Extension: ext})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range ds {
					w := want[d.ID]
					if d.OrderKey != w.key || d.Sequence != w.seq {
						t.Errorf("%s: key %q sequence %d, want %q %d", d.ID, d.OrderKey, d.Sequence, w.key, w.seq)
					}
					if d.OrderKey != callevents.OrderKey(d.Extension, ce.URL, d.CallID) {
						t.Errorf("%s: migrated key %q is not what OrderKey computes", d.ID, d.OrderKey)
					}
				}
			}
			// A new Hangup of call 1 takes place 3 of 0003's key and waits for
			// the migrated place 2: the key's hash matches the new rows'.
			hang := callevents.CallActivity{CallID: "call-1", Phase: callevents.PhaseHangup, Status: "ANSWER",
				CallerExtension: "0003*210", CalledNumber: "555"}
			if n, err := db.AcceptActivity(ctx, []callevents.CallActivity{hang}, at, nil); err != nil || n.Queued != 1 {
				t.Fatalf("AcceptActivity = %+v, %v", n, err)
			}
			claimed, err := db.ClaimDue(ctx, callevents.Claim{Worker: "w", N: 10, Now: at.Add(time.Minute), Lease: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			ids := map[string]int{}
			for _, d := range claimed {
				ids[d.ID] = d.Sequence
			}
			if len(claimed) != 3 || ids["dlv_old2xxxxxxxxxxxxxxxxxxxxxx"] != 2 || ids["dlv_old3xxxxxxxxxxxxxxxxxxxxxx"] != 1 || ids["dlv_old4xxxxxxxxxxxxxxxxxxxxxx"] != 1 {
				t.Fatalf("claimed %v, want the three migrated pending ones and not the new Hangup behind place 2", ids)
			}
			for _, d := range claimed {
				o := callevents.AttemptOutcome{DeliveryID: d.ID, Next: callevents.DeliveryDelivered,
					Attempt: callevents.DeliveryAttempt{Attempt: 1, At: at, StatusCode: 200}}
				if err := db.RecordAttempts(ctx, "w", []callevents.AttemptOutcome{o}); err != nil {
					t.Fatal(err)
				}
			}
			claimed, err = db.ClaimDue(ctx, callevents.Claim{Worker: "w", N: 10, Now: at.Add(time.Minute), Lease: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			if len(claimed) != 1 || claimed[0].Sequence != 3 || claimed[0].CallID != "call-1" {
				t.Fatalf("claimed %+v, want the new Hangup at place 3", claimed)
			}
		})
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
