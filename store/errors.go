package store

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"

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
//     cause for the log;
//   - among those, a failure of the database itself (see unavailable) also
//     carries callevents.ErrUnavailable (or ErrNotWritable) in its chain.
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
	if sentinel := unavailable(err); sentinel != nil {
		err = fmt.Errorf("%w: %w", sentinel, err)
	}
	if op == reading {
		return callevents.RetrieveFailed(err)
	}
	return callevents.UpdateFailed(err)
}

// MySQL and MariaDB error numbers that mean the server, not the request, is
// at fault.
const (
	mysqlDiskFull           = 1021 // ER_DISK_FULL
	mysqlTooManyConnections = 1040 // ER_CON_COUNT_ERROR
	mysqlServerShutdown     = 1053 // ER_SERVER_SHUTDOWN: shutdown in progress
	mysqlTableFull          = 1114 // ER_RECORD_FILE_FULL: the tablespace cannot grow
	mysqlAbortingConnection = 1152 // ER_ABORTING_CONNECTION
	mysqlLockWaitTimeout    = 1205 // ER_LOCK_WAIT_TIMEOUT: a lock held past innodb_lock_wait_timeout
	mysqlReadOnly           = 1290 // ER_OPTION_PREVENTS_STATEMENT: --read-only
	mysqlReadOnlyMode       = 1836 // ER_READ_ONLY_MODE
	mysqlConnectionKilled   = 1927 // ER_CONNECTION_KILLED (MariaDB)
	mysqlClientTimeout      = 4031 // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
)

// SQLite primary result codes (the low byte of an extended code) that mean
// the database file, not the request, is at fault.
const (
	sqliteBusy     = 5  // SQLITE_BUSY: another process held the lock past busy_timeout
	sqliteLocked   = 6  // SQLITE_LOCKED
	sqliteReadOnly = 8  // SQLITE_READONLY
	sqliteIOErr    = 10 // SQLITE_IOERR
	sqliteFull     = 13 // SQLITE_FULL
	sqliteCantOpen = 14 // SQLITE_CANTOPEN
)

// sqliteError is modernc.org/sqlite's *Error as seen through its method,
// which spares the store a direct dependency on the driver under libtnb.
type sqliteError interface {
	error
	Code() int
}

// unavailable is the one classifier of database failures that are not the
// request's fault: callevents.ErrNotWritable for a database that takes no
// writes (disk full, read-only), callevents.ErrUnavailable for one that
// cannot be reached or went away (connection refused or reset, "server has
// gone away", shutdown in progress, an I/O error) or stayed locked by
// someone else past its wait (SQLite busy, InnoDB lock wait timeout), or
// nil. Like formatError
// it decides by error type and number, never by message text. Retrying
// later is the remedy for all of them, which is what the edges tell the
// client and what the dispatcher does; database/sql reconnects on its own
// once the server is back.
func unavailable(err error) error {
	var myErr *gomysql.MySQLError
	if errors.As(err, &myErr) {
		switch myErr.Number {
		case mysqlDiskFull, mysqlTableFull, mysqlReadOnly, mysqlReadOnlyMode:
			return callevents.ErrNotWritable
		case mysqlTooManyConnections, mysqlServerShutdown, mysqlAbortingConnection, mysqlConnectionKilled, mysqlClientTimeout, mysqlLockWaitTimeout:
			return callevents.ErrUnavailable
		}
		return nil
	}
	var liteErr sqliteError
	if errors.As(err, &liteErr) {
		switch liteErr.Code() & 0xff {
		case sqliteFull, sqliteReadOnly:
			return callevents.ErrNotWritable
		case sqliteIOErr, sqliteCantOpen, sqliteBusy, sqliteLocked:
			return callevents.ErrUnavailable
		}
		return nil
	}
	// What is left is the connection: the driver's "invalid connection"
	// (the server went away mid-query), database/sql giving up on bad
	// connections, or the dial failing (*net.OpError: refused, reset,
	// timed out).
	var netErr net.Error
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, gomysql.ErrInvalidConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.As(err, &netErr) {
		return callevents.ErrUnavailable
	}
	return nil
}

// explainSQLite names the problem when the SQLite database file cannot be
// opened or written at start, so that the command fails with "database …
// is read-only" rather than "unable to open database file (14)". It
// returns err unchanged when the problem is of another kind.
func explainSQLite(file string, err error) error {
	var liteErr sqliteError
	if !errors.As(err, &liteErr) {
		return err
	}
	var problem string
	switch liteErr.Code() & 0xff {
	case sqliteFull:
		problem = "is full: its disk has no space left"
	case sqliteReadOnly:
		problem = "is read-only"
	case sqliteCantOpen, sqliteIOErr:
		// SQLite does not say why; the file system does. WAL needs the
		// directory writable too, for the -wal and -shm files.
		switch {
		case notWritable(file):
			problem = "is read-only"
		case notWritable(filepath.Dir(file)):
			problem = "is in a read-only directory (SQLite must create files next to it)"
		default:
			problem = "cannot be opened (does its directory exist?)"
		}
	default:
		return err
	}
	return fmt.Errorf("store: the SQLite database %s %s: %w", file, problem, err)
}

// notWritable reports whether path, a file or a directory, exists and may
// not be written to (read-only file system, or no permission).
func notWritable(path string) bool {
	info, err := os.Stat(path)
	if err != nil {
		return false
	}
	if info.IsDir() {
		// A directory cannot be opened for writing: try to create a file.
		f, err := os.CreateTemp(path, ".callevents-probe-*")
		if err == nil {
			f.Close()
			os.Remove(f.Name())
			return false
		}
		return errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err == nil {
		f.Close()
		return false
	}
	return errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission)
}
