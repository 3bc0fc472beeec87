package dispatcher

import (
	"context"
	"log/slog"
	"time"

	"github.com/callevents/callevents"
)

// origin is what a dispatcher knows of one receiver origin: its requests in
// flight (fair share) and its circuit breaker. A dispatcher keeps one per
// origin it has requests in flight to or a breaker not closed for, and
// forgets it otherwise. Guarded by Dispatcher.mu.
type origin struct {
	inFlight int
	// capped is set when a claim left the origin without room: once a
	// quarter of its room is free again (wakeRoom), a request of it that
	// ends wakes the claim loop, as its due deliveries may be waiting. A
	// claim per request that ends would read a batch of the origin's
	// backlog to take one.
	capped bool

	failures  int                     // consecutive failed attempts
	state     callevents.BreakerState // "" is closed
	openUntil time.Time               // open: when the probe may go
	backoff   time.Duration           // open: the pause before openUntil
	probing   bool                    // half-open: the probe is in flight
}

func (o *origin) closed() bool { return o.state == "" || o.state == callevents.BreakerClosed }

// originFor returns the state of name, creating it. d.mu must be held.
func (d *Dispatcher) originFor(name string) *origin {
	o := d.origins[name]
	if o == nil {
		o = &origin{}
		d.origins[name] = o
	}
	return o
}

// forget drops an origin's state once there is nothing left to know.
// d.mu must be held.
func (d *Dispatcher) forget(name string, o *origin) {
	if o.inFlight == 0 && o.closed() && o.failures == 0 && !o.capped {
		delete(d.origins, name)
	}
}

// rooms fills c with what each origin may take now: ReceiverConcurrency
// less its requests in flight, nothing while its breaker is open, and one
// probe once the pause is over. d.mu must be held.
func (d *Dispatcher) rooms(c *callevents.Claim, now time.Time) {
	c.DefaultRoom = d.cfg.ReceiverConcurrency
	c.Room = make(map[string]int, len(d.origins))
	for name, o := range d.origins {
		room := max(d.cfg.ReceiverConcurrency-o.inFlight, 0)
		switch {
		case o.closed():
		case o.state == callevents.BreakerOpen && !now.Before(o.openUntil):
			room = min(room, 1) // the probe
		default:
			room = 0 // open and pausing, or half-open with its probe out
		}
		c.Room[name] = room
	}
}

// admit decides, for a delivery just claimed, whether it goes out now:
// false when its origin has no room after all (its breaker opened during
// the claim), and then it is given back unsent. It counts the request in
// flight, and makes the first delivery of an origin whose pause is over
// its probe. d.mu must be held.
func (d *Dispatcher) admit(del callevents.Delivery, now time.Time) (probe bool, ok bool) {
	o := d.originFor(del.Origin)
	switch {
	case o.closed():
		if o.inFlight >= d.cfg.ReceiverConcurrency {
			return false, false
		}
	case o.state == callevents.BreakerOpen && !now.Before(o.openUntil):
		o.state, o.probing, probe = callevents.BreakerHalfOpen, true, true
		d.breakerChanged(del.Origin, o, slog.LevelInfo, "dispatcher: probing a paused receiver")
	default:
		return false, false
	}
	o.inFlight++
	return probe, true
}

// wakeRoom is the free room of a capped origin that wakes the claim loop.
func (d *Dispatcher) wakeRoom() int { return max(d.cfg.ReceiverConcurrency/4, 1) }

// capAfterClaim marks the origins a claim left without room. d.mu must be
// held.
func (d *Dispatcher) capAfterClaim() {
	for _, o := range d.origins {
		if o.inFlight >= d.cfg.ReceiverConcurrency {
			o.capped = true
		}
	}
}

// breakerFailure reports whether an attempt's result counts against its
// receiver: no answer (refused, unreachable, timed out, broken) or a 5xx.
// A refusal by our own outbound policy says nothing of the receiver.
func breakerFailure(res result) bool {
	if res.class == ClassPolicy {
		return false
	}
	return res.status == 0 && res.class != "" || res.status >= 500
}

// finished ends a request of del's origin and feeds its result to the
// breaker; it reports whether the claim loop should be woken. d.mu must be
// held.
func (d *Dispatcher) finished(del callevents.Delivery, res result, probe, counted bool) (wake bool) {
	o := d.originFor(del.Origin)
	o.inFlight--
	if o.capped && d.cfg.ReceiverConcurrency-o.inFlight >= d.wakeRoom() {
		o.capped, wake = false, true
	}
	if probe {
		o.probing = false
	}
	switch {
	case !counted:
		// Interrupted by Stop: says nothing of the receiver.
		if probe && o.state == callevents.BreakerHalfOpen {
			o.state = callevents.BreakerOpen
		}
	case breakerFailure(res):
		o.failures++
		switch {
		case probe:
			o.backoff = min(2*o.backoff, d.cfg.BreakerMaxBackoff)
			d.open(del.Origin, o, res, slog.LevelInfo, "dispatcher: probe of a paused receiver failed; still paused")
		case o.closed() && o.failures >= d.cfg.BreakerFailures:
			o.backoff = d.cfg.BreakerBackoff
			d.open(del.Origin, o, res, slog.LevelWarn, "dispatcher: receiver keeps failing; pausing its deliveries")
		}
	default:
		o.failures = 0
		if !o.closed() {
			o.state, o.probing = callevents.BreakerClosed, false
			d.breakerChanged(del.Origin, o, slog.LevelInfo, "dispatcher: receiver answers again; its deliveries resume")
			wake = true
		}
	}
	d.forget(del.Origin, o)
	return wake
}

// open pauses an origin for o.backoff. d.mu must be held.
func (d *Dispatcher) open(name string, o *origin, res result, level slog.Level, msg string) {
	o.state = callevents.BreakerOpen
	o.openUntil = d.cfg.Now().Add(o.backoff)
	d.breakerChanged(name, o, level, msg, "failures", o.failures, "error_class", res.class, "status_code", res.status,
		"retry_in_ms", o.backoff.Milliseconds())
}

// breakerChanged logs a breaker's new state and tells the observer. d.mu
// must be held.
func (d *Dispatcher) breakerChanged(name string, o *origin, level slog.Level, msg string, attrs ...any) {
	open := 0
	for _, other := range d.origins {
		if !other.closed() {
			open++
		}
	}
	state := o.state
	if state == "" {
		state = callevents.BreakerClosed
	}
	attrs = append([]any{"worker", d.cfg.WorkerID, "origin", name, "breaker", string(state)}, attrs...)
	d.log.Log(context.Background(), level, msg, attrs...)
	callevents.ObserverOrNop(d.cfg.Observer).BreakerChanged(name, state, open)
}
