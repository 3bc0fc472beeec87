package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

// mysqlDeadlock is ER_LOCK_DEADLOCK: InnoDB rolled the transaction back to
// break a lock cycle, and running it again is the documented remedy.
const mysqlDeadlock = 1213

func isDeadlock(err error) bool {
	var myErr *gomysql.MySQLError
	return errors.As(err, &myErr) && myErr.Number == mysqlDeadlock
}

// transactionAttempts bounds the reruns of a transaction that InnoDB chose
// as a deadlock victim (or that returned errRerun). Writers take one lock
// row first (lockFor), so deadlocks should not happen at all; the reruns
// are a safety net.
const transactionAttempts = 10

// errRerun tells transaction that a concurrent transaction changed what
// fn had read (possible on MySQL only, where writers run side by side):
// fn's work is rolled back and fn runs again, as after a deadlock.
var errRerun = errors.New("store: concurrent change, transaction rerun")

// transaction runs fn in one transaction, rerunning it if InnoDB picked it
// as a deadlock victim or fn returned errRerun, so fn must be safe to run
// more than once. On SQLite the transaction begins IMMEDIATE (see
// sqliteDSN): it holds the database's write lock from the start, so
// nothing it reads can change before it writes. On MySQL, fn takes a lock
// row first (lockFor) for the same effect on what that row guards.
//
// MySQL connections are READ COMMITTED (readCommittedConnector): locking
// reads take no gap locks and let go of the rows they read but did not
// select, so claimers, accepters and cleaners that work on different rows
// do not wait for one another (stack.md §3). What a queue transaction
// decides from a plain read is guarded by row locks it holds, or checked
// again later: a Call Event disabled while an intake reads it gets
// deliveries that the claim then cancels.
//
// On SQLite, concurrent transactions share one: an intake's, a claim's and
// a record's, for instance, commit together (sqliteTransactions).
func (db *DB) transaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if db.sqliteTransactions == nil {
		return db.runTransaction(ctx, fn)
	}
	w := &transactionWork{fn: fn}
	if err := db.sqliteTransactions.do(ctx, w); err != nil {
		return err
	}
	return w.err
}

// transactionWork is one caller's fn in a shared SQLite transaction, and
// what fn returned.
type transactionWork struct {
	fn  func(tx *gorm.DB) error
	err error
}

// maxSharedTransactions bounds the callers one SQLite transaction serves.
const maxSharedTransactions = 32

// commitShared is the groupCommit of SQLite transactions: the works run in
// one transaction, each in a savepoint of its own, so that a failing fn
// takes back only its own writes and gets its own error. Every commit is a
// fsync (synchronous=FULL) and rewrites the pages it touched, so one for
// the intake, the claim and the record together costs a third of three.
// Each fn runs with the group's context, never cancelled midway: SQLite
// rolls back the whole transaction when a write statement in it is
// interrupted, which would undo the others' work.
func (db *DB) commitShared(ctx context.Context, works []*transactionWork) error {
	return db.writeSQLite(ctx, func(*gorm.DB) error {
		if len(works) == 1 {
			// Alone, fn's error rolls the transaction back.
			err := db.runTransaction(ctx, works[0].fn)
			works[0].err = err
			return err
		}
		return db.runTransaction(ctx, func(tx *gorm.DB) error {
			for i, w := range works {
				name := fmt.Sprintf("work%d", i)
				if err := tx.SavePoint(name).Error; err != nil {
					return err
				}
				if w.err = w.fn(tx); w.err != nil {
					if err := tx.RollbackTo(name).Error; err != nil {
						return err
					}
				}
			}
			return nil
		})
	})
}

// runTransaction is transaction for a caller holding the SQLite write turn.
func (db *DB) runTransaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	for attempt := 1; ; attempt++ {
		err := db.writer.WithContext(ctx).Transaction(fn)
		if err == nil || !(isDeadlock(err) || errors.Is(err, errRerun)) || attempt == transactionAttempts {
			return err
		}
		db.log.Warn("rerunning a transaction", "attempt", attempt, "err", err)
		// A short random pause spreads the contenders out.
		timer := time.NewTimer(time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond))))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// lockFor takes the lock row named name on MySQL until tx ends, creating
// the row on first use; other transactions locking the same name wait.
// It must come first in tx: InnoDB fixes a REPEATABLE READ snapshot at the
// first plain read, so reads after it see everything committed by the
// previous holder (under READ COMMITTED every read does). SQLite needs
// nothing: the immediate transaction already excludes other writers.
func (db *DB) lockFor(tx *gorm.DB, name string) error {
	if db.dialect != DialectMySQL {
		return nil
	}
	return tx.Exec(lockSQL, name).Error
}

// Lock names, one per thing whose readers-then-writers must take turns.
func extensionLock(ext string) string { return "extension:" + ext }

const firstClientLock = "first-client"

// writeSQLite runs fn holding this process's SQLite write turn, with the
// writer (see DB.writer) to write through; on MySQL it just runs fn.
func (db *DB) writeSQLite(ctx context.Context, fn func(w *gorm.DB) error) error {
	if db.sqliteWriter == nil {
		return fn(db.writer.WithContext(ctx))
	}
	select {
	case db.sqliteWriter <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-db.sqliteWriter }()
	return fn(db.writer.WithContext(ctx))
}
