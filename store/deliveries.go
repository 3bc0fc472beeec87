package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/callevents/callevents"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

var _ callevents.DeliveryStore = (*DB)(nil)

// activityRow is a row of call_activities: an accepted report, kept so that
// the same report again adds nothing. It never leaves the package.
type activityRow struct {
	DedupeHash string    `gorm:"column:dedupe_hash;primaryKey"`
	AcceptedAt time.Time `gorm:"column:accepted_at"`
}

func (activityRow) TableName() string { return "call_activities" }

// deliveryRow is a row of deliveries. It never leaves the package.
type deliveryRow struct {
	Seq           int64      `gorm:"column:seq;primaryKey;autoIncrement"`
	ID            string     `gorm:"column:id"`
	CallEventID   string     `gorm:"column:call_event_id"`
	Extension     string     `gorm:"column:extension"`
	Type          int        `gorm:"column:type"`
	CallID        string     `gorm:"column:call_id"`
	Payload       string     `gorm:"column:payload"`
	OrderKey      string     `gorm:"column:order_key"`
	OrderHash     string     `gorm:"column:order_hash"`
	Sequence      int        `gorm:"column:sequence"`
	Origin        string     `gorm:"column:origin"`
	State         string     `gorm:"column:state"`
	Attempts      int        `gorm:"column:attempts"`
	NextAttemptAt time.Time  `gorm:"column:next_attempt_at"`
	LeaseUntil    *time.Time `gorm:"column:lease_until"`
	ClaimedBy     string     `gorm:"column:claimed_by"`
	CreatedAt     time.Time  `gorm:"column:created_at"`
	FinishedAt    *time.Time `gorm:"column:finished_at"`
	LastStatus    int        `gorm:"column:last_status"`
	LastError     string     `gorm:"column:last_error"`
}

func (deliveryRow) TableName() string { return "deliveries" }

// deliveryColumns are what scanDelivery reads, in its order: everything
// but the lease, which only the queue's own statements look at.
const deliveryColumns = "seq, id, call_event_id, extension, type, call_id, payload, order_key, order_hash, sequence, origin, state, attempts, next_attempt_at, created_at, finished_at, last_status, last_error"

// scanDelivery reads one row of deliveryColumns. Rows are scanned by hand:
// gorm's reflective scan is the larger part of a claim otherwise.
func scanDelivery(rows *sql.Rows) (deliveryRow, error) {
	var r deliveryRow
	var finished sql.NullTime
	err := rows.Scan(&r.Seq, &r.ID, &r.CallEventID, &r.Extension, &r.Type, &r.CallID, &r.Payload, &r.OrderKey,
		&r.OrderHash, &r.Sequence, &r.Origin, &r.State, &r.Attempts, &r.NextAttemptAt, &r.CreatedAt, &finished, &r.LastStatus, &r.LastError)
	if finished.Valid {
		r.FinishedAt = &finished.Time
	}
	return r, err
}

