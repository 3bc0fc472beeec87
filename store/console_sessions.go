package store

import (
	"context"
	"time"

	"github.com/callevents/callevents"
	"gorm.io/gorm"
)

var _ callevents.ConsoleSessionStore = (*DB)(nil)

// consoleSessionRow is a row of console_sessions. It never leaves the package.
type consoleSessionRow struct {
	Hash      string    `gorm:"column:hash;primaryKey"`
	ClientID  string    `gorm:"column:client_id"`
	ExpiresAt time.Time `gorm:"column:expires_at"`
}

func (consoleSessionRow) TableName() string { return "console_sessions" }

// CreateConsoleSession inserts s, Expires kept in UTC to the second.
// Returns callevents.ErrClientNotFound unless s.ClientID is exactly a
// client's id (see CreateAccessToken).
func (db *DB) CreateConsoleSession(ctx context.Context, s callevents.ConsoleSession) error {
	return db.insertForClient(ctx, s.ClientID, &consoleSessionRow{Hash: s.Hash, ClientID: s.ClientID, ExpiresAt: storedTime(s.Expires)})
}

// FindConsoleSession returns the session with this hash, expired or not,
// and its client, in one joined query, or
// callevents.ErrConsoleSessionNotFound.
func (db *DB) FindConsoleSession(ctx context.Context, hash string) (callevents.ConsoleSession, callevents.Client, error) {
	row, found, err := findHashWithClient(db.gorm.WithContext(ctx), "console_sessions", hash)
	if err != nil {
		return callevents.ConsoleSession{}, callevents.Client{}, formatError(err, reading, nil)
	}
	if !found {
		return callevents.ConsoleSession{}, callevents.Client{}, callevents.ErrConsoleSessionNotFound
	}
	return callevents.ConsoleSession{Hash: row.Hash, ClientID: row.ClientID, Expires: row.ExpiresAt.UTC()}, row.client(), nil
}

// ExtendConsoleSession moves the session's expiry; an unknown session is
// no error (it was signed out meanwhile, and stays so).
func (db *DB) ExtendConsoleSession(ctx context.Context, hash string, expires time.Time) error {
	err := db.writeSQLite(ctx, func(w *gorm.DB) error {
		return w.Model(&consoleSessionRow{}).Where("hash = ?", hash).Update("expires_at", storedTime(expires)).Error
	})
	return formatError(err, writing, nil)
}

// DeleteConsoleSession deletes the session with this hash, if any.
func (db *DB) DeleteConsoleSession(ctx context.Context, hash string) error {
	err := db.writeSQLite(ctx, func(w *gorm.DB) error {
		return w.Where("hash = ?", hash).Delete(&consoleSessionRow{}).Error
	})
	return formatError(err, writing, nil)
}

// DeleteExpiredConsoleSessions deletes the sessions whose expiry is before now.
func (db *DB) DeleteExpiredConsoleSessions(ctx context.Context, now time.Time) error {
	err := db.writeSQLite(ctx, func(w *gorm.DB) error {
		return w.Where("expires_at < ?", now.UTC()).Delete(&consoleSessionRow{}).Error
	})
	return formatError(err, writing, nil)
}
