package store

import (
	"context"
	"math"
	"time"
	"unicode/utf8"

	"github.com/callevents/callevents"
	"gorm.io/gorm"
)

var _ callevents.CallEventStore = (*DB)(nil)

// whereFilter restricts q to the Call Events selected by f (paging aside).
// Every form starts with extension (then type), a prefix of
// call_events_extension_type_seq.
func whereFilter(q *gorm.DB, f callevents.CallEventFilter) *gorm.DB {
	q = q.Where("extension = ?", string(f.Extension))
	if f.Type != nil {
		q = q.Where("type = ?", int(*f.Type))
	}
	if f.ID != nil {
		q = q.Where("id = ?", *f.ID)
	}
	return whereMatch(q, f.Match)
}

// whereMatch restricts q to the Call Events that f.Match keeps. Text is
// compared with its length too: MySQL's utf8mb4_bin pads with spaces, so
// "a" = "a " there, while a Match is byte for byte.
func whereMatch(q *gorm.DB, m callevents.CallEventMatch) *gorm.DB {
	for _, t := range []struct {
		column string
		value  *string
	}{{"id", m.ID}, {"url", m.URL}, {"note", m.Note}} {
		switch {
		case t.value == nil:
		case !utf8.ValidString(*t.value):
			q = q.Where("1 = 0") // MySQL would refuse the comparison
		default:
			q = q.Where(t.column+" = ? AND LENGTH("+t.column+") = LENGTH(?)", *t.value, *t.value)
		}
	}
	if m.Type != nil {
		q = q.Where("type = ?", int(*m.Type))
	}
	if m.Method != nil {
		q = q.Where("method = ?", int(*m.Method))
	}
	if m.Status != nil {
		q = q.Where("status = ?", int(*m.Status))
	}
	if m.Modified != nil {
		q = q.Where("modified_at = ?", storedTime(*m.Modified))
	}
	return q
}

func callEventNotFound(id string) error {
	return callevents.Errorf(callevents.CodeCallEventNotFound, "Phone call event %q not found.", callevents.Truncate(id, 64))
}

// CreateCallEvent inserts c unless its extension already has
// maxPerExtension Call Events (code 308; so 0 refuses every insert). The
// count and the insert run in one transaction holding the extension's
// lock (SQLite: the database write lock), so concurrent creators cannot
// both see room for one more. c.Modified is stored in UTC, truncated to
// the second. A duplicate id is an internal error (152): ids are random.
func (db *DB) CreateCallEvent(ctx context.Context, c callevents.CallEvent, maxPerExtension int) error {
	row := newCallEventRow(c)
	err := db.transaction(ctx, func(tx *gorm.DB) error {
		if err := db.lockFor(tx, extensionLock(row.Extension)); err != nil {
			return err
		}
		var count int64
		if err := tx.Model(&callEventRow{}).Where("extension = ?", row.Extension).Count(&count).Error; err != nil {
			return err
		}
		if count >= int64(maxPerExtension) {
			return callevents.Errorf(callevents.CodeLimitReached,
				"Limit of Call Events for the extension reached: %s already has %d.", c.Extension, count)
		}
		row.Seq = 0 // a rerun after a deadlock inserts afresh
		return tx.Create(&row).Error
	})
	return formatError(err, writing, nil)
}

// FindCallEvents returns the page of Call Events selected by f in seq
// order (oldest first) and how many match without paging. Limit 0 means no
// limit; a negative Offset or Limit counts as 0. One indexed query for the
// page, and a count only when the page is full or past the end.
func (db *DB) FindCallEvents(ctx context.Context, f callevents.CallEventFilter) ([]callevents.CallEvent, int, error) {
	g := db.gorm.WithContext(ctx)
	offset := max(f.Offset, 0)
	limit := f.Limit
	if limit <= 0 {
		// MySQL accepts OFFSET only after a LIMIT: "no limit" is a huge one.
		limit = math.MaxInt32
	}
	// Rows are scanned by hand: gorm's reflective scan cost a tenth of a
	// request on this, the most frequent query.
	sqlRows, err := whereFilter(g.Model(&callEventRow{}), f).
		Select("id, extension, type, method, url, status, note, secret, modified_at").
		Order("seq").Offset(offset).Limit(limit).Rows()
	if err != nil {
		return nil, 0, formatError(err, reading, nil)
	}
	defer sqlRows.Close()
	items := []callevents.CallEvent{}
	for sqlRows.Next() {
		var r callEventRow
		if err := sqlRows.Scan(&r.ID, &r.Extension, &r.Type, &r.Method, &r.URL, &r.Status, &r.Note, &r.Secret, &r.ModifiedAt); err != nil {
			return nil, 0, formatError(err, reading, nil)
		}
		items = append(items, r.callEvent())
	}
	if err := sqlRows.Err(); err != nil {
		return nil, 0, formatError(err, reading, nil)
	}
	// A page that is neither full nor past the end tells the total by
	// itself; only then is counting skipped.
	if len(items) < limit && (len(items) > 0 || offset == 0) {
		return items, offset + len(items), nil
	}
	var total int64
	if err := whereFilter(g.Model(&callEventRow{}), f).Count(&total).Error; err != nil {
		return nil, 0, formatError(err, reading, nil)
	}
	return items, int(total), nil
}

