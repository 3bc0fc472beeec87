package store_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/testdb"
)

// tcpProxy forwards connections to a server until down cuts them all and
// refuses new ones, as a stopped server does; up listens again on the same
// address.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, addr: "127.0.0.1:0"}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) up() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", p.target)
			if err != nil {
				client.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, client, server)
			p.mu.Unlock()
			go func() { io.Copy(server, client); server.Close() }()
			go func() { io.Copy(client, server); client.Close() }()
		}
	}()
}

func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Ensure that on MySQL a database that went away is reported as
// ErrUnavailable inside the usual 151/152, on reads and writes, on the
// group-commit path (AcceptActivity) and in RecordAttempts, and that the
// same *DB works again once the server is back: database/sql reconnects.
func TestUnavailableMySQL(t *testing.T) {
	dsn := testdb.DSN(t, store.DialectMySQL)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	u.Host = proxy.addr
	db := testdb.MustOpenDSN(t, u.String(), store.Options{})
	checkUnavailable(t, db, proxy.down, proxy.up, callevents.ErrUnavailable)
}

// checkUnavailable runs store calls while the database works, after
// breakIt (each must fail with want in its chain and its usual code, and
// store nothing), and after repair (each must work again).
func checkUnavailable(t *testing.T, db *store.DB, breakIt, repair func(), want error) {
	t.Helper()
	ctx := context.Background()
	ext := callevents.Extension("0003*210")
	mustCreate := func(url string) callevents.CallEvent {
		t.Helper()
		c := callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: ext, Type: callevents.DialIn, URL: url,
			Method: callevents.MethodPOST, Status: callevents.StatusEnabled, Modified: time.Now()}
		if err := db.CreateCallEvent(ctx, c, 100); err != nil {
			t.Fatalf("CreateCallEvent: %v", err)
		}
		return c
	}
	mustCreate("https://example.com/before")
	accept := func(callID string) (int, error) {
		a := callevents.CallActivity{CallID: callID, Phase: callevents.PhaseDial, CallerExtension: "0003*211", CalledExtension: string(ext), Time: time.Now()}
		res, err := db.AcceptActivity(ctx, []callevents.CallActivity{a}, time.Now(), nil)
		return res.Queued, err
	}
	if n, err := accept("before"); err != nil || n != 1 {
		t.Fatalf("AcceptActivity: %d, %v", n, err)
	}
	claimed, err := db.ClaimDue(ctx, callevents.Claim{Worker: "w", N: 10, Now: time.Now(), Lease: time.Minute})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("ClaimDue: %d, %v", len(claimed), err)
	}

	breakIt()
	_, _, findErr := db.FindCallEvents(ctx, callevents.CallEventFilter{Extension: ext})
	createErr := db.CreateCallEvent(ctx, callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: ext, Type: callevents.DialIn,
		URL: "https://example.com/during", Method: callevents.MethodPOST, Status: callevents.StatusEnabled, Modified: time.Now()}, 100)
	_, acceptErr := accept("during")
	recordErr := db.RecordAttempts(ctx, "w", []callevents.AttemptOutcome{{DeliveryID: claimed[0].ID, Next: callevents.DeliveryDelivered,
		Attempt: callevents.DeliveryAttempt{Attempt: 1, At: time.Now(), StatusCode: 200}}})
	_, claimErr := db.ClaimDue(ctx, callevents.Claim{Worker: "w", N: 10, Now: time.Now(), Lease: time.Minute})
	for _, c := range []struct {
		name string
		err  error
		code callevents.Code
	}{
		{"FindCallEvents", findErr, callevents.CodeRetrieveFailed},
		{"CreateCallEvent", createErr, callevents.CodeUpdateFailed},
		{"AcceptActivity", acceptErr, callevents.CodeUpdateFailed},
		{"RecordAttempts", recordErr, callevents.CodeUpdateFailed},
		{"ClaimDue", claimErr, callevents.CodeUpdateFailed},
	} {
		if c.err == nil && c.name == "FindCallEvents" && want == callevents.ErrNotWritable {
			continue // a database that takes no writes still reads
		}
		if callevents.ErrorCode(c.err, 0) != c.code || !errors.Is(c.err, want) {
			t.Errorf("%s: %v, want code %d with %q in its chain", c.name, c.err, c.code, want)
		}
		if want != callevents.ErrNotWritable && errors.Is(c.err, callevents.ErrNotWritable) {
			t.Errorf("%s: %v says not writable, want only unavailable", c.name, c.err)
		}
	}

	repair()
	// The pool may still hold connections that died with the server; the
	// first calls find that out and database/sql dials anew.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := db.FindCallEvents(ctx, callevents.CallEventFilter{Extension: ext})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store does not answer 10 s after the database is back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := accept("after"); err != nil || n != 1 {
		t.Fatalf("AcceptActivity after the outage: %d, %v", n, err)
	}
	err = db.RecordAttempts(ctx, "w", []callevents.AttemptOutcome{{DeliveryID: claimed[0].ID, Next: callevents.DeliveryDelivered,
		Attempt: callevents.DeliveryAttempt{Attempt: 1, At: time.Now(), StatusCode: 200}}})
	if err != nil {
		t.Fatalf("RecordAttempts after the outage: %v", err)
	}
	// Nothing of the failed calls was stored: one Call Event, and of the
	// activities only "before" and "after" have deliveries.
	events, _, err := db.FindCallEvents(ctx, callevents.CallEventFilter{Extension: ext})
	if err != nil || len(events) != 1 {
		t.Errorf("Call Events after the outage: %d, %v; want the one created before it", len(events), err)
	}
	deliveries, _, err := db.FindDeliveries(ctx, callevents.DeliveryFilter{Extension: ext})
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, d := range deliveries {
		calls = append(calls, d.CallID+"="+string(d.State))
	}
	slices.Sort(calls)
	if got := strings.Join(calls, ","); got != "after=pending,before=delivered" {
		t.Errorf("deliveries after the outage: %s, want after=pending,before=delivered", got)
	}
}

