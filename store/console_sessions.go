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
	row := consoleSessionRow{Hash: s.Hash, ClientID: s.ClientID, ExpiresAt: storedTime(s.Expires)}
	err := db.transaction(ctx, func(tx *gorm.DB) error {
		if _, err := findClient(tx.Select("id"), s.ClientID); err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
	return formatError(err, writing, callevents.ErrClientNotFound)
}

// FindConsoleSession returns the session with this hash, expired or not,
// and its client, in one joined query, or
// callevents.ErrConsoleSessionNotFound.
func (db *DB) FindConsoleSession(ctx context.Context, hash string) (callevents.ConsoleSession, callevents.Client, error) {
	var row struct {
		Hash       string
		ClientID   string
		ExpiresAt  time.Time
		Name       string
		Scope      string
		SecretHash string
		CreatedAt  time.Time
	}
	res := db.gorm.WithContext(ctx).Table("console_sessions").
		Select("console_sessions.hash, console_sessions.client_id, console_sessions.expires_at, api_clients.name, api_clients.scope, api_clients.secret_hash, api_clients.created_at").
		Joins("JOIN api_clients ON api_clients.id = console_sessions.client_id").
		Where("console_sessions.hash = ?", hash).Limit(1).Scan(&row)
	if res.Error != nil {
		return callevents.ConsoleSession{}, callevents.Client{}, formatError(res.Error, reading, nil)
	}
	if res.RowsAffected == 0 {
		return callevents.ConsoleSession{}, callevents.Client{}, callevents.ErrConsoleSessionNotFound
	}
	c := clientRow{ID: row.ClientID, Name: row.Name, Scope: row.Scope, SecretHash: row.SecretHash, CreatedAt: row.CreatedAt}
	return callevents.ConsoleSession{Hash: row.Hash, ClientID: row.ClientID, Expires: row.ExpiresAt.UTC()}, c.client(), nil
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
