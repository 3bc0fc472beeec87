package store

import (
	"net/url"
	"path/filepath"
	"strings"

	"github.com/callevents/callevents"
)

// Describe names the database that Open(dsn) uses, for an operator to read:
// sqlite:ABSOLUTE-PATH for an SQLite file (a relative path resolves against
// the working directory, which is easy to lose track of), or the MySQL DSN
// with its password and credential parameters hidden. It opens nothing.
func Describe(dsn string) string {
	if strings.Contains(dsn, "://") && !strings.HasPrefix(dsn, "sqlite:") {
		return redactDSN(dsn)
	}
	path, err := sqliteDSN(dsn)
	if err != nil {
		return redactDSN(dsn)
	}
	file, _, _ := strings.Cut(path, "?")
	if isSQLiteMemory(path) {
		return "sqlite:" + file
	}
	file = strings.TrimPrefix(file, "file:")
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	return "sqlite:" + file
}

// redactDSN hides the credentials of a URL-like DSN, even one that does not
// parse: then nothing says where its password ends, so everything before
// the host goes.
func redactDSN(dsn string) string {
	if _, err := url.Parse(dsn); err == nil {
		return callevents.RedactURL(dsn)
	}
	scheme, rest, ok := strings.Cut(dsn, "://")
	if i := strings.LastIndex(rest, "@"); ok && i >= 0 {
		return scheme + "://" + callevents.Redacted + rest[i:]
	}
	return dsn
}