func scanDeliveries(rows *sql.Rows, err error) ([]deliveryRow, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []deliveryRow
	for rows.Next() {
		r, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (r deliveryRow) delivery() callevents.Delivery {
	d := callevents.Delivery{
		ID:            r.ID,
		CallEventID:   r.CallEventID,
		Extension:     callevents.Extension(r.Extension),
		Type:          callevents.EventType(r.Type),
		CallID:        r.CallID,
		Payload:       r.Payload,
		OrderKey:      r.OrderKey,
		Sequence:      r.Sequence,
		Origin:        r.Origin,
		State:         callevents.DeliveryState(r.State),
		Attempts:      r.Attempts,
		NextAttemptAt: r.NextAttemptAt.UTC(),
		Created:       r.CreatedAt.UTC(),
		LastStatus:    r.LastStatus,
		LastError:     r.LastError,
	}
	if r.FinishedAt != nil {
		d.Finished = r.FinishedAt.UTC()
	}
	return d
}

// attemptRow is a row of delivery_attempts. It never leaves the package.
type attemptRow struct {
	Seq         int64     `gorm:"column:seq;primaryKey;autoIncrement"`
	DeliverySeq int64     `gorm:"column:delivery_seq"`
	Attempt     int       `gorm:"column:attempt"`
	At          time.Time `gorm:"column:at"`
	StatusCode  int       `gorm:"column:status_code"`
	ErrorClass  string    `gorm:"column:error_class"`
	LatencyUS   int64     `gorm:"column:latency_us"`
}

func (attemptRow) TableName() string { return "delivery_attempts" }

// queueTime is t as the queue stores it: UTC, whole microseconds, the
// resolution of MySQL's DATETIME(6). Due-ness and leases need better than
// the second that Call Events keep, and truncating here makes both
// backends compare and return the same value.
func queueTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// maxErrorClass is the width of last_error and error_class.
const maxErrorClass = 64

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// insertBatch is the most rows one INSERT carries: 100 deliveries of 17
// columns stay far below every placeholder and packet limit, and SQLite's
// statement cache sees few shapes.
const insertBatch = 100

// inChunk bounds the values of one IN (…) list.
const inChunk = 500

// chunks calls fn with consecutive pieces of s of at most n elements.
func chunks[T any](s []T, n int, fn func([]T) error) error {
	for len(s) > 0 {
		k := min(n, len(s))
		if err := fn(s[:k]); err != nil {
			return err
		}
		s = s[k:]
	}
	return nil
}

// insertIgnore is the INSERT modifier that skips rows whose key exists.
func (db *DB) insertIgnore() clause.Insert {
	if db.dialect == DialectMySQL {
		return clause.Insert{Modifier: "IGNORE"}
	}
	return clause.Insert{Modifier: "OR IGNORE"}
}

// AcceptActivity stores the activities and their deliveries (see
// callevents.DeliveryStore). Concurrent calls share transactions: each
// queues, one takes the write turn and commits everything queued in one
// transaction, and each returns its own count once that commit is done. On
// either backend a commit per request, not the statements, bounded how
// many single-activity requests a second the intake took.
func (db *DB) AcceptActivity(ctx context.Context, activities []callevents.CallActivity, now time.Time) (callevents.ActivityResult, error) {
	call := &acceptCall{now: queueTime(now), reported: len(activities), fresh: map[string]*callevents.CallActivity{}, done: make(chan struct{})}
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
	g := &db.accepts
	g.mu.Lock()
	g.waiting = append(g.waiting, call)
	g.mu.Unlock()
	select {
	case <-call.done:
		return call.result()
	case g.turn <- struct{}{}:
	case <-ctx.Done():
		g.mu.Lock()
		if i := slices.Index(g.waiting, call); i >= 0 {
			g.waiting = slices.Delete(g.waiting, i, i+1)
			g.mu.Unlock()
			return callevents.ActivityResult{}, ctx.Err()
		}
		g.mu.Unlock()
		<-call.done // a transaction has it already: its answer stands
		return call.result()
	}
	defer func() { <-g.turn }()
	for {
		select {
		case <-call.done:
			return call.result()
		default:
		}
		g.mu.Lock()
		n, size := 0, 0
		for n < len(g.waiting) && (n == 0 || size+len(g.waiting[n].hashes) <= maxAcceptGroup) {
			size += len(g.waiting[n].hashes)
			n++
		}
		group := g.waiting[:n]
		g.waiting = slices.Clone(g.waiting[n:])
		g.mu.Unlock()
		// The transaction is everyone's in the group: this caller's
		// cancellation must not fail the others.
		err := db.queueTransaction(context.WithoutCancel(ctx), func(tx *gorm.DB) error { return db.acceptCalls(tx, group) })
		for _, c := range group {
			if err != nil {
				c.queued, c.accepted, c.err = 0, 0, formatError(err, writing, nil)
			}
			close(c.done)
		}
	}
}

// acceptGroup queues the AcceptActivity calls waiting for the turn to
// commit; turn (capacity 1) is that turn.
type acceptGroup struct {
	mu      sync.Mutex
	waiting []*acceptCall
	turn    chan struct{}
}

type acceptCall struct {
	now      time.Time
	reported int      // activities in the call, duplicates included
	hashes   []string // dedupe hashes, in order, unique within the call
	fresh    map[string]*callevents.CallActivity
	queued   int // deliveries queued
	accepted int // hashes stored by this call
	err      error
	done     chan struct{} // closed once queued, accepted and err are set
}

// result is the call's answer once done: whatever was reported and not
// accepted by it was known, from before or earlier in the call, or was
// taken by another call of its transaction.
func (c *acceptCall) result() (callevents.ActivityResult, error) {
	if c.err != nil {
		return callevents.ActivityResult{}, c.err
	}
	return callevents.ActivityResult{Queued: c.queued, Accepted: c.accepted, Duplicates: c.reported - c.accepted}, nil
}

// maxAcceptGroup bounds the activities one transaction accepts (a single
// call larger than that still goes whole).
const maxAcceptGroup = 2000

// acceptCalls is AcceptActivity's work for a group of calls, within tx. An
// activity reported by two calls of the group counts for the first.
func (db *DB) acceptCalls(tx *gorm.DB, calls []*acceptCall) error {
	owner := map[string]*acceptCall{}
	var hashes []string
	now := calls[0].now
	for _, c := range calls {
		c.queued, c.accepted = 0, 0 // the transaction may run again (errRerun)
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
			e.call.queued++
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if err := db.assignSequences(tx, rows, now); err != nil {
		return err
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
func (db *DB) assignSequences(tx *gorm.DB, rows []deliveryRow, now time.Time) error {
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
	scan := func(rows *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h string
			var n int
			if err := rows.Scan(&h, &n); err != nil {
				return err
			}
			last[h] = n
		}
		return rows.Err()
	}
	var err error
	if db.dialect == DialectMySQL {
		const upsert = `INSERT INTO order_keys (order_hash, last_sequence, updated_at) VALUES %s
			ON DUPLICATE KEY UPDATE last_sequence = last_sequence + VALUES(last_sequence), updated_at = VALUES(updated_at)`
		err = chunks(hashes, insertBatch, func(part []string) error {
			values := strings.Repeat("(?, ?, ?), ", len(part))
			args := make([]any, 0, 3*len(part))
			for _, h := range part {
				args = append(args, h, counts[h], now)
			}
			if err := tx.Exec(fmt.Sprintf(upsert, values[:len(values)-2]), args...).Error; err != nil {
				return err
			}
			// The transaction's own writes: the new last places.
			return scan(tx.Table("order_keys").Select("order_hash, last_sequence").Where("order_hash IN ?", part).Rows())
		})
		for h, n := range last {
			last[h] = n - counts[h] // the last place before these
		}
	} else {
		err = chunks(hashes, inChunk, func(part []string) error {
			return scan(tx.Table("deliveries").Select("order_hash, MAX(sequence)").Where("order_hash IN ?", part).Group("order_hash").Rows())
		})
	}
	if err != nil {
		return err
	}
	if db.dialect == DialectMySQL && len(last) != len(hashes) {
		return fmt.Errorf("store: %d of %d order keys have no sequence after their upsert", len(hashes)-len(last), len(hashes))
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
	return nil
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
		err := tx.Select("id, extension, type, url").
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

// claimQuery returns the query that selects claimable deliveries: pending,
// due, of an origin not in skip and no organization's paused one, and with no earlier (smaller sequence)
// delivery of the same order key still pending or running unless due
// before the hold edge; oldest due first. The scan walks
// deliveries_state_next_attempt in order and stops after LIMIT matches;
// the NOT EXISTS probes deliveries_order_hash_sequence, the handful of
// deliveries of one extension, receiver and call. On MySQL the claim
// appends FOR UPDATE SKIP LOCKED: rows another claimer holds are passed
// over, not waited for. That clause locks only the outer rows; the
// subquery is a consistent read, so a row another claimer is taking still
// counts as pending there and holds back the later ones of its key (and
// ClaimDue checks again after the scan: see laterOnes).
func claimQuery(skip, paused int, hold bool, mysql bool) string {
	var b strings.Builder
	b.WriteString(`SELECT ` + deliveryColumns + ` FROM deliveries
WHERE state = ? AND next_attempt_at <= ?`)
	if skip > 0 {
		b.WriteString(` AND origin NOT IN ?`)
	}
	for range paused {
		b.WriteString(` AND NOT (origin = ? AND extension LIKE ?)`)
	}
	b.WriteString(` AND (`)
	if hold {
		b.WriteString(`next_attempt_at <= ? OR `)
	}
	b.WriteString(`NOT EXISTS (SELECT 1 FROM deliveries e
                  WHERE e.order_hash = deliveries.order_hash AND e.sequence < deliveries.sequence AND e.state IN (?, ?)))
ORDER BY next_attempt_at, seq
LIMIT ?`)
	if mysql {
		b.WriteString(" FOR UPDATE SKIP LOCKED")
	}
	return b.String()
}

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
	err := db.queueTransaction(ctx, func(tx *gorm.DB) error {
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
// On SQLite, calls that arrive while another writer holds the write turn
// are recorded together, in one transaction, by the first of them to get
// the turn (see attemptGroup); each returns once that has committed.
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
	var err error
	if db.sqliteWriter != nil {
		err = db.recordGrouped(ctx, worker, outcomes)
	} else {
		err = db.queueTransaction(ctx, func(tx *gorm.DB) error { return db.recordAttempts(tx, worker, outcomes) })
	}
	return formatError(err, writing, nil)
}

// RecordAttempt is RecordAttempts of one outcome.
func (db *DB) RecordAttempt(ctx context.Context, worker string, o callevents.AttemptOutcome) error {
	return db.RecordAttempts(ctx, worker, []callevents.AttemptOutcome{o})
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
		err := tx.Exec(`UPDATE deliveries SET state = ?, lease_until = NULL, claimed_by = '', last_status = ?, last_error = ?, finished_at = ?
			WHERE seq IN ?`, k.state, k.status, k.class, g.at, g.seqs).Error
		if err != nil {
			return err
		}
	}
	if len(attempts) == 0 {
		return nil
	}
	return tx.CreateInBatches(attempts, 100).Error
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
	res := tx.Exec(`UPDATE deliveries SET state = ?, lease_until = NULL, claimed_by = '', last_status = ?, last_error = ?,
		next_attempt_at = COALESCE(?, next_attempt_at), finished_at = ?
		WHERE id = ? AND state = ? AND claimed_by = ?`,
		string(o.Next), o.Attempt.StatusCode, errorClass, nextAttempt, finished,
		o.DeliveryID, string(callevents.DeliveryRunning), worker)
	if res.Error != nil || res.RowsAffected == 0 {
		return res.Error
	}
	// The attempt number the worker sent, or else the one it was claimed as.
	err := tx.Exec(`INSERT INTO delivery_attempts (delivery_seq, attempt, at, status_code, error_class, latency_us)
		SELECT seq, CASE WHEN ? > 0 THEN ? ELSE attempts END, ?, ?, ?, ? FROM deliveries WHERE id = ?`,
		o.Attempt.Attempt, o.Attempt.Attempt, at, o.Attempt.StatusCode, errorClass, o.Attempt.Latency.Microseconds(), o.DeliveryID).Error
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

// attemptGroup queues the SQLite RecordAttempts calls waiting for the
// write turn. Each call costs a commit of its own otherwise, and with one
// writer at a time those commits, more than the statements, bounded
// deliveries per second.
type attemptGroup struct {
	mu      sync.Mutex
	waiting []*attemptCall
}

type attemptCall struct {
	worker   string
	outcomes []callevents.AttemptOutcome
	err      error
	done     chan struct{} // closed once err is set
}

// maxAttemptGroup bounds the outcomes one transaction records (a single
// call larger than that still goes whole).
const maxAttemptGroup = 256

// recordGrouped queues the call, then either finds it recorded by another
// caller's transaction, or takes the write turn and records the queued
// calls, its own among them, in groups. A caller whose ctx ends while it
// waits returns ctx.Err(), and its outcomes may still be recorded by a
// later group (the lease check keeps a second report harmless).
func (db *DB) recordGrouped(ctx context.Context, worker string, outcomes []callevents.AttemptOutcome) error {
	call := &attemptCall{worker: worker, outcomes: outcomes, done: make(chan struct{})}
	g := &db.attempts
	g.mu.Lock()
	g.waiting = append(g.waiting, call)
	g.mu.Unlock()
	select {
	case <-call.done:
		return call.err
	case db.sqliteWriter <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-db.sqliteWriter }()
	for {
		select {
		case <-call.done:
			return call.err
		default:
		}
		g.mu.Lock()
		n, size := 0, 0
		for n < len(g.waiting) && (n == 0 || size+len(g.waiting[n].outcomes) <= maxAttemptGroup) {
			size += len(g.waiting[n].outcomes)
			n++
		}
		group := g.waiting[:n]
		g.waiting = slices.Clone(g.waiting[n:])
		g.mu.Unlock()
		// The group's transaction is everyone's in it: this caller's
		// cancellation must not fail the others.
		err := db.runTransaction(context.WithoutCancel(ctx), nil, func(tx *gorm.DB) error {
			for _, c := range group {
				if err := db.recordAttempts(tx, c.worker, c.outcomes); err != nil {
					return err
				}
			}
			return nil
		})
		for _, c := range group {
			c.err = err
			close(c.done)
		}
	}
}

// cancelPending cancels the pending deliveries of the Call Events. Running
// ones are left to finish: their worker's RecordAttempt still applies.
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
	err := db.writeSQLite(ctx, func() error {
		return chunks(ids, inChunk, func(part []string) error {
			return db.gorm.WithContext(ctx).Model(&deliveryRow{}).
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
// the lease finds its RecordAttempt ignored.
func (db *DB) RescueExpired(ctx context.Context, now time.Time) (int, error) {
	var rescued int64
	err := db.writeSQLite(ctx, func() error {
		res := db.gorm.WithContext(ctx).Model(&deliveryRow{}).
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
		err := tx.Exec(`DELETE FROM order_keys WHERE order_hash IN ? AND updated_at < ?
			AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.order_hash = order_keys.order_hash)`,
			slices.Compact(hashes), before).Error
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
		err := db.queueTransaction(ctx, func(tx *gorm.DB) error {
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

// whereDeliveries restricts q to the deliveries selected by f (paging
// aside). Every form starts with extension, a prefix of
// deliveries_extension_seq, which also gives the seq order.
func whereDeliveries(q *gorm.DB, f callevents.DeliveryFilter) *gorm.DB {
	q = q.Where("extension = ?", string(f.Extension))
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
	err := db.queueTransaction(ctx, func(tx *gorm.DB) error {
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
