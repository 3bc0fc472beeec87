package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/callevents/callevents"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

var _ callevents.DeliveryLog = (*DB)(nil)

// whereDeliveries restricts q to the deliveries selected by f (paging
// aside). Every form starts with extension, a prefix of
// deliveries_extension_seq, which also gives the seq order.
func whereDeliveries(q *gorm.DB, f callevents.DeliveryFilter) *gorm.DB {
	q = q.Where("extension = ?", string(f.Extension))
	if f.ID != "" {
		q = q.Where("id = ?", f.ID)
	}
	if f.CallEventID != "" {
		q = q.Where("call_event_id = ?", f.CallEventID)
	}
	if f.CallID != "" {
		q = q.Where("call_id = ?", f.CallID)
	}
	if f.State != "" {
		q = q.Where("state = ?", string(f.State))
	}
	return q
}

// FindDeliveries returns the page of the deliveries selected by f, newest
// (highest seq) first, each with its History, and how many match without
// paging. Limit 0 means no limit; a negative Offset or Limit counts as 0.
// One query for the page, one for the histories of the whole page, and a
// count only when the page cannot tell the total.
func (db *DB) FindDeliveries(ctx context.Context, f callevents.DeliveryFilter) ([]callevents.Delivery, int, error) {
	g := db.gorm.WithContext(ctx)
	offset := max(f.Offset, 0)
	limit := f.Limit
	if limit <= 0 {
		limit = math.MaxInt32 // MySQL accepts OFFSET only after a LIMIT
	}
	rows, err := scanDeliveries(whereDeliveries(g.Model(&deliveryRow{}), f).Select(deliveryColumns).
		Order("seq DESC").Offset(offset).Limit(limit).Rows())
	if err != nil {
		return nil, 0, formatError(err, reading, nil)
	}
	items, err := withHistory(g, rows)
	if err != nil {
		return nil, 0, formatError(err, reading, nil)
	}
	if len(items) < limit && (len(items) > 0 || offset == 0) {
		return items, offset + len(items), nil
	}
	var total int64
	if err := whereDeliveries(g.Model(&deliveryRow{}), f).Count(&total).Error; err != nil {
		return nil, 0, formatError(err, reading, nil)
	}
	return items, int(total), nil
}

// withHistory returns rows as deliveries with their attempts, oldest first,
// read in one query.
func withHistory(q *gorm.DB, rows []deliveryRow) ([]callevents.Delivery, error) {
	items := make([]callevents.Delivery, len(rows))
	index := make(map[int64]int, len(rows))
	seqs := make([]int64, len(rows))
	for i, r := range rows {
		items[i] = r.delivery()
		items[i].History = []callevents.DeliveryAttempt{}
		index[r.Seq] = i
		seqs[i] = r.Seq
	}
	err := chunks(seqs, inChunk, func(part []int64) error {
		var attempts []attemptRow
		if err := q.Where("delivery_seq IN ?", part).Order("delivery_seq, seq").Find(&attempts).Error; err != nil {
			return err
		}
		for _, a := range attempts {
			i := index[a.DeliverySeq]
			items[i].History = append(items[i].History, callevents.DeliveryAttempt{
				Attempt:    a.Attempt,
				At:         a.At.UTC(),
				StatusCode: a.StatusCode,
				ErrorClass: a.ErrorClass,
				Latency:    time.Duration(a.LatencyUS) * time.Microsecond,
			})
		}
		return nil
	})
	return items, err
}

func deliveryNotFound(id string) error {
	if len(id) > 64 {
		id = id[:64] + "…"
	}
	return callevents.Errorf(callevents.CodeDeliveryNotFound, "Delivery %q not found.", id)
}

// ResendDelivery makes the delivered or failed delivery id of ext pending
// and due at now, keeping its id, attempt count and history, and returns
// it. Code 256 when ext has no such delivery; code 400 when it is pending
// or running (it will go out anyway) or cancelled (its Call Event was
// disabled or deleted, or a receiver answered 410: re-enable it and wait
// for new activity instead).
func (db *DB) ResendDelivery(ctx context.Context, ext callevents.Extension, id string, now time.Time) (callevents.Delivery, error) {
	now = queueTime(now)
	var resent callevents.Delivery
	err := db.transaction(ctx, func(tx *gorm.DB) error {
		q := tx.Model(&deliveryRow{}).Select(deliveryColumns).Where("id = ? AND extension = ?", id, string(ext)).Limit(1)
		if db.dialect == DialectMySQL {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		rows, err := scanDeliveries(q.Rows())
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return deliveryNotFound(id)
		}
		row := rows[0]
		switch callevents.DeliveryState(row.State) {
		case callevents.DeliveryDelivered, callevents.DeliveryFailed:
		case callevents.DeliveryCancelled:
			return callevents.Errorf(callevents.CodeMalformedRequest,
				"Delivery %q was cancelled (its Call Event was disabled or deleted): it cannot be resent.", id)
		default:
			return callevents.Errorf(callevents.CodeMalformedRequest,
				"Delivery %q is %s: only a delivered or failed delivery can be resent.", id, row.State)
		}
		err = tx.Model(&deliveryRow{}).Where("seq = ?", row.Seq).Updates(map[string]any{
			"state":           string(callevents.DeliveryPending),
			"next_attempt_at": now,
			"finished_at":     nil,
		}).Error
		if err != nil {
			return err
		}
		row.State, row.NextAttemptAt, row.FinishedAt = string(callevents.DeliveryPending), now, nil
		items, err := withHistory(tx, []deliveryRow{row})
		if err != nil {
			return err
		}
		resent = items[0]
		return nil
	})
	if err != nil {
		return callevents.Delivery{}, formatError(err, writing, nil)
	}
	return resent, nil
}

