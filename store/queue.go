package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/callevents/callevents"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

var _ callevents.DeliveryQueue = (*DB)(nil)

// newOriginsPerClaim is how many rows beyond the listed origins' room a
// claim without PassOver reads for origins not listed: enough to start a
// newcomer now and then, few enough that a claim meant to refill a busy
// origin reads little more than that.
const newOriginsPerClaim = 4

// maxPausedInQuery bounds the paused receivers a claim query leaves out
// by itself; rows of any further ones are passed over as they come.
const maxPausedInQuery = 32

// maxClaimRounds bounds the queries one claim makes while rows it passes
// over (their origin out of room) leave it short of what was asked.
const maxClaimRounds = 8

// ClaimDue leases up to c.N claimable deliveries (see claimQuery) to
// c.Worker until c.Now+c.Lease, in one transaction: each becomes running
// with one more attempt, and comes back with its Call Event's current URL,
// method and secret. A delivery whose Call Event is gone or disabled is
// cancelled instead, and the claim looks again for the room it leaves (a
// cancelled one may have held back a later one of its order key). Rows of
// an origin beyond its room (c.RoomFor) are passed over, unchanged. With
// c.PassOver the claim's queries leave such origins out, and the next
// query looks past them, so one origin's backlog does not fill a claim
// meant for everyone; without it the claim reads only the oldest due rows,
// which costs a few rows however deep the backlog of an origin without
// room.
//
// On SQLite the immediate transaction excludes every other writer, so two
// claimers cannot select the same row. On MySQL the selected rows stay
// locked until the transaction ends, and other claimers skip them.
func (db *DB) ClaimDue(ctx context.Context, c callevents.Claim) ([]callevents.Delivery, error) {
	if c.N <= 0 {
		return nil, nil
	}
	now := queueTime(c.Now)
	leaseUntil := queueTime(now.Add(c.Lease))
	holdEdge := queueTime(now.Add(-c.OrderHold))
	mysql := db.dialect == DialectMySQL
	var claimed []callevents.Delivery
	err := db.transaction(ctx, func(tx *gorm.DB) error {
		claimed = nil
		taken := map[string]int{}
		takenPaused := map[callevents.PausedReceiver]int{}
		var skip []string
		var paused []callevents.PausedReceiver // of skip's kind, by breaker
		if c.PassOver {
			for origin := range c.Room {
				if c.RoomFor(origin) <= 0 {
					skip = append(skip, origin)
				}
			}
			slices.Sort(skip)
			for k, n := range c.Paused {
				if n <= 0 && len(paused) < maxPausedInQuery {
					paused = append(paused, k)
				}
			}
		}
		// Without PassOver the oldest due rows are all the claim reads: no
		// more of them than the origins have room for.
		limit := c.N
		if !c.PassOver && len(c.Room) > 0 && c.DefaultRoom > 0 {
			room := min(c.DefaultRoom, newOriginsPerClaim)
			for origin := range c.Room {
				room += max(c.RoomFor(origin), 0)
			}
			limit = min(limit, room)
		}
		for round := 0; len(claimed) < limit && round < maxClaimRounds; round++ {
			want := limit - len(claimed)
			args := []any{string(callevents.DeliveryPending), now}
			if len(skip) > 0 {
				args = append(args, skip)
			}
			for _, p := range paused {
				args = append(args, p.Origin, p.Organization+"*%")
			}
			if c.OrderHold > 0 {
				args = append(args, holdEdge)
			}
			args = append(args, string(callevents.DeliveryPending), string(callevents.DeliveryRunning), want)
			rows, err := scanDeliveries(tx.Raw(claimQuery(len(skip), len(paused), c.OrderHold > 0, mysql), args...).Rows())
			if err != nil || len(rows) == 0 {
				return err
			}
			more := len(rows) == want // the scan may have stopped short of more
			if mysql {
				kept, err := laterOnes(tx, rows, c.OrderHold, holdEdge)
				if err != nil {
					return err
				}
				if len(kept) < len(rows) {
					more = false // those would come back: leave them to the next claim
				}
				rows = kept
			}
			fit := rows[:0]
			for _, r := range rows {
				key := callevents.PausedReceiver{Organization: callevents.Extension(r.Extension).Organization(), Origin: r.Origin}
				allowed, isPaused := c.PausedRoom(key.Organization, key.Origin)
				switch {
				case taken[r.Origin] >= c.RoomFor(r.Origin):
					if !c.PassOver {
						more = false // the same rows would come first again
					} else if !slices.Contains(skip, r.Origin) {
						skip = append(skip, r.Origin)
						more = true
					}
					continue
				case isPaused && takenPaused[key] >= allowed:
					if !c.PassOver {
						more = false
					} else if !slices.Contains(paused, key) && len(paused) < maxPausedInQuery {
						paused = append(paused, key)
						more = true
					}
					continue
				}
				taken[r.Origin]++
				if isPaused {
					takenPaused[key]++
				}
				fit = append(fit, r)
			}
			got, err := db.lease(tx, fit, c.Worker, now, leaseUntil)
			if err != nil {
				return err
			}
			claimed = append(claimed, got...)
			if !more && (len(got) == len(fit) || len(fit) < len(rows)) {
				// Nothing cancelled, or rows left that would come back
				// (over their room, or behind an earlier one): no more
				// to find now.
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, formatError(err, writing, nil)
	}
	return claimed, nil
}

// laterOnes drops the rows that have an earlier unfinished delivery of
// their order key, read again after the claim's scan (MySQL). The scan's
// NOT EXISTS reads a snapshot taken when it first ran, while its locking
// outer read sees rows committed since: a delivery whose accepting
// transaction committed during the scan could come back though the one
// before it, committed just earlier, was not in the snapshot. This read is
// a statement of its own, so it sees every commit up to the scan's end.
func laterOnes(tx *gorm.DB, rows []deliveryRow, hold time.Duration, holdEdge time.Time) ([]deliveryRow, error) {
	var hashes []string
	for _, r := range rows {
		if r.Sequence > 1 && (hold <= 0 || r.NextAttemptAt.After(holdEdge)) {
			hashes = append(hashes, r.OrderHash)
		}
	}
	if len(hashes) == 0 {
		return rows, nil
	}
	slices.Sort(hashes)
	hashes = slices.Compact(hashes)
	first := map[string]int{}
	err := chunks(hashes, inChunk, func(part []string) error {
		var got []struct {
			OrderHash string
			First     int
		}
		err := tx.Table("deliveries").Select("order_hash, MIN(sequence) AS first").
			Where("order_hash IN ? AND state IN ?", part, []string{string(callevents.DeliveryPending), string(callevents.DeliveryRunning)}).
			Group("order_hash").Scan(&got).Error
		for _, g := range got {
			first[g.OrderHash] = g.First
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	kept := rows[:0]
	for _, r := range rows {
		if f, ok := first[r.OrderHash]; ok && f < r.Sequence && (hold <= 0 || r.NextAttemptAt.After(holdEdge)) {
			continue
		}
		kept = append(kept, r)
	}
	return kept, nil
}

// lease makes rows running under worker until leaseUntil and returns them
// as deliveries with their Call Event's URL, method and secret; rows whose
// Call Event is gone or disabled are cancelled instead, and not returned.
func (db *DB) lease(tx *gorm.DB, rows []deliveryRow, worker string, now, leaseUntil time.Time) ([]callevents.Delivery, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	// A plain read: on MySQL a locking one would make claimers of one busy
	// Call Event skip each other's deliveries wholesale.
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.CallEventID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var events []callEventRow
	if err := tx.Select("id, method, url, status, secret").Where("id IN ?", ids).Find(&events).Error; err != nil {
		return nil, err
	}
	byID := make(map[string]callEventRow, len(events))
	for _, e := range events {
		byID[e.ID] = e
	}
	var run, cancel []int64
	var claimed []callevents.Delivery
	for _, r := range rows {
		ce, ok := byID[r.CallEventID]
		if !ok || ce.Status != int(callevents.StatusEnabled) {
			cancel = append(cancel, r.Seq)
			continue
		}
		run = append(run, r.Seq)
		d := r.delivery()
		d.State = callevents.DeliveryRunning
		d.Attempts++
		d.URL, d.Method, d.Secret = ce.URL, callevents.Method(ce.Method), ce.Secret
		claimed = append(claimed, d)
	}
	if len(run) > 0 {
		err := tx.Model(&deliveryRow{}).Where("seq IN ?", run).Updates(map[string]any{
			"state":       string(callevents.DeliveryRunning),
			"attempts":    gorm.Expr("attempts + 1"),
			"lease_until": leaseUntil,
			"claimed_by":  worker,
		}).Error
		if err != nil {
			return nil, err
		}
	}
	if len(cancel) > 0 {
		err := tx.Model(&deliveryRow{}).Where("seq IN ?", cancel).Updates(map[string]any{
			"state":       string(callevents.DeliveryCancelled),
			"finished_at": now,
		}).Error
		if err != nil {
			return nil, err
		}
	}
	return claimed, nil
}

// RecordAttempts stores each outcome's attempt and moves its delivery to
// o.Next, all in one transaction, each provided the delivery is still
// running under worker's lease; an outcome whose delivery is not (a
// rescuer gave it away, or it is unknown) is skipped, which is no error. A
// final state stamps finished_at with the attempt's time; pending sets the
// next attempt's time. DisableCallEvent also disables the Call Event and
// cancels its pending deliveries, as UpdateCallEvent would. An outcome
// whose Next is not pending, delivered, failed or cancelled fails the call
// and nothing is stored.
//
// Batching is the caller's: a dispatcher's recorder hands over the
// outcomes of all the requests that ended while the last batch committed.
func (db *DB) RecordAttempts(ctx context.Context, worker string, outcomes []callevents.AttemptOutcome) error {
	for _, o := range outcomes {
		switch o.Next {
		case callevents.DeliveryPending, callevents.DeliveryDelivered, callevents.DeliveryFailed, callevents.DeliveryCancelled:
		default:
			return callevents.UpdateFailed(fmt.Errorf("store: recording an attempt: next state %q is not pending, delivered, failed or cancelled", o.Next))
		}
	}
	if len(outcomes) == 0 {
		return nil
	}
	err := db.transaction(ctx, func(tx *gorm.DB) error { return db.recordAttempts(tx, worker, outcomes) })
	return formatError(err, writing, nil)
}

// recordAttempts is RecordAttempts' work, within tx: two statements per
// outcome, three more for one that disables its Call Event.
func (db *DB) recordAttempts(tx *gorm.DB, worker string, outcomes []callevents.AttemptOutcome) error {
	// Outcomes that disable their Call Event take the extensions' locks
	// before any delivery's row, in the order UpdateCallEvent takes them
	// (extension, then deliveries), so the two cannot deadlock.
	var disabling []string
	for _, o := range outcomes {
		if o.DisableCallEvent {
			disabling = append(disabling, o.DeliveryID)
		}
	}
	held := map[string]string{} // delivery id → Call Event id
	if len(disabling) > 0 {
		var rows []deliveryRow
		err := tx.Select("id, call_event_id, extension").
			Where("id IN ? AND state = ? AND claimed_by = ?", disabling, string(callevents.DeliveryRunning), worker).
			Find(&rows).Error
		if err != nil {
			return err
		}
		exts := make([]string, 0, len(rows))
		for _, r := range rows {
			held[r.ID] = r.CallEventID
			exts = append(exts, r.Extension)
		}
		slices.Sort(exts)
		for _, ext := range slices.Compact(exts) {
			if err := db.lockFor(tx, extensionLock(ext)); err != nil {
				return err
			}
		}
	}
	// Retries (each with its own next attempt time) and 410s go one by one;
	// they are the exception. The rest end their deliveries and are
	// recorded together (recordFinished).
	var finished []callevents.AttemptOutcome
	for _, o := range outcomes {
		if o.DisableCallEvent || o.Next == callevents.DeliveryPending {
			if err := recordAttempt(tx, worker, o, held); err != nil {
				return err
			}
			continue
		}
		finished = append(finished, o)
	}
	return chunks(finished, inChunk, func(part []callevents.AttemptOutcome) error {
		return db.recordFinished(tx, worker, part)
	})
}

// recordFinished records outcomes that end their deliveries (delivered,
// failed, or cancelled without disabling) in a few statements for the whole
// batch instead of two per outcome: a read of the deliveries worker still
// holds (locking them on MySQL), one UPDATE per distinct (state, status,
// error class), and one multi-row INSERT of the attempts. A group's
// finished_at is its latest attempt time; each attempt row keeps its own.
func (db *DB) recordFinished(tx *gorm.DB, worker string, outcomes []callevents.AttemptOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	ids := make([]string, len(outcomes))
	for i, o := range outcomes {
		ids[i] = o.DeliveryID
	}
	var rows []struct {
		Seq      int64
		ID       string
		Attempts int
	}
	q := tx.Table("deliveries").Select("seq, id, attempts").
		Where("id IN ? AND state = ? AND claimed_by = ?", ids, string(callevents.DeliveryRunning), worker)
	if db.dialect == DialectMySQL {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	if err := q.Find(&rows).Error; err != nil {
		return err
	}
	type held struct {
		seq      int64
		attempts int
	}
	holding := make(map[string]held, len(rows))
	for _, r := range rows {
		holding[r.ID] = held{r.Seq, r.Attempts}
	}
	type groupKey struct {
		state  string
		status int
		class  string
	}
	type group struct {
		seqs []int64
		at   time.Time
	}
	groups := map[groupKey]*group{}
	var keys []groupKey
	attempts := make([]attemptRow, 0, len(rows))
	for _, o := range outcomes {
		h, ok := holding[o.DeliveryID]
		if !ok {
			continue // the lease is gone: a rescuer gave it to someone else
		}
		delete(holding, o.DeliveryID) // the same id twice in a batch counts once
		at := queueTime(o.Attempt.At)
		class := clip(o.Attempt.ErrorClass, maxErrorClass)
		k := groupKey{string(o.Next), o.Attempt.StatusCode, class}
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
			keys = append(keys, k)
		}
		g.seqs = append(g.seqs, h.seq)
		if at.After(g.at) {
			g.at = at
		}
		attempt := o.Attempt.Attempt
		if attempt <= 0 {
			attempt = h.attempts
		}
		attempts = append(attempts, attemptRow{DeliverySeq: h.seq, Attempt: attempt, At: at, StatusCode: o.Attempt.StatusCode,
			ErrorClass: class, LatencyUS: o.Attempt.Latency.Microseconds()})
	}
	for _, k := range keys {
		g := groups[k]
		err := tx.Exec(finishDeliveriesSQL, k.state, k.status, k.class, g.at, g.seqs).Error
		if err != nil {
			return err
		}
	}
	if len(attempts) == 0 {
		return nil
	}
	return tx.CreateInBatches(attempts, insertBatch).Error
}

// recordAttempt records one outcome within tx; held has the Call Events of
// the disabling outcomes whose deliveries worker held when the transaction
// began.
func recordAttempt(tx *gorm.DB, worker string, o callevents.AttemptOutcome, held map[string]string) error {
	callEventID, ok := held[o.DeliveryID]
	if o.DisableCallEvent && !ok {
		return nil
	}
	at := queueTime(o.Attempt.At)
	// Pending keeps finished_at NULL and sets the next attempt's time; a
	// final state keeps the due time and sets finished_at.
	var nextAttempt, finished any
	if o.Next == callevents.DeliveryPending {
		nextAttempt = queueTime(o.NextAttemptAt)
	} else {
		finished = at
	}
	errorClass := clip(o.Attempt.ErrorClass, maxErrorClass)
	// The lease check and the move in one statement: no row changes when
	// worker no longer holds the delivery.
	res := tx.Exec(recordOutcomeSQL, string(o.Next), o.Attempt.StatusCode, errorClass, nextAttempt, finished,
		o.DeliveryID, string(callevents.DeliveryRunning), worker)
	if res.Error != nil || res.RowsAffected == 0 {
		return res.Error
	}
	// The attempt number the worker sent, or else the one it was claimed as.
	err := tx.Exec(insertAttemptSQL, o.Attempt.Attempt, o.Attempt.Attempt, at, o.Attempt.StatusCode, errorClass, o.Attempt.Latency.Microseconds(), o.DeliveryID).Error
	if err != nil || !o.DisableCallEvent {
		return err
	}
	err = tx.Model(&callEventRow{}).Where("id = ?", callEventID).Updates(map[string]any{
		"status":      int(callevents.StatusDisabled),
		"modified_at": storedTime(o.Attempt.At),
	}).Error
	if err != nil {
		return err
	}
	return cancelPending(tx, []string{callEventID}, at)
}

// cancelPending cancels the pending deliveries of the Call Events. Running
// ones are left to finish: their worker's RecordAttempts still applies.
func cancelPending(tx *gorm.DB, callEventIDs []string, now time.Time) error {
	return chunks(callEventIDs, inChunk, func(part []string) error {
		return tx.Model(&deliveryRow{}).
			Where("call_event_id IN ? AND state = ?", part, string(callevents.DeliveryPending)).
			Updates(map[string]any{
				"state":       string(callevents.DeliveryCancelled),
				"finished_at": queueTime(now),
			}).Error
	})
}

// ReleaseClaims gives worker's running deliveries among ids back: pending,
// the attempt uncounted. They stay due, at the time they were claimed at,
// which keeps their place in the queue.
func (db *DB) ReleaseClaims(ctx context.Context, worker string, ids []string) error {
	err := db.writeSQLite(ctx, func(w *gorm.DB) error {
		return chunks(ids, inChunk, func(part []string) error {
			return w.Model(&deliveryRow{}).
				Where("id IN ? AND state = ? AND claimed_by = ?", part, string(callevents.DeliveryRunning), worker).
				Updates(map[string]any{
					"state":       string(callevents.DeliveryPending),
					"attempts":    gorm.Expr("attempts - 1"),
					"lease_until": nil,
					"claimed_by":  "",
				}).Error
		})
	})
	return formatError(err, writing, nil)
}

// RescueExpired makes running deliveries whose lease ended before now
// pending again, and returns how many. The attempt stays counted (it may
// have reached the receiver). They stay due at the time they were claimed
// at, before now, keeping their place in the queue; the worker that lost
// the lease finds its RecordAttempts ignored.
func (db *DB) RescueExpired(ctx context.Context, now time.Time) (int, error) {
	var rescued int64
	err := db.writeSQLite(ctx, func(w *gorm.DB) error {
		res := w.Model(&deliveryRow{}).
			Where("state = ? AND lease_until < ?", string(callevents.DeliveryRunning), queueTime(now)).
			Updates(map[string]any{
				"state":       string(callevents.DeliveryPending),
				"lease_until": nil,
				"claimed_by":  "",
			})
		rescued = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return 0, formatError(err, writing, nil)
	}
	return int(rescued), nil
}
