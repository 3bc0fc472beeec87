// Package store keeps Call Events, API clients, access tokens and the
// delivery queue in SQL with gorm: an embedded SQLite file by default (pure
// Go, no cgo), or a shared MySQL 8 / MariaDB ≥ 10.6 database when several
// processes must cooperate.
//
// *DB implements callevents.CallEventStore, callevents.ClientStore and the
// delivery queue's three faces: callevents.ActivityStore (intake.go),
// callevents.DeliveryQueue (queue.go, maintenance.go) and
// callevents.DeliveryLog (delivery_log.go). The schema is created by
// versioned SQL migrations embedded per dialect (migrations/), applied by
// (*DB).Migrate; gorm AutoMigrate is not used.
// Every error the store methods return is coded (151/152 for internal
// failures, 255, 308, ...), so no SQL text reaches a client; the cause stays
// in the error chain for the log.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"runtime"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/libtnb/sqlite"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	moderncsqlite "modernc.org/sqlite"
)

// SQLite has no SHA-256 of its own; migration 0003 rehashes order keys
// with this one, the same function new rows are hashed with (sha256Hex).
func init() {
	err := moderncsqlite.RegisterDeterministicScalarFunction("callevents_sha256", 1,
		func(_ *moderncsqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			switch v := args[0].(type) {
			case string:
				return sha256Hex(v), nil
			case []byte:
				return sha256Hex(string(v)), nil
			}
			return nil, fmt.Errorf("callevents_sha256: want text, got %T", args[0])
		})
	if err != nil {
		panic(err)
	}
}

// DSNDefault is the store the CLI uses when none is configured: an SQLite
// file in the working directory.
const DSNDefault = "sqlite:callevents.db"

// Dialect names returned by (*DB).Dialect.
const (
	DialectSQLite = "sqlite"
	DialectMySQL  = "mysql"
)

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Logger receives the store's own rare messages (migrations applied,
	// deadlocks retried). Nil discards them. gorm itself never logs.
	Logger *slog.Logger
	// MaxOpenConns caps the connection pool. 0 picks the dialect's default:
	// SQLite max(4, GOMAXPROCS), MySQL 25.
	MaxOpenConns int
}

// DB is an open store. It is safe for concurrent use.
type DB struct {
	gorm *gorm.DB
	// writer is what writes go through: gorm itself on MySQL and an
	// in-memory SQLite, the one writing connection on an SQLite file
	// (writerConn).
	writer     *gorm.DB
	writerConn *sqliteWriter
	sql        *sql.DB
	dialect    string
	log        *slog.Logger
	// file is the SQLite database file ("" on MySQL), named in the
	// messages of a database that cannot be opened or written.
	file string
	// sqliteWriter serialises this process's SQLite writers (capacity 1).
	// SQLite admits one writer at a time anyway; queueing here instead of
	// in busy_timeout avoids its sleep-and-poll loop. busy_timeout still
	// covers writers in other processes (the CLI beside `serve`). Nil on
	// MySQL, where InnoDB row locks do this job.
	sqliteWriter chan struct{}
	// accepts queues AcceptActivity calls for group commit (both dialects).
	accepts *groupCommit[*acceptCall]
	// sqliteTransactions queues SQLite transactions for group commit
	// (commitShared). Nil on MySQL, where transactions run side by side.
	sqliteTransactions *groupCommit[*transactionWork]
}

