package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/callevents/callevents"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

var _ callevents.ActivityStore = (*DB)(nil)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// insertIgnore is the INSERT modifier that skips rows whose key exists.
func (db *DB) insertIgnore() clause.Insert {
	if db.dialect == DialectMySQL {
		return clause.Insert{Modifier: "IGNORE"}
	}
	return clause.Insert{Modifier: "OR IGNORE"}
}

// AcceptActivity stores the activities and their deliveries (see
// callevents.ActivityStore). Concurrent calls share transactions
// (groupCommit), and each returns its own counts once the commit that took
// it is done.
func (db *DB) AcceptActivity(ctx context.Context, activities []callevents.CallActivity, now time.Time, h callevents.Handoff) (callevents.ActivityResult, error) {
	call := &acceptCall{now: queueTime(now), reported: len(activities), fresh: map[string]*callevents.CallActivity{}, handoff: h}
	// Duplicates within the request are dropped here; those of other
	// requests in the same transaction, or accepted before, by acceptCalls.
	for i := range activities {
		h := sha256Hex(activities[i].DedupeKey())
		if _, dup := call.fresh[h]; !dup {
			call.fresh[h] = &activities[i]
			call.hashes = append(call.hashes, h)
		}
	}
	if len(call.hashes) == 0 {
		return callevents.ActivityResult{}, nil
	}
	if err := db.accepts.do(ctx, call); err != nil {
		return callevents.ActivityResult{}, err
	}
	// Whatever was reported and not accepted by this call was known, from
	// before or earlier in the call, or was taken by another call of its
	// transaction.
	return callevents.ActivityResult{Queued: call.queued, Accepted: call.accepted, Duplicates: call.reported - call.accepted, Claimed: call.claimed}, nil
}

// commitAccepts is the intake's groupCommit: the calls' work in one
// transaction. The first call's Handoff, if any, is offered the deliveries
// of the calls that name it.
func (db *DB) commitAccepts(ctx context.Context, calls []*acceptCall) error {
	h := handoffOffer{now: calls[0].now}
	for _, c := range calls {
		if c.handoff != nil {
			h.to = c.handoff
			h.claim, h.ok = c.handoff.OfferClaim()
			break
		}
	}
	err := db.transaction(ctx, func(tx *gorm.DB) error {
		h.claimed = nil
		return db.acceptCalls(tx, calls, &h)
	})
	if h.ok {
		if err != nil {
			h.claimed = nil
		}
		h.to.ClaimAccepted(h.claim, h.now, h.claimed)
	}
	return formatError(err, writing, nil)
}

// handoffOffer is a Handoff's offer during one accepting transaction, and
// what the transaction claimed under it.
type handoffOffer struct {
	to      callevents.Handoff
	claim   callevents.Claim
	ok      bool
	now     time.Time // the transaction's
	claimed []callevents.Delivery
	taken   map[string]int // per origin
}

// take reports whether row r, the first of its order key in the
// transaction with no unfinished earlier one (open), of a call offering
// to h.to, fits the offer; if so it makes r running under the offer's
// lease and keeps it as claimed.
func (h *handoffOffer) take(c *acceptCall, r *deliveryRow, open bool, ce callEventRow) bool {
	if !h.ok || c.handoff != h.to || open || len(h.claimed) >= h.claim.N || h.taken[r.Origin] >= h.claim.RoomFor(r.Origin) {
		return false
	}
	if _, paused := h.claim.PausedRoom(callevents.Extension(r.Extension).Organization(), r.Origin); paused {
		return false // a paused receiver's probe is the claim's to choose
	}
	if h.taken == nil {
		h.taken = map[string]int{}
	}
	h.taken[r.Origin]++
	leaseUntil := queueTime(h.now.Add(h.claim.Lease))
	r.State, r.Attempts, r.LeaseUntil, r.ClaimedBy = string(callevents.DeliveryRunning), 1, &leaseUntil, h.claim.Worker
	d := r.delivery()
	d.URL, d.Method, d.Secret = ce.URL, callevents.Method(ce.Method), ce.Secret
	h.claimed = append(h.claimed, d)
	return true
}

type acceptCall struct {
	now      time.Time
	reported int      // activities in the call, duplicates included
	hashes   []string // dedupe hashes, in order, unique within the call
	fresh    map[string]*callevents.CallActivity
	queued   int // deliveries queued
	accepted int // hashes stored by this call
	claimed  int // deliveries leased to handoff
	handoff  callevents.Handoff
}

// acceptWeight is what maxAcceptGroup counts.
func acceptWeight(c *acceptCall) int { return len(c.hashes) }

