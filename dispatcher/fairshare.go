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
// and at most ReceiverConcurrency per origin (a fast, answering receiver
// may borrow slots nobody else can use: see borrowLimit). A queued
// delivery that has not started within Timeout, or whose breaker opens,
// goes back to the store unspent. Breakers are per organization and
// origin: one organization's failing endpoint on a shared CRM host pauses
// only that organization's deliveries to it. Everything here is guarded
// by Dispatcher.mu.

// origin is what a dispatcher knows of one receiver origin. It is kept
// while the origin has deliveries queued or in flight, and for
// originMemory after its last answer.
type origin struct {
	name     string
	queue    []queued // claimed, not started, oldest first
	inRing   bool     // listed in Dispatcher.ring (its queue is not empty)
	inFlight int
	// capped is set when a claim filled the origin's room: once it holds
	// half of that again, a request of it that ends wakes the claim loop
	// for more.
	capped bool

	// answered counts the requests answered since the origin was last
	// forgotten, latency is their moving average and failing the failed
	// requests since the last answer (borrowLimit).
	answered   int
	latency    time.Duration
	lastAnswer time.Time
	failing    int
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

// breaker is one organization's circuit breaker for one receiver origin,
// kept while it is not closed or counts failures.
type breaker struct {
	key       callevents.PausedReceiver
	failures  int                     // consecutive failed attempts
	state     callevents.BreakerState // "" is closed
	openUntil time.Time               // open: when the probe may go
	backoff   time.Duration           // open: the pause before openUntil
}

func (b *breaker) closed() bool { return b.state == "" || b.state == callevents.BreakerClosed }

// ready reports whether an open breaker may send its probe.
func (b *breaker) ready(now time.Time) bool {
	return b.state == callevents.BreakerOpen && !now.Before(b.openUntil)
}

func breakerKey(del callevents.Delivery) callevents.PausedReceiver {
	return callevents.PausedReceiver{Organization: del.Extension.Organization(), Origin: del.Origin}
}

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

// idle reports whether o holds no delivery.
func (o *origin) idle() bool { return o.leased() == 0 && !o.inRing }

// forget drops an origin's state once there is nothing left to know.
func (d *Dispatcher) forget(o *origin) {
	if o.idle() && o.answered == 0 && o.failing == 0 {
		delete(d.origins, o.name)
	}
}

// rooms fills c with what each origin may take now (leaseCap, less what
// it holds) and the breakers that pause an organization's deliveries to
// an origin: none while one pauses, one probe once the pause is over.
func (d *Dispatcher) rooms(c *callevents.Claim, now time.Time) {
	c.DefaultRoom = 2 * d.cfg.ReceiverConcurrency // the leaseCap of an origin without a record
	c.Room = make(map[string]int, len(d.origins))
	for name, o := range d.origins {
		if o.idle() && (now.Sub(o.lastAnswer) > originMemory || now.Before(o.lastAnswer)) {
			delete(d.origins, name)
			continue // the default room
		}
		c.Room[name] = max(d.leaseCap(o)-o.leased(), 0)
	}
	for key, b := range d.breakers {
		switch {
		case b.closed():
		case b.ready(now):
			mapSet(&c.Paused, key, 1)
		default:
			mapSet(&c.Paused, key, 0) // pausing, or half-open with its probe out
		}
	}
}

func mapSet[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = map[K]V{}
	}
	(*m)[k] = v
}

