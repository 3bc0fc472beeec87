package store

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/callevents/callevents"
)

// TestSQLiteSynchronousOnEveryConnection checks the pragma in force on each
// pooled connection, not just the first: the pragmas ride in the DSN, so a
// connection the pool opens later must get them too. FULL (2) is the
// default, for a 202 to survive power loss; a DSN's own NORMAL (1) wins.
// The writer's own connection (sqliteWriter) is checked too.
func TestSQLiteSynchronousOnEveryConnection(t *testing.T) {
	const conns = 4
	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"default", "", 2},
		{"dsn-normal", "?_pragma=synchronous(NORMAL)", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "callevents.db") + tc.query
			db, err := Open(ctx, dsn, Options{MaxOpenConns: conns})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			// Held at once, the Conns are distinct connections of the pool.
			held := make([]*sql.Conn, conns)
			for i := range held {
				c, err := db.sql.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				held[i] = c
			}
			if open := db.sql.Stats().OpenConnections; open != conns {
				t.Fatalf("%d connections open, want %d", open, conns)
			}
			for i, c := range held {
				var got int
				if err := c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("connection %d: synchronous = %d, want %d", i, got, tc.want)
				}
			}
			// And the connection every write goes through.
			var got int
			if err := db.writer.WithContext(ctx).Raw("PRAGMA synchronous").Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("the writer's connection: synchronous = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestSQLiteCloseCheckpoints checks that Close really closes every
// connection, the writer's included: the last one to close checkpoints
// and removes the WAL, so a closed database is one file that a read-only
// mount can serve. A connection with a statement still open stays alive
// in SQLite, and its WAL with it.
func TestSQLiteCloseCheckpoints(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, "sqlite:"+filepath.Join(dir, "callevents.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClient(ctx, callevents.Client{ID: "c1", Name: "one", Scope: callevents.ScopeAdmin}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "callevents.db-wal")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the WAL is still there after Close: %v", err)
	}
}