// UpdateCallEvent applies upd to the Call Event with this extension, type
// and id, sets Modified to now (UTC, whole seconds) and returns the result,
// or code 255 when there is no such Call Event. The read and the write run
// in one transaction holding the extension's lock. A Call Event left
// disabled has its pending deliveries cancelled in that transaction.
func (db *DB) UpdateCallEvent(ctx context.Context, ext callevents.Extension, typ callevents.EventType, id string, upd callevents.CallEventUpdate, now time.Time) (callevents.CallEvent, error) {
	var updated callevents.CallEvent
	err := db.transaction(ctx, func(tx *gorm.DB) error {
		if err := db.lockFor(tx, extensionLock(string(ext))); err != nil {
			return err
		}
		var row callEventRow
		err := tx.Where("extension = ? AND type = ? AND id = ?", string(ext), int(typ), id).
			Take(&row).Error
		if err != nil {
			return err
		}
		c := upd.Apply(row.callEvent())
		c.Modified = now
		next := newCallEventRow(c)
		err = tx.Model(&callEventRow{}).Where("seq = ?", row.Seq).Updates(map[string]any{
			"url":         next.URL,
			"method":      next.Method,
			"status":      next.Status,
			"note":        next.Note,
			"secret":      next.Secret,
			"modified_at": next.ModifiedAt,
		}).Error
		if err != nil {
			return err
		}
		updated = next.callEvent()
		if updated.Status == callevents.StatusDisabled {
			return cancelPending(tx, []string{row.ID}, now)
		}
		if origin := callevents.Origin(next.URL); origin != callevents.Origin(row.URL) {
			// Fair share counts a delivery against the receiver it goes
			// to now; its order key stays what it was accepted under.
			return tx.Model(&deliveryRow{}).Where("call_event_id = ? AND state = ?", row.ID, string(callevents.DeliveryPending)).
				Update("origin", origin).Error
		}
		return nil
	})
	if err != nil {
		return callevents.CallEvent{}, formatError(err, writing, callEventNotFound(id))
	}
	return updated, nil
}

// DeleteCallEvents deletes the Call Events selected by f (paging ignored)
// in one transaction and returns their ids in seq order. Their pending
// deliveries are cancelled in that transaction (stamped with the current
// time, since the interface passes none). Returns code 255 when f.ID is set
// and matches nothing; otherwise an empty selection is no error.
func (db *DB) DeleteCallEvents(ctx context.Context, f callevents.CallEventFilter) ([]string, error) {
	var ids []string
	err := db.transaction(ctx, func(tx *gorm.DB) error {
		if err := db.lockFor(tx, extensionLock(string(f.Extension))); err != nil {
			return err
		}
		var rows []callEventRow
		if err := whereFilter(tx.Select("seq", "id"), f).Order("seq").Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			if f.ID != nil {
				return gorm.ErrRecordNotFound
			}
			ids = []string{}
			return nil
		}
		seqs := make([]int64, len(rows))
		ids = make([]string, len(rows))
		for i, r := range rows {
			seqs[i], ids[i] = r.Seq, r.ID
		}
		// By seq, so exactly the rows read above go.
		if err := tx.Where("seq IN ?", seqs).Delete(&callEventRow{}).Error; err != nil {
			return err
		}
		return cancelPending(tx, ids, time.Now())
	})
	if err != nil {
		id := ""
		if f.ID != nil {
			id = *f.ID
		}
		return nil, formatError(err, writing, callEventNotFound(id))
	}
	return ids, nil
}
