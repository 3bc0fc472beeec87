package dispatcher

import (
	"context"
	"errors"
	"time"

	"github.com/callevents/callevents"
)

// deliver makes one attempt of del, leased to this worker until leaseEnd,
// and records its outcome. probe marks the one request a half-open
// breaker lets through. Its origin's room is free again once the request
// has ended, its slot of Concurrency once the outcome is recorded.
func (d *Dispatcher) deliver(del callevents.Delivery, leaseEnd time.Time, probe bool) {
	defer d.sends.Done()
	defer d.slotFree()
	at := d.cfg.Now()
	res := d.sender.send(d.hardCtx, request{
		id: del.ID, typ: del.Type, attempt: del.Attempts, sequence: del.Sequence,
		url: del.URL, method: del.Method, secret: del.Secret, payload: del.Payload, at: at,
	})
	// Interrupted by Stop, not the receiver's doing: Stop gives it back.
	interrupted := res.status == 0 && d.hardCtx.Err() != nil
	d.mu.Lock()
	back, wake := d.requestEnded(del, res, probe, !interrupted)
	if interrupted {
		d.leftovers = append(d.leftovers, del.ID)
	}
	starts, expired := d.pump(d.cfg.Now())
	d.mu.Unlock()
	d.launch(starts, append(back, expired...))
	if wake {
		d.signal()
	}
	if interrupted {
		return
	}
	o := outcome(d.retry, del, res, at, d.cfg.Now())
	d.record(del, o, res, leaseEnd)
}

// slotFree ends a delivery's hold on one of the Concurrency slots, and
// starts what may start in its place.
func (d *Dispatcher) slotFree() {
	d.mu.Lock()
	d.busy--
	wake := d.starved
	d.starved = false
	starts, expired := d.pump(d.cfg.Now())
	d.mu.Unlock()
	d.launch(starts, expired)
	if wake {
		d.signal()
	}
}

// record stores an outcome, trying again on an internal (151/152, or
// uncoded) store error, and logs it; an outcome the store would not take
// is logged at Error with everything it would have recorded. While the
// database is unavailable it keeps trying, backing off, for as long as
// the lease (until leaseEnd) keeps the delivery this worker's: the
// receiver has had it, and giving up would send it again once the lease
// ends. Later the store would skip the outcome anyway.
func (d *Dispatcher) record(del callevents.Delivery, o callevents.AttemptOutcome, res result, leaseEnd time.Time) {
	attrs := []any{
		"delivery_id", del.ID, "call_event_id", del.CallEventID, "extension", string(del.Extension),
		"event", del.Type.String(), "attempt", del.Attempts,
		"status_code", res.status, "error_class", res.class, "latency_ms", res.latency.Milliseconds(),
	}
	if res.err != nil {
		attrs = append(attrs, "error", res.err.Error())
	}
	var err error
	for try := 0; ; try++ {
		err = d.rec.record(o)
		if err == nil || !callevents.ErrorCode(err, callevents.CodeUpdateFailed).Internal() {
			break // done, or an answer that asking again will not change
		}
		if errors.Is(err, callevents.ErrUnavailable) {
			d.recordFailed(err)
			// The last try comes a little before the lease ends, not a
			// whole backoff after the database is back.
			left := leaseEnd.Sub(d.cfg.Now()) - min(d.cfg.Lease/10, time.Second)
			if left <= 0 || !sleep(d.hardCtx, min(d.backoff(recordPause, try), left)) {
				break // the lease ends, or Stop's deadline passed
			}
			continue
		}
		if try >= recordTries-1 || !pause(d.hardCtx, try) {
			break
		}
	}
	if err == nil {
		d.recordSucceeded()
	} else {
		d.log.Error("dispatcher: could not record an attempt; the delivery is sent again when its lease ends",
			append(attrs, "next_state", string(o.Next), "store_error", err.Error())...)
		return
	}
	callevents.ObserverOrNop(d.cfg.Observer).DeliveryAttempted(o.Next, string(res.class), res.latency)
	if o.Next == callevents.DeliveryPending {
		attrs = append(attrs, "next_attempt_at", o.NextAttemptAt)
	}
	level, msg := outcomeMessage(o.Next, res.class)
	d.log.Log(context.Background(), level, msg, attrs...)
}

// recordPause is the first pause of a delivery whose outcome cannot be
// recorded because the database is unavailable (see backoff).
const recordPause = 50 * time.Millisecond

// recordFailed notes a record that failed because the database is
// unavailable, and logs the first of an outage.
func (d *Dispatcher) recordFailed(err error) {
	d.mu.Lock()
	d.unrecorded++
	first := d.unrecorded == 1
	d.mu.Unlock()
	if first {
		d.log.Error("dispatcher: cannot record attempts, the database is unavailable; retrying until it is back",
			"worker", d.cfg.WorkerID, "error", err.Error())
	}
}

// recordSucceeded ends an outage that recordFailed logged, if any.
func (d *Dispatcher) recordSucceeded() {
	d.mu.Lock()
	n := d.unrecorded
	d.unrecorded = 0
	d.mu.Unlock()
	if n > 0 {
		d.log.Info("dispatcher: recording attempts again", "worker", d.cfg.WorkerID, "failures", n)
	}
}