// maxAcceptGroup bounds the activities one transaction accepts (a single
// call larger than that still goes whole).
const maxAcceptGroup = 2000

// acceptCalls is AcceptActivity's work for a group of calls, within tx. An
// activity reported by two calls of the group counts for the first. What
// fits h's offer is inserted claimed (h.take).
func (db *DB) acceptCalls(tx *gorm.DB, calls []*acceptCall, h *handoffOffer) error {
	owner := map[string]*acceptCall{}
	var hashes []string
	now := calls[0].now
	for _, c := range calls {
		c.queued, c.accepted, c.claimed = 0, 0, 0 // the transaction may run again (errRerun)
		if c.now.After(now) {
			now = c.now
		}
		for _, h := range c.hashes {
			if _, taken := owner[h]; !taken {
				owner[h] = c
				hashes = append(hashes, h)
			}
		}
	}
	h.now, h.taken = now, nil
	accepted, err := db.insertActivities(tx, hashes, now)
	if err != nil || len(accepted) == 0 {
		return err
	}
	type ownedEvent struct {
		call *acceptCall
		acceptedEvent
	}
	var events []ownedEvent
	extensions := map[string]bool{}
	for _, h := range accepted {
		c := owner[h]
		c.accepted++
		a := c.fresh[h]
		for _, ev := range a.ExtensionEvents() {
			events = append(events, ownedEvent{c, acceptedEvent{activity: a, event: ev}})
			extensions[string(ev.Extension)] = true
		}
	}
	targets, err := enabledCallEvents(tx, extensions)
	if err != nil {
		return err
	}
	var rows []deliveryRow
	var callOf []*acceptCall
	var eventOf []callEventRow
	for _, e := range events {
		payload := ""
		for _, ce := range targets[eventKey{string(e.event.Extension), int(e.event.Type)}] {
			if payload == "" {
				payload = e.event.Params.Encode()
			}
			orderKey := callevents.OrderKey(callevents.Extension(ce.Extension), ce.URL, e.activity.CallID)
			rows = append(rows, deliveryRow{
				ID:            callevents.NewDeliveryID(),
				CallEventID:   ce.ID,
				Extension:     ce.Extension,
				Type:          ce.Type,
				CallID:        e.activity.CallID,
				Payload:       payload,
				OrderKey:      orderKey,
				OrderHash:     sha256Hex(orderKey),
				Origin:        callevents.Origin(ce.URL),
				State:         string(callevents.DeliveryPending),
				NextAttemptAt: e.call.now,
				CreatedAt:     e.call.now,
			})
			callOf, eventOf = append(callOf, e.call), append(eventOf, ce)
			e.call.queued++
		}
	}
	if len(rows) == 0 {
		return nil
	}
	open, err := db.assignSequences(tx, rows, now, h.ok)
	if err != nil {
		return err
	}
	if h.ok {
		first := map[string]bool{}
		for i := range rows {
			r := &rows[i]
			if !first[r.OrderHash] {
				first[r.OrderHash] = true
				if h.take(callOf[i], r, open[r.OrderHash], eventOf[i]) {
					callOf[i].claimed++
				}
			}
		}
	}
	return tx.CreateInBatches(&rows, insertBatch).Error
}

