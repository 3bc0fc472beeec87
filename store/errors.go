package store

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/callevents/callevents"
	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

// access says whether a failed operation read or wrote, which picks the
// internal error code: 151 for reads, 152 for writes.
type access int

const (
	reading access = iota
	writing
)

// formatError is the one place where driver errors become coded errors.
// It decides by error type and number, never by message text:
//   - nil stays nil, and an error that is coded already passes through;
//   - gorm.ErrRecordNotFound, and gorm.ErrForeignKeyViolated (a row that
//     refers to a missing parent), become notFound when it is set;
//   - anything else, duplicate keys included, is internal: wrapped as 151
//     or 152, whose public message says nothing of SQL while Err keeps the
//     cause for the log.
func formatError(err error, op access, notFound error) error {
	if err == nil {
		return nil
	}
	var coded *callevents.Error
	if errors.As(err, &coded) {
		return err
	}
	if notFound != nil && (errors.Is(err, gorm.ErrRecordNotFound) || errors.Is(err, gorm.ErrForeignKeyViolated)) {
		return notFound
	}
	if op == reading {
		return callevents.RetrieveFailed(err)
	}
	return callevents.UpdateFailed(err)
}

// mysqlDeadlock is ER_LOCK_DEADLOCK: InnoDB rolled the transaction back to
// break a lock cycle, and running it again is the documented remedy.
const mysqlDeadlock = 1213

func isDeadlock(err error) bool {
	var myErr *gomysql.MySQLError
	return errors.As(err, &myErr) && myErr.Number == mysqlDeadlock
}

// transactionAttempts bounds the reruns of a transaction that InnoDB chose
// as a deadlock victim. Contended inserts into an empty range deadlock by
// design (both hold the gap lock, both want to insert), and every round
// lets at least one through, so a few attempts per contender suffice.
const transactionAttempts = 20

// transaction runs fn in one transaction. On SQLite the transaction begins
// IMMEDIATE (see sqliteDSN), so it holds the write lock from the start and
// a read inside it cannot be invalidated before the write. On MySQL it runs
// at REPEATABLE READ whatever the server's default, because the next-key
// (gap) locks of SELECT … FOR UPDATE are what keep a count and the insert
// that depends on it atomic; a deadlock victim is run again. fn must
// therefore be safe to run more than once.
func (db *DB) transaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return db.writeSQLite(ctx, func() error {
		var opts []*sql.TxOptions
		if db.dialect == DialectMySQL {
			opts = append(opts, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
		}
		for attempt := 1; ; attempt++ {
			err := db.gorm.WithContext(ctx).Transaction(fn, opts...)
			if err == nil || !isDeadlock(err) || attempt == transactionAttempts {
				return err
			}
			db.log.Debug("retrying a transaction after a deadlock", "attempt", attempt)
			// A short random pause spreads the contenders out so the next
			// round is less likely to collide again.
			pause := time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt, 10))))
			timer := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			case <-timer.C:
			}
		}
	})
}

// writeSQLite runs fn holding this process's SQLite write turn; on MySQL it
// just runs fn.
func (db *DB) writeSQLite(ctx context.Context, fn func() error) error {
	if db.sqliteWriter == nil {
		return fn()
	}
	select {
	case db.sqliteWriter <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-db.sqliteWriter }()
	return fn()
}
