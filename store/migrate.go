package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"math"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// migrationFiles holds one folder per dialect of NNNN_name.sql files. A file
// is a list of statements separated by ';' at the end of a line; lines
// starting with "--" are comments. Versions must match across dialects.
//
//go:embed migrations/sqlite/*.sql migrations/mysql/*.sql
var migrationFiles embed.FS

type migration struct {
	version    int
	name       string
	statements []string
}

// migrations returns the dialect's migrations in version order.
func migrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || version <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("store: migration %s/%s is not named NNNN_name.sql", dir, e.Name())
		}
		text, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: version, name: e.Name(), statements: splitStatements(string(text))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("store: migrations %s and %s share version %d", out[i-1].name, out[i].name, out[i].version)
		}
	}
	return out, nil
}

// splitStatements cuts a migration into statements. go-sql-driver runs one
// statement per call (multiStatements stays off, as it widens the reach of
// an injection), so the split happens here.
func splitStatements(text string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.Lines(text) {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			if s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// LatestSchemaVersion is the version Migrate brings the schema to.
func (db *DB) LatestSchemaVersion() int {
	ms, err := migrations(db.dialect)
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// Migrate applies the pending migrations in version order and records each
// in schema_migrations. Several processes may migrate one database at
// once: on MySQL they take turns under a named lock (GET_LOCK), on SQLite
// under the write lock of an immediate transaction, and each applies only
// what is still pending when its turn comes.
func (db *DB) Migrate(ctx context.Context) error {
	return db.migrateTo(ctx, math.MaxInt)
}

// migrateTo is Migrate up to version (tests of a migration start below it).
func (db *DB) migrateTo(ctx context.Context, version int) error {
	ms, err := migrations(db.dialect)
	if err != nil {
		return err
	}
	ms = slices.DeleteFunc(ms, func(m migration) bool { return m.version > version })
	if db.dialect == DialectMySQL {
		err = db.migrateMySQL(ctx, ms)
	} else {
		err = db.migrateSQLite(ctx, ms)
	}
	if err != nil {
		if db.dialect == DialectSQLite {
			// Every start migrates, in a write transaction even when
			// nothing is pending: a database that takes no writes is
			// found here, before serve answers its first request.
			if explained := explainSQLite(db.file, err); explained != err {
				return explained
			}
		}
		return fmt.Errorf("store: migrating the %s database: %w", db.dialect, err)
	}
	return nil
}

// migrateSQLite applies each migration in its own immediate transaction:
// SQLite DDL is transactional, so a failed migration leaves nothing behind.
func (db *DB) migrateSQLite(ctx context.Context, ms []migration) error {
	return db.writeSQLite(ctx, func(g *gorm.DB) error {
		if err := g.Exec(sqliteMigrationsTableSQL).Error; err != nil {
			return err
		}
		for _, m := range ms {
			err := g.Transaction(func(tx *gorm.DB) error {
				return db.applyMigration(tx, m)
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// migrateMySQL applies the migrations on one connection holding a named
// lock, since GET_LOCK belongs to the session. MySQL commits DDL
// implicitly, so a migration is not atomic there: its statements are
// written to be re-run (IF NOT EXISTS) and the version is recorded last.
func (db *DB) migrateMySQL(ctx context.Context, ms []migration) error {
	return db.gorm.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		// Connection hands over a DB whose conditions pile up from one
		// query to the next (version = 1 AND version = 2 …); a NewDB
		// session starts each query afresh, on the same connection.
		conn = conn.Session(&gorm.Session{NewDB: true})
		var got sql.NullInt64
		if err := conn.Raw(getMigrationLockSQL, 60).Scan(&got).Error; err != nil {
			return err
		}
		if !got.Valid || got.Int64 != 1 {
			return fmt.Errorf("another process held the migration lock for 60 s")
		}
		defer func() {
			// Without the caller's cancellation, so that the lock is
			// released even when ctx ended; a dead connection frees it too.
			conn.WithContext(context.WithoutCancel(ctx)).Exec(releaseMigrationLockSQL)
		}()
		if err := conn.Exec(mysqlMigrationsTableSQL).Error; err != nil {
			return err
		}
		for _, m := range ms {
			if err := db.applyMigration(conn, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// applyMigration runs m on tx unless schema_migrations already lists it.
func (db *DB) applyMigration(tx *gorm.DB, m migration) error {
	var applied int64
	if err := tx.Table("schema_migrations").Where("version = ?", m.version).Count(&applied).Error; err != nil {
		return err
	}
	if applied > 0 {
		return nil
	}
	for _, stmt := range m.statements {
		if err := tx.Exec(stmt).Error; err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := tx.Exec(recordMigrationSQL, m.version, now).Error; err != nil {
		return err
	}
	db.log.Info("applied database migration", "dialect", db.dialect, "migration", m.name)
	return nil
}

// SchemaVersion returns the highest migration version applied, or 0 for a
// database that was never migrated.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	g := db.gorm.WithContext(ctx)
	if !g.Migrator().HasTable("schema_migrations") {
		// HasTable reports a failed query as "no table": tell them apart.
		if err := db.Ping(ctx); err != nil {
			return 0, fmt.Errorf("store: reading the schema version: %w", err)
		}
		return 0, nil
	}
	var version sql.NullInt64
	if err := g.Raw(schemaVersionSQL).Scan(&version).Error; err != nil {
		return 0, fmt.Errorf("store: reading the schema version: %w", err)
	}
	return int(version.Int64), nil
}