// assignSequences gives each row the next places of its order key, in the
// order of rows. On MySQL they come from the key's row in order_keys,
// which the upsert locks until tx commits, in hash order so that two
// accepting transactions cannot deadlock on them: an accept of the same
// key in another process waits for this one to commit and then continues
// after its sequences. So no delivery can commit, and be claimed, before
// an earlier one of its key. On SQLite the write lock already serializes
// every accept, and the key's last place is the largest sequence among
// its deliveries (an index probe, and no row to write).
//
// With withOpen it also returns the keys that have an unfinished (pending
// or running) delivery from before tx.
func (db *DB) assignSequences(tx *gorm.DB, rows []deliveryRow, now time.Time, withOpen bool) (map[string]bool, error) {
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.OrderHash]++
	}
	hashes := make([]string, 0, len(counts))
	for h := range counts {
		hashes = append(hashes, h)
	}
	slices.Sort(hashes)
	last := make(map[string]int, len(hashes))
	open := map[string]bool{}
	scan := func(rows *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h string
			var n, unfinished int
			dest := []any{&h, &n}
			if withOpen && db.dialect != DialectMySQL {
				dest = append(dest, &unfinished)
			}
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			last[h] = n
			if unfinished > 0 {
				open[h] = true
			}
		}
		return rows.Err()
	}
	unfinished := []string{string(callevents.DeliveryPending), string(callevents.DeliveryRunning)}
	var err error
	if db.dialect == DialectMySQL {
		err = chunks(hashes, insertBatch, func(part []string) error {
			values := strings.Repeat("(?, ?, ?), ", len(part))
			args := make([]any, 0, 3*len(part))
			for _, h := range part {
				args = append(args, h, counts[h], now)
			}
			if err := tx.Exec(fmt.Sprintf(upsertOrderKeysSQL, values[:len(values)-2]), args...).Error; err != nil {
				return err
			}
			// The transaction's own writes: the new last places.
			return scan(tx.Table("order_keys").Select("order_hash, last_sequence").Where("order_hash IN ?", part).Rows())
		})
		var used []string // keys with deliveries from before
		for h, n := range last {
			last[h] = n - counts[h] // the last place before these
			if last[h] > 0 {
				used = append(used, h)
			}
		}
		if err == nil && withOpen && len(used) > 0 {
			// The key rows are locked: no delivery of these keys can
			// commit meanwhile, and the read sees every one committed.
			slices.Sort(used)
			err = chunks(used, inChunk, func(part []string) error {
				var found []string
				err := tx.Table("deliveries").Distinct("order_hash").Where("order_hash IN ? AND state IN ?", part, unfinished).Pluck("order_hash", &found).Error
				for _, h := range found {
					open[h] = true
				}
				return err
			})
		}
	} else {
		err = chunks(hashes, inChunk, func(part []string) error {
			q := tx.Table("deliveries").Select("order_hash, MAX(sequence)")
			if withOpen {
				q = tx.Table("deliveries").Select("order_hash, MAX(sequence), SUM(CASE WHEN state IN ? THEN 1 ELSE 0 END)", unfinished)
			}
			return scan(q.Where("order_hash IN ?", part).Group("order_hash").Rows())
		})
	}
	if err != nil {
		return nil, err
	}
	if db.dialect == DialectMySQL && len(last) != len(hashes) {
		return nil, fmt.Errorf("store: %d of %d order keys have no sequence after their upsert", len(hashes)-len(last), len(hashes))
	}
	next := make(map[string]int, len(hashes))
	for _, h := range hashes {
		next[h] = last[h] + 1 // 0 for a key never seen
	}
	for i := range rows {
		h := rows[i].OrderHash
		rows[i].Sequence = next[h]
		next[h]++
	}
	return open, nil
}

type acceptedEvent struct {
	activity *callevents.CallActivity
	event    callevents.ExtensionEvent
}

type eventKey struct {
	extension string
	typ       int
}

// insertActivities inserts the dedupe rows of hashes that are not stored
// yet and returns those, in the order given. The read first finds the
// known ones; the insert skips any that a concurrent transaction (MySQL)
// has stored since, and when its count falls short, which rows lost is
// unknown, so the transaction runs again and reads them as known.
func (db *DB) insertActivities(tx *gorm.DB, hashes []string, now time.Time) ([]string, error) {
	known := map[string]bool{}
	err := chunks(hashes, inChunk, func(part []string) error {
		var found []string
		if err := tx.Model(&activityRow{}).Where("dedupe_hash IN ?", part).Pluck("dedupe_hash", &found).Error; err != nil {
			return err
		}
		for _, h := range found {
			known[h] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var accepted []string
	rows := make([]activityRow, 0, len(hashes)-len(known))
	for _, h := range hashes {
		if !known[h] {
			accepted = append(accepted, h)
			rows = append(rows, activityRow{DedupeHash: h, AcceptedAt: now})
		}
	}
	if len(rows) == 0 {
		return nil, nil
	}
	res := tx.Clauses(db.insertIgnore()).CreateInBatches(&rows, insertBatch)
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected != int64(len(rows)) {
		return nil, errRerun
	}
	return accepted, nil
}

// enabledCallEvents returns the enabled Call Events of the extensions by
// extension and type, each list in creation order. It reads whole
// extensions (at most the per-extension limit of rows each, by the
// extension prefix of call_events_extension_type_seq) rather than
// (extension, type) pairs, which SQLite cannot list in an IN.
func enabledCallEvents(tx *gorm.DB, extensions map[string]bool) (map[eventKey][]callEventRow, error) {
	exts := make([]string, 0, len(extensions))
	for e := range extensions {
		exts = append(exts, e)
	}
	out := map[eventKey][]callEventRow{}
	err := chunks(exts, inChunk, func(part []string) error {
		var rows []callEventRow
		err := tx.Select("id, extension, type, method, url, secret").
			Where("extension IN ? AND status = ?", part, int(callevents.StatusEnabled)).
			Order("extension, type, seq").Find(&rows).Error
		for _, r := range rows {
			k := eventKey{r.Extension, r.Type}
			out[k] = append(out[k], r)
		}
		return err
	})
	return out, err
}