var _ callevents.QueueStatsReader = (*DB)(nil)

// QueueStats counts the pending and running deliveries and measures how long
// the oldest due pending one has waited since it became due, for metrics at
// scrape time. Two queries, both on the (state, next_attempt_at) index.
func (db *DB) QueueStats(ctx context.Context, now time.Time) (callevents.QueueStats, error) {
	g := db.gorm.WithContext(ctx)
	var counts []struct {
		State string
		N     int
	}
	err := g.Model(&deliveryRow{}).Select("state, COUNT(*) AS n").
		Where("state IN ?", []string{string(callevents.DeliveryPending), string(callevents.DeliveryRunning)}).
		Group("state").Scan(&counts).Error
	if err != nil {
		return callevents.QueueStats{}, formatError(err, reading, nil)
	}
	var st callevents.QueueStats
	for _, c := range counts {
		switch callevents.DeliveryState(c.State) {
		case callevents.DeliveryPending:
			st.Pending = c.N
		case callevents.DeliveryRunning:
			st.Running = c.N
		}
	}
	if st.Pending == 0 {
		return st, nil
	}
	now = queueTime(now)
	rows, err := g.Model(&deliveryRow{}).Select("next_attempt_at").
		Where("state = ? AND next_attempt_at <= ?", string(callevents.DeliveryPending), now).
		Order("next_attempt_at").Limit(1).Rows()
	if err != nil {
		return callevents.QueueStats{}, formatError(err, reading, nil)
	}
	defer rows.Close()
	if rows.Next() {
		var due time.Time
		if err := rows.Scan(&due); err != nil {
			return callevents.QueueStats{}, formatError(err, reading, nil)
		}
		st.OldestDue = max(now.Sub(due), 0)
	}
	if err := rows.Err(); err != nil {
		return callevents.QueueStats{}, formatError(err, reading, nil)
	}
	return st, nil
}

var _ callevents.DeliveryOutcomeReader = (*DB)(nil)

// DeliveryOutcomes counts the deliveries delivered and failed per minute
// since since, grouped in the database over the finished_at index.
func (db *DB) DeliveryOutcomes(ctx context.Context, since time.Time) ([]callevents.OutcomeCount, error) {
	// The minute as text: SQLite keeps times as UTC text
	// ("2006-01-02 15:04:05…"), MySQL formats its DATETIME.
	minute := "substr(finished_at, 1, 16)"
	if db.dialect == DialectMySQL {
		minute = "DATE_FORMAT(finished_at, '%Y-%m-%d %H:%i')"
	}
	var rows []struct {
		Minute string
		State  string
		N      int
	}
	err := db.gorm.WithContext(ctx).Model(&deliveryRow{}).Select(minute+" AS minute, state, COUNT(*) AS n").
		Where("finished_at >= ? AND state IN ?", queueTime(since), []string{string(callevents.DeliveryDelivered), string(callevents.DeliveryFailed)}).
		Group("minute, state").Order("minute").Scan(&rows).Error
	if err != nil {
		return nil, formatError(err, reading, nil)
	}
	var out []callevents.OutcomeCount
	for _, r := range rows {
		// The SQLite driver reads text that looks like a time as one
		// (_texttotime), and gives it back as RFC 3339.
		m, err := time.Parse("2006-01-02 15:04", r.Minute)
		if err != nil {
			m, err = time.Parse(time.RFC3339, r.Minute)
		}
		if err != nil {
			return nil, formatError(fmt.Errorf("store: minute %q: %w", r.Minute, err), reading, nil)
		}
		if len(out) == 0 || !out[len(out)-1].Minute.Equal(m) {
			out = append(out, callevents.OutcomeCount{Minute: m})
		}
		if callevents.DeliveryState(r.State) == callevents.DeliveryDelivered {
			out[len(out)-1].Delivered += r.N
		} else {
			out[len(out)-1].Failed += r.N
		}
	}
	return out, nil
}
