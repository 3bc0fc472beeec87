package store

import (
	"context"
	"time"

	"github.com/callevents/callevents"
	"gorm.io/gorm"
)

var _ callevents.ClientStore = (*DB)(nil)

// CreateClient inserts c, its Created time stored in UTC and truncated to
// the second. A duplicate id is an internal error (152).
func (db *DB) CreateClient(ctx context.Context, c callevents.Client) error {
	row := newClientRow(c)
	err := db.writeSQLite(ctx, func(w *gorm.DB) error {
		return w.Create(&row).Error
	})
	return formatError(err, writing, nil)
}

// CreateFirstClient inserts c only if api_clients is empty and reports
// whether it did. The check and the insert run in one transaction holding
// the first-client lock (SQLite: the database write lock), so of several
// processes starting at once exactly one inserts; the others wait for it
// and then see its client.
func (db *DB) CreateFirstClient(ctx context.Context, c callevents.Client) (bool, error) {
	row := newClientRow(c)
	var created bool
	err := db.transaction(ctx, func(tx *gorm.DB) error {
		created = false
		if err := db.lockFor(tx, firstClientLock); err != nil {
			return err
		}
		var existing []clientRow
		if err := tx.Select("id").Limit(1).Find(&existing).Error; err != nil {
			return err
		}
		if len(existing) > 0 {
			return nil
		}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return false, formatError(err, writing, nil)
	}
	return created, nil
}

// findClient reads the client whose id is exactly id, or returns
// gorm.ErrRecordNotFound. MySQL and MariaDB compare VARCHARs under PAD
// SPACE collations (utf8mb4_bin included), which ignore trailing spaces:
// WHERE id = 'abc ' finds 'abc'. SQLite compares bytes. Checking the id
// read back in Go makes both backends exact, and costs nothing: the
// primary key lets at most one row match. Every lookup of a caller's
// client id goes through here.
func findClient(tx *gorm.DB, id string) (clientRow, error) {
	var row clientRow
	if err := tx.Where("id = ?", id).Take(&row).Error; err != nil {
		return clientRow{}, err
	}
	if row.ID != id {
		return clientRow{}, gorm.ErrRecordNotFound
	}
	return row, nil
}

// FindClientByID returns the client whose id is exactly id (case and
// trailing spaces count, on every backend), or
// callevents.ErrClientNotFound.
func (db *DB) FindClientByID(ctx context.Context, id string) (callevents.Client, error) {
	row, err := findClient(db.gorm.WithContext(ctx), id)
	if err != nil {
		return callevents.Client{}, formatError(err, reading, callevents.ErrClientNotFound)
	}
	return row.client(), nil
}

// FindClients returns every client, oldest first; clients created within
// the same second come in id order.
func (db *DB) FindClients(ctx context.Context) ([]callevents.Client, error) {
	var rows []clientRow
	if err := db.gorm.WithContext(ctx).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, formatError(err, reading, nil)
	}
	clients := make([]callevents.Client, len(rows))
	for i, r := range rows {
		clients[i] = r.client()
	}
	return clients, nil
}

// DeleteClient deletes the client whose id is exactly id, its access
// tokens and its console sessions in one transaction, or returns
// callevents.ErrClientNotFound. The
// tokens are deleted explicitly rather than left to ON DELETE CASCADE,
// which SQLite applies only while foreign_keys is on.
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	err := db.transaction(ctx, func(tx *gorm.DB) error {
		// Deleting by the stored id: WHERE id = 'abc ' would delete 'abc'
		// on MySQL (findClient).
		row, err := findClient(tx.Select("id"), id)
		if err != nil {
			return err
		}
		if err := tx.Where("client_id = ?", row.ID).Delete(&accessTokenRow{}).Error; err != nil {
			return err
		}
		if err := tx.Where("client_id = ?", row.ID).Delete(&consoleSessionRow{}).Error; err != nil {
			return err
		}
		res := tx.Where("id = ?", row.ID).Delete(&clientRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		return nil
	})
	return formatError(err, writing, callevents.ErrClientNotFound)
}

// CreateAccessToken inserts t, Expires stored in UTC and truncated to the
// second (so a token may expire up to a second early, never late). Returns
// callevents.ErrClientNotFound when t.ClientID is not exactly a client's
// id: the foreign key alone would take 'abc ' for 'abc' on MySQL
// (findClient). A client deleted between the check and the insert fails
// the foreign key, with the same error.
func (db *DB) CreateAccessToken(ctx context.Context, t callevents.AccessToken) error {
	return db.insertForClient(ctx, t.ClientID, &accessTokenRow{Hash: t.Hash, ClientID: t.ClientID, ExpiresAt: storedTime(t.Expires)})
}

// insertForClient inserts row (a token's, a session's) of the client
// whose id is exactly clientID, or returns callevents.ErrClientNotFound.
func (db *DB) insertForClient(ctx context.Context, clientID string, row any) error {
	err := db.transaction(ctx, func(tx *gorm.DB) error {
		if _, err := findClient(tx.Select("id"), clientID); err != nil {
			return err
		}
		return tx.Create(row).Error
	})
	return formatError(err, writing, callevents.ErrClientNotFound)
}

// FindAccessToken returns the token with this hash, expired or not (the
// caller tells "expired" from "unknown"), or
// callevents.ErrAccessTokenNotFound.
func (db *DB) FindAccessToken(ctx context.Context, hash string) (callevents.AccessToken, callevents.Client, error) {
	// One joined query: this runs on every authenticated request.
	row, found, err := findHashWithClient(db.gorm.WithContext(ctx), "access_tokens", hash)
	if err != nil {
		return callevents.AccessToken{}, callevents.Client{}, formatError(err, reading, nil)
	}
	if !found {
		return callevents.AccessToken{}, callevents.Client{}, callevents.ErrAccessTokenNotFound
	}
	return callevents.AccessToken{Hash: row.Hash, ClientID: row.ClientID, Expires: row.ExpiresAt.UTC()}, row.client(), nil
}

// hashWithClient is a row keyed by a hash (an access token, a console
// session) joined with its client.
type hashWithClient struct {
	Hash       string
	ClientID   string
	ExpiresAt  time.Time
	Name       string
	Scope      string
	SecretHash string
	CreatedAt  time.Time
}

func (r hashWithClient) client() callevents.Client {
	return clientRow{ID: r.ClientID, Name: r.Name, Scope: r.Scope, SecretHash: r.SecretHash, CreatedAt: r.CreatedAt}.client()
}

// findHashWithClient reads the row of table (access_tokens or
// console_sessions) with this hash, and its client, in one query.
func findHashWithClient(g *gorm.DB, table, hash string) (hashWithClient, bool, error) {
	var row hashWithClient
	res := g.Table(table).
		Select(table+".hash, "+table+".client_id, "+table+".expires_at, api_clients.name, api_clients.scope, api_clients.secret_hash, api_clients.created_at").
		Joins("JOIN api_clients ON api_clients.id = "+table+".client_id").
		Where(table+".hash = ?", hash).Limit(1).Scan(&row)
	return row, res.RowsAffected > 0, res.Error
}

// DeleteExpiredAccessTokens deletes the tokens whose expiry is before now.
func (db *DB) DeleteExpiredAccessTokens(ctx context.Context, now time.Time) error {
	err := db.writeSQLite(ctx, func(w *gorm.DB) error {
		return w.Where("expires_at < ?", now.UTC()).Delete(&accessTokenRow{}).Error
	})
	return formatError(err, writing, nil)
}
