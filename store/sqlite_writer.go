package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"gorm.io/gorm"
)

// sqliteWriter is the one connection this process writes an SQLite file
// through. Each SQLite connection keeps its own page cache and drops all of
// it when it sees that another connection has written; with writes spread
// over the pool, each began with a cold cache.
//
// Its transactions are BEGIN IMMEDIATE … COMMIT statements on that
// connection, not database/sql transactions: a statement prepared once on
// the connection then serves every transaction (a *sql.Tx prepares each
// anew), and nothing waits for the connection a transaction holds. It
// keeps its prepared statements itself rather than through gorm's cache,
// which closes them in goroutines of its own, possibly after the
// connection. Callers hold the write turn (DB.writeSQLite), so statements
// never interleave.
type sqliteWriter struct {
	pool  *sql.DB // of this one connection
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
	// closed is set by Close: a closed store is a caller's mistake (an
	// internal error), not a database gone away (sql.ErrConnDone).
	closed atomic.Bool
}

var errWriterClosed = errors.New("store: the database is closed")

// maxWriterStmts bounds the prepared statements kept (IN (…) lists come in
// many shapes); past it they are all closed and prepared again as needed.
const maxWriterStmts = 256

// openSQLiteWriter opens the writer on its own one-connection pool of the
// same DSN (the same pragmas), leaving the read pool whole.
func openSQLiteWriter(ctx context.Context, dsn string, cfg *gorm.Config) (*sqliteWriter, *gorm.DB, error) {
	pool, err := sql.Open(sqliteDriverName, dsn)
	if err != nil {
		return nil, nil, err
	}
	pool.SetMaxOpenConns(1)
	pool.SetMaxIdleConns(1)
	pool.SetConnMaxLifetime(0)
	pool.SetConnMaxIdleTime(0)
	conn, err := pool.Conn(ctx)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	writerCfg := *cfg
	writerCfg.PrepareStmt = false // the writer prepares (stmt)
	// gorm's ping would wait on the pool for the connection held here.
	writerCfg.DisableAutomaticPing = true
	w := &sqliteWriter{pool: pool, conn: conn, stmts: map[string]*sql.Stmt{}}
	g, err := gorm.Open(newSQLiteDialector(w), &writerCfg)
	if err != nil {
		w.Close()
		return nil, nil, err
	}
	return w, g, nil
}

// Close closes the statements, the connection, then its pool. SQLite
// keeps a connection with open statements alive, and database/sql does not
// close a Conn's statements with it.
func (w *sqliteWriter) Close() error {
	w.closed.Store(true)
	w.closeStmts()
	return errors.Join(w.conn.Close(), w.pool.Close())
}

func (w *sqliteWriter) closeStmts() {
	for q, s := range w.stmts {
		s.Close()
		delete(w.stmts, q)
	}
}

// stmt returns query prepared on the connection.
func (w *sqliteWriter) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if w.closed.Load() {
		return nil, errWriterClosed
	}
	if s, ok := w.stmts[query]; ok {
		return s, nil
	}
	if len(w.stmts) >= maxWriterStmts {
		w.closeStmts()
	}
	s, err := w.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	w.stmts[query] = s
	return s, nil
}

// GetDBConn gives gorm (db.DB()) the pool behind the connection.
func (w *sqliteWriter) GetDBConn() (*sql.DB, error) { return w.pool, nil }

func (w *sqliteWriter) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return w.conn.PrepareContext(ctx, query)
}

func (w *sqliteWriter) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := w.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

func (w *sqliteWriter) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := w.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (w *sqliteWriter) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := w.stmt(ctx, query)
	if err != nil {
		// A Row carrying err: the connection's own answer to a query
		// that does not prepare.
		return w.conn.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// BeginTx, with gorm's signature, makes gorm run its transactions as
// sqliteWriterTx. Isolation options do not apply: an immediate SQLite
// transaction is serializable.
func (w *sqliteWriter) BeginTx(ctx context.Context, _ *sql.TxOptions) (gorm.ConnPool, error) {
	if w.closed.Load() {
		return nil, errWriterClosed
	}
	_, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	if err != nil && strings.Contains(err.Error(), "within a transaction") {
		// A transaction left open (its ROLLBACK failed) would block
		// every later one: end it and begin again.
		w.rollback()
		_, err = w.conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	}
	if err != nil {
		return nil, err
	}
	// A pointer: gorm checks the transaction it holds with IsNil.
	return &sqliteWriterTx{w}, nil
}

// rollback ends the open transaction, if any. It is never cancelled: an
// interrupted ROLLBACK would leave the transaction open. SQLite rolls a
// transaction back by itself when a statement in it was interrupted, so
// "no transaction is active" is not an error here.
func (w *sqliteWriter) rollback() error {
	_, err := w.conn.ExecContext(context.Background(), "ROLLBACK")
	if err != nil && strings.Contains(err.Error(), "no transaction is active") {
		return nil
	}
	return err
}

// sqliteWriterTx is a transaction open on the writer's connection.
type sqliteWriterTx struct{ *sqliteWriter }

func (t *sqliteWriterTx) Commit() error {
	if _, err := t.conn.ExecContext(context.Background(), "COMMIT"); err != nil {
		if rbErr := t.rollback(); rbErr != nil {
			return errors.Join(err, fmt.Errorf("rolling back: %w", rbErr))
		}
		return err
	}
	return nil
}

func (t *sqliteWriterTx) Rollback() error { return t.rollback() }
