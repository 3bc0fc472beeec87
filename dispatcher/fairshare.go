package dispatcher

import (
	"context"
	"log/slog"
	"time"

	"github.com/callevents/callevents"
)

// Fair share and circuit breakers (SPEC.md §6). A claim hands each
// delivery to its receiver origin's queue in this process; requests start
// from the queues round-robin across origins, at most Concurrency at once
// and at most ReceiverConcurrency per origin. An origin may hold up to
// Concurrency claimed deliveries (queued or in flight), so that one busy
// receiver still fills whole claims, but a queued delivery that has not
// started within Timeout, or whose origin's breaker opens, goes back to
// the store unspent. Everything here is guarded by Dispatcher.mu.

// origin is what a dispatcher knows of one receiver origin. It is kept
// while the origin has deliveries queued or in flight, or a breaker not
// closed, and forgotten otherwise.
type origin struct {
	name     string
	queue    []queued // claimed, not started, oldest first
	inRing   bool     // listed in Dispatcher.ring (its queue is not empty)
	inFlight int
	// capped is set when a claim filled the origin's room: once its queue
	// is down to less than one share, a request of it that ends wakes the
	// claim loop for more.
	capped bool

	// answered counts the requests answered since the origin was last
	// forgotten, and latency is their moving average (borrowLimit).
	answered   int
	latency    time.Duration
	lastAnswer time.Time

	failures  int                     // consecutive failed attempts
	state     callevents.BreakerState // "" is closed
	openUntil time.Time               // open: when the probe may go
	backoff   time.Duration           // open: the pause before openUntil
}

// queued is a claimed delivery waiting for its origin to have room.
type queued struct {
	del      callevents.Delivery
	leaseEnd time.Time
	claimed  time.Time
	probe    bool // the one request of a half-open breaker
}

// start is a request to launch.
type start struct {
	del      callevents.Delivery
	leaseEnd time.Time
	probe    bool
}

func (o *origin) closed() bool { return o.state == "" || o.state == callevents.BreakerClosed }

func (o *origin) leased() int { return o.inFlight + len(o.queue) }

// originFor returns the state of name, creating it.
func (d *Dispatcher) originFor(name string) *origin {
	o := d.origins[name]
	if o == nil {
		o = &origin{name: name}
		d.origins[name] = o
	}
	return o
}

// originMemory is how long an idle origin's record of answers (see
// borrowLimit) is kept.
const originMemory = time.Minute

// idle reports whether o holds nothing: no delivery, no open breaker.
func (o *origin) idle() bool { return o.leased() == 0 && !o.inRing && o.closed() && o.failures == 0 }

// forget drops an origin's state once there is nothing left to know.
func (d *Dispatcher) forget(o *origin) {
	if o.idle() && o.answered == 0 {
		delete(d.origins, o.name)
	}
}

// rooms fills c with what each origin may take now: up to Concurrency
// claimed, less what it holds; nothing while its breaker is open, and one
// probe once the pause is over.
func (d *Dispatcher) rooms(c *callevents.Claim, now time.Time) {
	c.DefaultRoom = 2 * d.cfg.ReceiverConcurrency // the leaseCap of an origin without a record
	c.Room = make(map[string]int, len(d.origins))
	for name, o := range d.origins {
		if o.idle() && (now.Sub(o.lastAnswer) > originMemory || now.Before(o.lastAnswer)) {
			delete(d.origins, name)
			continue // the default room
		}
		room := max(d.leaseCap(o)-o.leased(), 0)
		switch {
		case o.closed():
		case o.state == callevents.BreakerOpen && !now.Before(o.openUntil) && o.leased() == 0:
			room = 1 // the probe
		default:
			room = 0 // open and pausing, or half-open with its probe out
		}
		c.Room[name] = room
	}
}

// enqueue queues a delivery just claimed on its origin, or reports false
// when the origin takes none now (its breaker opened during the claim):
// the delivery then goes back unsent. The first delivery of an origin
// whose pause is over becomes its probe.
func (d *Dispatcher) enqueue(del callevents.Delivery, leaseEnd, now time.Time) bool {
	o := d.originFor(del.Origin)
	q := queued{del: del, leaseEnd: leaseEnd, claimed: now}
	switch {
	case o.closed():
	case o.state == callevents.BreakerOpen && !now.Before(o.openUntil) && o.leased() == 0:
		o.state, q.probe = callevents.BreakerHalfOpen, true
		d.breakerChanged(o, slog.LevelInfo, "dispatcher: probing a paused receiver")
	default:
		d.forget(o)
		return false
	}
	if !o.inRing {
		d.ring, o.inRing = append(d.ring, o.name), true
	}
	o.queue = append(o.queue, q)
	d.queued++
	return true
}