// Open connects to the store named by dsn:
//
//   - sqlite:PATH (also sqlite://PATH), or a bare PATH: an SQLite file,
//     created if missing. Every connection gets WAL, busy_timeout(5000),
//     synchronous(FULL), foreign_keys(1) and temp_store(MEMORY) unless
//     the DSN sets that pragma itself (?_pragma=busy_timeout(10000), or
//     ?_pragma=synchronous(NORMAL) to trade power-loss durability for
//     speed);
//     other parameters go to
//     the driver, except that _txlock is always immediate and _time_format
//     is dropped. sqlite::memory: works on a single connection.
//   - mysql://user:pass@host:port/dbname?params: MySQL 8 or MariaDB ≥ 10.6.
//     The password may be empty, and is percent-encoded like the user
//     (p%40ss for p@ss); the port defaults to 3306; params are
//     go-sql-driver/mysql parameters and win over the defaults.
//
// Open checks that the database answers, but does not create tables: call
// Migrate for that.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	db := &DB{log: log}
	db.accepts = newGroupCommit(maxAcceptGroup, acceptWeight, db.commitAccepts)
	var dialector gorm.Dialector
	var sqlitePath string // the driver's DSN, on SQLite
	switch {
	case strings.HasPrefix(dsn, "mysql://"):
		cfg, err := mysqlConfig(dsn)
		if err != nil {
			return nil, err
		}
		cfg.Logger = mysqlDriverLogger{log}
		connector, err := gomysql.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		db.sql = sql.OpenDB(readCommittedConnector{connector})
		db.dialect = DialectMySQL
		configureMySQLPool(db.sql, opts.MaxOpenConns)
		// RETURNING stays off: gorm would enable it on MariaDB, which does
		// not support UPDATE … RETURNING (stack.md §3).
		dialector = mysql.New(mysql.Config{Conn: db.sql, DisableWithReturning: true})
	default:
		path, err := sqliteDSN(dsn)
		if err != nil {
			return nil, err
		}
		db.sql, err = sql.Open(sqliteDriverName, path)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		db.dialect = DialectSQLite
		db.file, _, _ = strings.Cut(path, "?")
		db.sqliteWriter = make(chan struct{}, 1)
		db.sqliteTransactions = newGroupCommit(maxSharedTransactions, func(*transactionWork) int { return 1 }, db.commitShared)
		var pool gorm.ConnPool = db.sql
		if configureSQLitePool(db.sql, opts.MaxOpenConns, isSQLiteMemory(path)) > 1 {
			// With a single connection, preparing on the pool would wait
			// for the connection the transaction holds.
			pool = sqlitePool{db.sql}
		}
		dialector = newSQLiteDialector(pool)
		sqlitePath = path
	}
	if err := db.sql.PingContext(ctx); err != nil {
		db.sql.Close()
		if db.dialect == DialectSQLite {
			if explained := explainSQLite(db.file, err); explained != err {
				return nil, explained
			}
		}
		return nil, fmt.Errorf("store: connecting to the %s database: %w", db.dialect, err)
	}
	cfg := gormConfig(db.dialect)
	g, err := gorm.Open(dialector, cfg)
	if err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("store: opening the %s database: %w", db.dialect, err)
	}
	db.writer = g
	if sqlitePath != "" && !isSQLiteMemory(sqlitePath) {
		db.writerConn, db.writer, err = openSQLiteWriter(ctx, sqlitePath, cfg)
		if err != nil {
			db.sql.Close()
			return nil, fmt.Errorf("store: opening the %s database: %w", db.dialect, err)
		}
	}
	db.gorm = g
	return db, nil
}

// Close closes every connection of the pool.
func (db *DB) Close() error {
	if db.writerConn != nil {
		// After the writer in progress, if any (briefly: Close must not
		// hang on a stuck one), so that its statements are not closed
		// under it.
		select {
		case db.sqliteWriter <- struct{}{}:
			defer func() { <-db.sqliteWriter }()
		case <-time.After(5 * time.Second):
		}
		db.writerConn.Close()
	}
	return db.sql.Close()
}

// gormConfig is the configuration of the store's gorm instances.
func gormConfig(dialect string) *gorm.Config {
	return &gorm.Config{
		TranslateError: true,
		Logger:         logger.Discard,
		// Writes that need a transaction open one explicitly; a lone
		// statement is atomic already, so gorm's wrapping BEGIN/COMMIT
		// would only cost round trips.
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Second) },
		// SQLite compiles each statement in-process: without the cache that
		// was a fifth of a GetPhoneCallEvents request. MySQL keeps
		// client-side interpolation (one round trip, no server statements).
		// The LRU bounds the cache, since IN (…) lists come in many shapes.
		PrepareStmt:        dialect == DialectSQLite,
		PrepareStmtMaxSize: 256,
		PrepareStmtTTL:     time.Hour,
	}
}

// sqliteDriverName is the database/sql driver of SQLite (modernc's, as
// registered by the libtnb dialector).
const sqliteDriverName = sqlite.DriverName

