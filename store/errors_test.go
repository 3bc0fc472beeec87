package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/callevents/callevents"
)

// codedSQLiteError stands for modernc.org/sqlite's *Error, which only the
// driver can make.
type codedSQLiteError int

func (e codedSQLiteError) Error() string { return fmt.Sprintf("sqlite error (%d)", int(e)) }
func (e codedSQLiteError) Code() int     { return int(e) }

// Ensure the classifier tells failures of the database from failures of the
// request, by type and number: the first become ErrUnavailable (or its
// ErrNotWritable) inside the usual 151/152, the others stay plain internal
// errors or what they were.
func TestUnavailableClassifier(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &net.OpError{Op: "connect", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		name string
		err  error
		want error // ErrUnavailable, ErrNotWritable or nil
	}{
		{"connection refused", refused, callevents.ErrUnavailable},
		{"bad connection", driver.ErrBadConn, callevents.ErrUnavailable},
		{"server gone away mid-query", fmt.Errorf("commit: %w", gomysql.ErrInvalidConn), callevents.ErrUnavailable},
		{"connection done", sql.ErrConnDone, callevents.ErrUnavailable},
		{"server shutdown", &gomysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}, callevents.ErrUnavailable},
		{"connection killed", &gomysql.MySQLError{Number: 1927, Message: "Connection was killed"}, callevents.ErrUnavailable},
		{"too many connections", &gomysql.MySQLError{Number: 1040}, callevents.ErrUnavailable},
		{"MySQL read-only", &gomysql.MySQLError{Number: 1290, Message: "--read-only"}, callevents.ErrNotWritable},
		{"MySQL table full", &gomysql.MySQLError{Number: 1114}, callevents.ErrNotWritable},
		{"MySQL disk full", &gomysql.MySQLError{Number: 1021}, callevents.ErrNotWritable},
		{"SQLite full", codedSQLiteError(13), callevents.ErrNotWritable},
		{"SQLite read-only", codedSQLiteError(8), callevents.ErrNotWritable},
		{"SQLite read-only, extended", codedSQLiteError(8 | 3<<8), callevents.ErrNotWritable},  // SQLITE_READONLY_ROLLBACK
		{"SQLite I/O error, extended", codedSQLiteError(10 | 4<<8), callevents.ErrUnavailable}, // SQLITE_IOERR_SHORT_READ
		{"SQLite cannot open", codedSQLiteError(14), callevents.ErrUnavailable},
		{"SQLite busy", codedSQLiteError(5), callevents.ErrUnavailable},
		{"SQLite busy, extended", codedSQLiteError(5 | 2<<8), callevents.ErrUnavailable}, // SQLITE_BUSY_SNAPSHOT
		{"MySQL lock wait timeout", &gomysql.MySQLError{Number: 1205}, callevents.ErrUnavailable},
		{"SQLite constraint", codedSQLiteError(19), nil},
		{"deadlock", &gomysql.MySQLError{Number: 1213}, nil},
		{"duplicate key", &gomysql.MySQLError{Number: 1062}, nil},
		{"syntax", &gomysql.MySQLError{Number: 1064}, nil},
		{"closed store", errors.New("sql: database is closed"), nil},
		{"cancelled", context.Canceled, nil},
		{"not found", gorm.ErrRecordNotFound, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unavailable(tc.err); got != tc.want {
				t.Fatalf("unavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
			err := formatError(tc.err, writing, nil)
			if got := callevents.ErrorCode(err, 0); got != callevents.CodeUpdateFailed {
				t.Errorf("formatError: code %d, want 152", got)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("formatError lost the cause: %v", err)
			}
			if errors.Is(err, callevents.ErrUnavailable) != (tc.want != nil) || errors.Is(err, callevents.ErrNotWritable) != (tc.want == callevents.ErrNotWritable) {
				t.Errorf("formatError: %v, want %v in the chain", err, tc.want)
			}
			if msg := callevents.ErrorMessage(err); msg != "Unable to update data. Try again later." {
				t.Errorf("public message %q", msg)
			}
		})
	}
}