// capAfterClaim marks the origins a claim left without room.
func (d *Dispatcher) capAfterClaim() {
	for _, o := range d.origins {
		if o.leased() >= d.leaseCap(o) {
			o.capped = true
		}
	}
}

// leaseCap is how many deliveries o may hold claimed, in flight or
// queued: twice what it may have in flight, so that the next batch is
// there when the first ends.
func (d *Dispatcher) leaseCap(o *origin) int {
	if limit := d.borrowLimit(o); limit > d.cfg.ReceiverConcurrency {
		return max(d.cfg.Concurrency, 2*limit)
	}
	return 2 * d.cfg.ReceiverConcurrency
}

// pump takes queued deliveries to start, round-robin across the origins
// that have some and room for them, while fewer than Concurrency requests
// run. Queued deliveries that waited longer than Timeout are returned in
// back, to be given back unspent: a slow receiver's backlog does not sit
// leased in one process. Nothing starts once Stop began.
func (d *Dispatcher) pump(now time.Time) (starts []start, back []string) {
	select {
	case <-d.stopping:
		return nil, nil
	default:
	}
	starts, back = d.turns(now, d.cfg.Concurrency, func(*origin) int { return d.cfg.ReceiverConcurrency }, starts, back)
	// Slots nobody else can use now go to receivers that answer fast,
	// short of one share kept free for newcomers.
	starts, back = d.turns(now, d.cfg.Concurrency-d.reserve(), d.borrowLimit, starts, back)
	d.sends.Add(len(starts))
	return starts, back
}

// turns starts queued deliveries round-robin across origins, each origin
// up to limit(o) requests in flight, while fewer than maxBusy run. The
// ring is a queue of origins: each turn takes the front one, starts one of
// its deliveries if it may, and puts it at the back; idle counts the turns
// in a row that started nothing.
func (d *Dispatcher) turns(now time.Time, maxBusy int, limit func(*origin) int, starts []start, back []string) ([]start, []string) {
	for idle := 0; d.busy < maxBusy && len(d.ring) > 0 && idle < len(d.ring); {
		name := d.ring[0]
		d.ring = d.ring[1:]
		o := d.origins[name]
		for len(o.queue) > 0 && now.Sub(o.queue[0].claimed) > d.cfg.Timeout {
			back = append(back, o.queue[0].del.ID)
			o.queue = o.queue[1:]
			d.queued--
		}
		if len(o.queue) == 0 {
			o.inRing = false
			d.forget(o)
			continue
		}
		if o.inFlight < limit(o) && (o.closed() || o.queue[0].probe) {
			q := o.queue[0]
			o.queue = o.queue[1:]
			d.queued--
			o.inFlight++
			d.busy++
			starts = append(starts, start{q.del, q.leaseEnd, q.probe})
			idle = 0
		} else {
			idle++
		}
		d.ring = append(d.ring, name)
	}
	return starts, back
}

// borrowLatency is how fast an origin's requests must answer, on average,
// for it to borrow slots beyond its share.
const borrowLatency = 100 * time.Millisecond

// borrowLimit is how many requests o may have in flight when the slots
// beyond its share would otherwise stay idle: up to Concurrency less one
// share, for a receiver that is answering, fast, with a record of at
// least a share of requests, and its share only otherwise. A hanging or
// failing receiver never borrows; one that starts hanging after it did
// holds the borrowed slots until Timeout at most, with a share still free
// for everyone else.
func (d *Dispatcher) borrowLimit(o *origin) int {
	if !o.closed() || o.failures > 0 || o.answered < d.cfg.ReceiverConcurrency || o.latency > min(borrowLatency, d.cfg.Timeout/10) {
		return d.cfg.ReceiverConcurrency
	}
	return max(d.cfg.Concurrency-d.reserve(), d.cfg.ReceiverConcurrency)
}