// Ensure that on SQLite a database that takes no writes is reported as
// ErrNotWritable (reads still work), and the same *DB writes again once it
// may. query_only stands in for a read-only file, which root (as tests
// often run) cannot make with chmod; the commands' tests use a read-only
// mount.
func TestUnavailableSQLite(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.DSN(t, store.DialectSQLite)
	testdb.MustOpenDSN(t, dsn, store.Options{}).Close()
	// One connection, so that the pragma applies to every call.
	db, err := store.Open(ctx, dsn, store.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	checkUnavailable(t, db,
		func() { mustExec(t, db, "PRAGMA query_only = 1") },
		func() { mustExec(t, db, "PRAGMA query_only = 0") },
		callevents.ErrNotWritable)
}

func mustExec(t *testing.T, db *store.DB, query string) {
	t.Helper()
	if err := db.ExecForTest(context.Background(), query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// Ensure an SQLite database that cannot be opened or written fails Open or
// Migrate with a message naming the problem and the file.
func TestOpenExplainsSQLiteProblems(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "no-such-dir", "x.db")
	_, err := store.Open(ctx, "sqlite:"+missing, store.Options{})
	if err == nil || !strings.Contains(err.Error(), "the SQLite database "+missing+" cannot be opened (does its directory exist?)") {
		t.Errorf("Open in a missing directory: %v", err)
	}

	dsn := testdb.DSN(t, store.DialectSQLite)
	testdb.MustOpenDSN(t, dsn, store.Options{}).Close()
	db, err := store.Open(ctx, dsn+"?_pragma=query_only(1)", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	file := strings.TrimPrefix(dsn, "sqlite:")
	if err := db.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "the SQLite database "+file+" is read-only") {
		t.Errorf("Migrate of a read-only database: %v", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
}

// Ensure a write that finds the SQLite database locked by another process
// past busy_timeout is ErrUnavailable (the intake answers 503 and the PBX
// retries), not an internal error, and that the write goes through once
// the lock is released.
func TestSQLiteBusyIsUnavailable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "busy.db")
	testdb.MustOpenDSN(t, "sqlite:"+path, store.Options{}).Close()
	db := testdb.MustOpenDSN(t, "sqlite:"+path+"?_pragma=busy_timeout(200)", store.Options{})

	// Another process: a plain connection holding the write lock.
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	add := func() error {
		return db.CreateCallEvent(ctx, callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: "0003*210", Type: callevents.DialIn,
			URL: "https://example.com/busy", Method: callevents.MethodPOST, Status: callevents.StatusEnabled, Modified: time.Now()}, 100)
	}
	err = add()
	if !errors.Is(err, callevents.ErrUnavailable) || callevents.ErrorCode(err, 0) != callevents.CodeUpdateFailed {
		t.Errorf("a write while another process holds the lock: %v, want 152 wrapping ErrUnavailable", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := add(); err != nil {
		t.Errorf("the write once the lock is released: %v", err)
	}
}