// enqueue queues a delivery just claimed on its origin, or reports false
// when its breaker takes none now (it opened during the claim): the
// delivery then goes back unsent. The first delivery of a breaker whose
// pause is over becomes its probe.
func (d *Dispatcher) enqueue(del callevents.Delivery, leaseEnd, now time.Time) bool {
	q := queued{del: del, leaseEnd: leaseEnd, claimed: now}
	if b := d.breakers[breakerKey(del)]; b != nil && !b.closed() {
		if !b.ready(now) {
			return false
		}
		b.state, q.probe = callevents.BreakerHalfOpen, true
		d.breakerChanged(b, slog.LevelInfo, "dispatcher: probing a paused receiver")
	}
	o := d.originFor(del.Origin)
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
// there when the first ends, and for a receiver that borrows slots at
// least Concurrency, so that it fills whole claims.
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
	case <-d.run.Stopping():
		return nil, nil
	default:
	}
	starts, back = d.turns(now, d.cfg.Concurrency, func(*origin) int { return d.cfg.ReceiverConcurrency }, starts, back)
	// Slots nobody else can use now go to receivers that answer fast,
	// short of a few kept free for newcomers.
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
			d.unprobe(o.queue[0])
			o.queue = o.queue[1:]
			d.queued--
		}
		if len(o.queue) == 0 {
			o.inRing = false
			d.forget(o)
			continue
		}
		if o.inFlight < limit(o) {
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

// unprobe makes the breaker of a probe that will not go out ready to
// probe again, rather than half-open with no probe on its way.
func (d *Dispatcher) unprobe(q queued) {
	if b := d.breakers[breakerKey(q.del)]; q.probe && b != nil && b.state == callevents.BreakerHalfOpen {
		b.state = callevents.BreakerOpen // openUntil has passed: ready
	}
}

// borrowLatency is how fast an origin's requests must answer, on average,
// for it to borrow slots beyond its share.
const borrowLatency = 100 * time.Millisecond

// borrowLimit is how many requests o may have in flight when the slots
// beyond its share would otherwise stay idle: up to Concurrency less the
// reserve, for a receiver that is answering, fast, with a record of at
// least a share of answers, and its share only otherwise. A hanging or
// failing receiver never borrows; one that starts hanging after it did
// holds the borrowed slots for Timeout at most, with the reserve still
// free for everyone else.
func (d *Dispatcher) borrowLimit(o *origin) int {
	if o.failing > 0 || o.answered < d.cfg.ReceiverConcurrency || o.latency > min(borrowLatency, d.cfg.Timeout/10) {
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
	if res.class == callevents.ErrorClassPolicy {
		return false
	}
	return res.status == 0 && res.class != "" || res.status >= 500
}

// requestEnded ends a request of del's origin, when its answer (or its
// failure) is in and before its outcome is recorded: the origin's room is
// about HTTP requests, and its next request may go while this one's
// outcome is being committed. It feeds the result to del's breaker
// (unless not counted: interrupted by Stop), and returns the deliveries to
// give back (the breaker's queued ones, when it opened) and whether the
// claim loop should be woken.
func (d *Dispatcher) requestEnded(del callevents.Delivery, res result, probe, counted bool) (back []string, wake bool) {
	o := d.originFor(del.Origin)
	o.inFlight--
	key := breakerKey(del)
	b := d.breakers[key]
	switch {
	case !counted || res.class == callevents.ErrorClassPolicy:
		// Interrupted by Stop, or refused by our own policy: says
		// nothing of the receiver. A probe goes again at once.
		if probe && b != nil && b.state == callevents.BreakerHalfOpen {
			b.state = callevents.BreakerOpen
		}
	case breakerFailure(res):
		o.failing++
		// An attempt without an answer (a timeout, most often) weighs
		// in the latency too, so a receiver that hangs now and then does
		// not look fast.
		if res.status == 0 {
			o.latency += (res.latency - o.latency) / 8
		}
		if b == nil {
			b = &breaker{key: key}
			d.breakers[key] = b
		}
		b.failures++
		switch {
		case probe:
			b.backoff = min(2*b.backoff, d.cfg.BreakerMaxBackoff)
			back = d.open(b, o, res, slog.LevelInfo, "dispatcher: probe of a paused receiver failed; still paused")
		case b.closed() && b.failures >= d.cfg.BreakerFailures:
			b.backoff = d.cfg.BreakerBackoff
			back = d.open(b, o, res, slog.LevelWarn, "dispatcher: receiver keeps failing; pausing its deliveries")
		}
	default:
		o.failing = 0
		o.answered++
		o.lastAnswer = d.cfg.Now()
		o.latency += (res.latency - o.latency) / 8
		if o.answered == 1 {
			o.latency = res.latency
		}
		if b != nil {
			if !b.closed() {
				b.state = callevents.BreakerClosed
				d.breakerChanged(b, slog.LevelInfo, "dispatcher: receiver answers again; its deliveries resume")
				wake = true
			}
			delete(d.breakers, key)
		}
	}
	if o.capped && o.leased() <= d.leaseCap(o)/2 {
		o.capped, wake = false, true
	}
	d.forget(o)
	return back, wake
}

// open pauses b for b.backoff and takes its organization's deliveries out
// of the origin's queue, to go back to the store unspent.
func (d *Dispatcher) open(b *breaker, o *origin, res result, level slog.Level, msg string) []string {
	b.state = callevents.BreakerOpen
	b.openUntil = d.cfg.Now().Add(b.backoff)
	var back []string
	kept := o.queue[:0]
	for _, q := range o.queue {
		if breakerKey(q.del) == b.key {
			back = append(back, q.del.ID)
			continue
		}
		kept = append(kept, q)
	}
	d.queued -= len(o.queue) - len(kept)
	o.queue = kept
	d.breakerChanged(b, level, msg, "failures", b.failures, "error_class", res.class, "status_code", res.status,
		"retry_in_ms", b.backoff.Milliseconds(), "given_back", len(back))
	return back
}

// breakerChanged logs a breaker's new state and tells the observer.
func (d *Dispatcher) breakerChanged(b *breaker, level slog.Level, msg string, attrs ...any) {
	open := 0
	for _, other := range d.breakers {
		if !other.closed() {
			open++
		}
	}
	state := b.state
	if state == "" {
		state = callevents.BreakerClosed
	}
	attrs = append([]any{"worker", d.cfg.WorkerID, "organization", b.key.Organization, "origin", b.key.Origin,
		"breaker", string(state)}, attrs...)
	d.log.Log(context.Background(), level, msg, attrs...)
	callevents.ObserverOrNop(d.cfg.Observer).BreakerChanged(b.key.Organization, b.key.Origin, state, open)
}