// reserve is how many of the Concurrency slots borrowing leaves free: a
// quarter of a share, so that newcomers start at once even beside a
// borrower that begins to hang.
func (d *Dispatcher) reserve() int { return max(d.cfg.ReceiverConcurrency/4, 1) }

// launch starts the requests pump chose and gives back what it returned.
// Called without d.mu.
func (d *Dispatcher) launch(starts []start, back []string) {
	for _, s := range starts {
		go d.deliver(s.del, s.leaseEnd, s.probe)
	}
	if len(back) > 0 {
		d.giveBack(back)
	}
}

// giveBack returns claimed, unstarted deliveries to the store in the
// background (tracked by sends, so that Stop waits for it).
func (d *Dispatcher) giveBack(ids []string) {
	d.sends.Add(1)
	go func() {
		defer d.sends.Done()
		d.release(d.hardCtx, ids)
	}()
}

// drainQueues empties every queue, for Stop, and returns the ids.
func (d *Dispatcher) drainQueues() []string {
	var ids []string
	for _, o := range d.origins {
		for _, q := range o.queue {
			ids = append(ids, q.del.ID)
		}
		o.queue, o.inRing = nil, false
		d.forget(o)
	}
	d.ring, d.queued = nil, 0
	return ids
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

// requestEnded ends a request of del's origin, when its answer (or its
// failure) is in and before its outcome is recorded: the origin's room is
// about HTTP requests, and its next request may go while this one's
// outcome is being committed. It feeds the result to the breaker (unless
// not counted: interrupted by Stop), and returns the deliveries to give
// back (the origin's queue, when its breaker opened) and whether the claim
// loop should be woken.
func (d *Dispatcher) requestEnded(del callevents.Delivery, res result, probe, counted bool) (back []string, wake bool) {
	o := d.originFor(del.Origin)
	o.inFlight--
	switch {
	case !counted:
		if probe && o.state == callevents.BreakerHalfOpen {
			o.state = callevents.BreakerOpen // probe again at once
		}
	case breakerFailure(res):
		o.failures++
		switch {
		case probe:
			o.backoff = min(2*o.backoff, d.cfg.BreakerMaxBackoff)
			back = d.open(o, res, slog.LevelInfo, "dispatcher: probe of a paused receiver failed; still paused")
		case o.closed() && o.failures >= d.cfg.BreakerFailures:
			o.backoff = d.cfg.BreakerBackoff
			back = d.open(o, res, slog.LevelWarn, "dispatcher: receiver keeps failing; pausing its deliveries")
		}
	default:
		o.failures = 0
		o.answered++
		o.lastAnswer = d.cfg.Now()
		o.latency += (res.latency - o.latency) / 8
		if o.answered == 1 {
			o.latency = res.latency
		}
		if !o.closed() {
			o.state = callevents.BreakerClosed
			d.breakerChanged(o, slog.LevelInfo, "dispatcher: receiver answers again; its deliveries resume")
			wake = true
		}
	}
	if o.capped && o.leased() <= d.leaseCap(o)/2 {
		o.capped, wake = false, true
	}
	d.forget(o)
	return back, wake
}

// open pauses an origin for o.backoff and empties its queue, whose
// deliveries go back to the store unspent.
func (d *Dispatcher) open(o *origin, res result, level slog.Level, msg string) []string {
	o.state = callevents.BreakerOpen
	o.openUntil = d.cfg.Now().Add(o.backoff)
	var back []string
	for _, q := range o.queue {
		back = append(back, q.del.ID)
	}
	d.queued -= len(o.queue)
	o.queue = nil
	d.breakerChanged(o, level, msg, "failures", o.failures, "error_class", res.class, "status_code", res.status,
		"retry_in_ms", o.backoff.Milliseconds(), "given_back", len(back))
	return back
}

// breakerChanged logs a breaker's new state and tells the observer.
func (d *Dispatcher) breakerChanged(o *origin, level slog.Level, msg string, attrs ...any) {
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
	attrs = append([]any{"worker", d.cfg.WorkerID, "origin", o.name, "breaker", string(state)}, attrs...)
	d.log.Log(context.Background(), level, msg, attrs...)
	callevents.ObserverOrNop(d.cfg.Observer).BreakerChanged(o.name, state, open)
}