func newSQLiteDialector(pool gorm.ConnPool) gorm.Dialector {
	return &sqlite.Dialector{DriverName: sqliteDriverName, Conn: pool}
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

// Dialect returns DialectSQLite or DialectMySQL.
func (db *DB) Dialect() string { return db.dialect }

var errBadDSN = errors.New(`store: unsupported database: expected "sqlite:PATH" (or a bare file path) or "mysql://user:pass@host:3306/dbname"`)

// sqliteDSN turns sqlite:PATH[?params] (or a bare path) into the driver's
// DSN with the pragmas that every pooled connection needs.
func sqliteDSN(dsn string) (string, error) {
	rest, found := strings.CutPrefix(dsn, "sqlite:")
	if !found {
		// A bare path is fine; a URL of another kind (postgres://, mysql:x)
		// is a mistake better reported than turned into a file name.
		if scheme, _, ok := strings.Cut(dsn, ":"); ok && (strings.Contains(dsn, "://") || strings.EqualFold(scheme, "mysql")) {
			return "", fmt.Errorf("%w (got scheme %q)", errBadDSN, scheme)
		}
	}
	rest = strings.TrimPrefix(rest, "//") // sqlite:///abs/path and sqlite://rel.db
	path, rawQuery, _ := strings.Cut(rest, "?")
	if path == "" {
		return "", fmt.Errorf("%w (the SQLite file path is empty)", errBadDSN)
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("store: SQLite parameters %q: %w", rawQuery, err)
	}
	// Without an IMMEDIATE begin, a read-then-write transaction cannot wait
	// for the write lock (busy_timeout does not cover the upgrade), so the
	// atomic count-and-insert would fail with SQLITE_BUSY.
	query.Set("_txlock", "immediate")
	// Times are written as "2006-01-02 15:04:05.999999999-07:00" and read
	// back as time.Time (what the libtnb dialector sets when it opens the
	// connection itself; we open it, so we set them).
	for key, value := range map[string]string{"_time_format": "sqlite", "_texttotime": "1", "_inttotime": "1"} {
		if !query.Has(key) {
			query.Set(key, value)
		}
	}
	set := map[string]bool{}
	for _, p := range query["_pragma"] {
		name, _, _ := strings.Cut(p, "(")
		name, _, _ = strings.Cut(name, "=")
		set[strings.ToLower(strings.TrimSpace(name))] = true
	}
	for _, p := range []struct{ name, value string }{
		{"busy_timeout", "busy_timeout(5000)"}, // wait up to 5 s for another process's write
		{"journal_mode", "journal_mode(WAL)"},  // readers do not block the writer, nor it them
		// FULL fsyncs the WAL at every commit, so a commit (the intake's
		// 202) survives power loss and an OS crash; NORMAL only at
		// checkpoints, so the last commits before either may be lost.
		{"synchronous", "synchronous(FULL)"},
		{"foreign_keys", "foreign_keys(1)"}, // off by default in SQLite
		// Statement journals (kept for every multi-row write inside a
		// transaction) and sorts go to memory rather than to temp files:
		// an eighth of a delivery intake was their write syscalls.
		{"temp_store", "temp_store(MEMORY)"},
	} {
		if !set[p.name] {
			query.Add("_pragma", p.value)
		}
	}
	return path + "?" + query.Encode(), nil
}

// sqlitePool is the SQLite pool as gorm sees it, so that transactions
// reuse prepared statements. gorm's statement cache keeps what it prepared
// first; prepared inside a transaction, that is a statement bound to the
// transaction, which database/sql prepares anew in every later transaction
// that runs it: a sixth of a claim and of an intake. Its transactions
// prepare on the pool instead: each connection then prepares a statement
// once, and transactions reuse it (sql.Tx.StmtContext).
type sqlitePool struct{ *sql.DB }

// BeginTx, with gorm's signature rather than database/sql's, makes gorm
// take the transaction as a gorm.Tx (poolPreparedTx) instead of a *sql.Tx.
func (p sqlitePool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	tx, err := p.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	// A pointer: gorm checks the transaction it holds with IsNil.
	return &poolPreparedTx{Tx: tx, pool: p.DB}, nil
}

// GetDBConn gives gorm (db.DB()) the *sql.DB behind the wrapper.
func (p sqlitePool) GetDBConn() (*sql.DB, error) { return p.DB, nil }

// poolPreparedTx is a transaction that prepares statements on the pool.
type poolPreparedTx struct {
	*sql.Tx
	pool *sql.DB
}

// PrepareContext prepares on the pool, or on the transaction when the
// statement names what only the transaction sees yet (a table a migration
// has just created): other connections cannot compile it.
func (t *poolPreparedTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	if stmt, err := t.pool.PrepareContext(ctx, query); err == nil {
		return stmt, nil
	}
	return t.Tx.PrepareContext(ctx, query)
}

func isSQLiteMemory(dsn string) bool {
	return strings.HasPrefix(dsn, ":memory:") || strings.Contains(dsn, "mode=memory")
}

// The pool sizes Options.MaxOpenConns 0 means (SQLite: at least that, or
// GOMAXPROCS).
const (
	sqliteMaxOpenConnsDefault = 4
	mysqlMaxOpenConnsDefault  = 25
)

// configureSQLitePool sizes the pool for WAL: readers run concurrently with
// the single writer, so a few connections serve concurrent reads, while
// writers queue (sqliteWriter, then BEGIN IMMEDIATE) however many there
// are. Each connection holds its own page cache, so more connections than
// CPUs buy nothing. Idle connections are kept, since a new one re-runs the
// pragmas and starts with a cold cache.
func configureSQLitePool(db *sql.DB, maxOpen int, memory bool) (size int) {
	if maxOpen <= 0 {
		maxOpen = max(sqliteMaxOpenConnsDefault, runtime.GOMAXPROCS(0))
	}
	if memory {
		maxOpen = 1 // an in-memory database exists once per connection
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return maxOpen
}

// configureMySQLPool follows stack.md §3: 25 connections per process (keep
// their sum over all processes under max_connections), recycled before the
// server's wait_timeout or a proxy's idle timeout can cut them.
func configureMySQLPool(db *sql.DB, maxOpen int) {
	if maxOpen <= 0 {
		maxOpen = mysqlMaxOpenConnsDefault
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetConnMaxIdleTime(time.Minute)
}

// mysqlParamsDefault are the go-sql-driver parameters every connection
// gets unless the DSN sets them: UTC times parsed into time.Time, bounded
// dial and I/O waits, and client-side interpolation to save the prepare
// round trip.
var mysqlParamsDefault = [][2]string{
	{"charset", "utf8mb4"},
	{"parseTime", "true"},
	{"loc", "UTC"},
	{"timeout", "5s"},
	{"readTimeout", "30s"},
	{"writeTimeout", "30s"},
	{"interpolateParams", "true"},
}

// mysqlConfig translates mysql://user:pass@host:port/dbname?params into a
// go-sql-driver configuration. Credentials are set as fields rather than
// spliced into a DSN string, so any character in a password is safe.
func mysqlConfig(dsn string) (*gomysql.Config, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		// The parser's message may quote part of the password: leave it out.
		return nil, fmt.Errorf("%w (not a valid URL: percent-encode special characters in the user and password)", errBadDSN)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w (the MySQL host is missing)", errBadDSN)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	if dbName == "" || strings.Contains(dbName, "/") {
		return nil, fmt.Errorf("%w (the MySQL database name is missing or contains '/')", errBadDSN)
	}
	query := u.Query()
	params := url.Values{}
	for _, p := range mysqlParamsDefault {
		params.Set(p[0], p[1])
	}
	for k, vs := range query {
		params[k] = vs
	}
	cfg, err := gomysql.ParseDSN("/?" + params.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: MySQL parameters: %w", err)
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	port := u.Port()
	if port == "" {
		port = "3306"
	}
	cfg.Addr = net.JoinHostPort(u.Hostname(), port)
	cfg.DBName = dbName
	return cfg, nil
}

// mysqlDriverLogger takes go-sql-driver's own messages ("closing bad idle
// connection: EOF", one per pooled connection after the server went away)
// off stderr and into the log at Debug: the failures they accompany come
// back as errors, which the store's callers log once per outage.
type mysqlDriverLogger struct{ log *slog.Logger }

func (l mysqlDriverLogger) Print(v ...any) {
	l.log.Debug("store: MySQL driver", "detail", strings.TrimSpace(fmt.Sprint(v...)))
}

// readCommittedConnector puts every new MySQL connection in READ COMMITTED
// once, instead of each transaction asking for it (a round trip per
// transaction, a sixth of the statements the queue sent). The statement
// works on MySQL 8 and MariaDB alike, unlike the isolation variable, whose
// name differs between them. Every transaction relies on its lock rows
// (lockFor) or row locks, not on REPEATABLE READ snapshots.
type readCommittedConnector struct{ driver.Connector }

func (c readCommittedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if ex, ok := conn.(driver.ExecerContext); ok {
		if _, err := ex.ExecContext(ctx, readCommittedSQL, nil); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}
