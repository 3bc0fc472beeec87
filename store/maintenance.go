package store

import (
	"context"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// cleanChunk is how many rows one cleaning transaction deletes: small
// enough that neither backend holds its locks (SQLite: the whole database)
// for long, whatever the backlog.
const cleanChunk = 1000

// CleanFinished deletes the deliveries finished before before, with their
// attempts, and the activities accepted before before, cleanChunk rows per
// transaction, and returns how many deliveries it deleted. Once an
// activity's row is gone, the same report would be queued again: before
// must lie beyond any PBX's retries.
func (db *DB) CleanFinished(ctx context.Context, before time.Time) (int, error) {
	before = queueTime(before)
	deleted, err := db.inChunks(ctx, func(tx *gorm.DB) (int, int, error) {
		q := tx.Model(&deliveryRow{}).Where("finished_at < ?", before).Order("finished_at").Limit(cleanChunk)
		if db.dialect == DialectMySQL {
			// Locked, so that a resend cannot slip in between the two
			// deletes; one being resent is skipped, not waited for.
			q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
		}
		var found []struct {
			Seq       int64
			OrderHash string
		}
		if err := q.Select("seq, order_hash").Find(&found).Error; err != nil || len(found) == 0 {
			return 0, 0, err
		}
		seqs := make([]int64, len(found))
		hashes := make([]string, 0, len(found))
		for i, f := range found {
			seqs[i] = f.Seq
			hashes = append(hashes, f.OrderHash)
		}
		if err := tx.Where("delivery_seq IN ?", seqs).Delete(&attemptRow{}).Error; err != nil {
			return 0, 0, err
		}
		res := tx.Where("seq IN ?", seqs).Delete(&deliveryRow{})
		if res.Error != nil {
			return 0, 0, res.Error
		}
		if db.dialect != DialectMySQL {
			return len(seqs), int(res.RowsAffected), nil
		}
		// Their order keys go too once no delivery is left: the same call
		// reported again starts over at 1, as on SQLite. updated_at is set
		// under the key row's lock by the accept that hands out a
		// sequence, so a key in use is never taken (the DELETE rereads the
		// row it waited for).
		slices.Sort(hashes)
		err := tx.Exec(deleteUnusedOrderKeysSQL, slices.Compact(hashes), before).Error
		return len(seqs), int(res.RowsAffected), err
	})
	if err != nil {
		return deleted, err
	}
	_, err = db.inChunks(ctx, func(tx *gorm.DB) (int, int, error) {
		var hashes []string
		err := tx.Model(&activityRow{}).Where("accepted_at < ?", before).
			Order("accepted_at").Limit(cleanChunk).Pluck("dedupe_hash", &hashes).Error
		if err != nil || len(hashes) == 0 {
			return 0, 0, err
		}
		res := tx.Where("dedupe_hash IN ?", hashes).Delete(&activityRow{})
		return len(hashes), int(res.RowsAffected), res.Error
	})
	return deleted, err
}

// inChunks runs chunk in a transaction of its own again and again until it
// selects fewer than cleanChunk rows, and returns the sum of the rows it
// deleted.
func (db *DB) inChunks(ctx context.Context, chunk func(tx *gorm.DB) (selected, deleted int, err error)) (int, error) {
	total := 0
	for {
		var selected, deleted int
		err := db.transaction(ctx, func(tx *gorm.DB) error {
			var err error
			selected, deleted, err = chunk(tx)
			return err
		})
		if err != nil {
			return total, formatError(err, writing, nil)
		}
		total += deleted
		if selected < cleanChunk {
			return total, nil
		}
	}
}
