package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callevents/callevents"
)

// storeTimeout bounds one store call made by the dispatcher.
const storeTimeout = 30 * time.Second

// recordTries is how often RecordAttempts and ReleaseClaims are tried before
// the dispatcher gives up and logs (RecordAttempts keeps trying longer while
// the database is unavailable: see record).
const recordTries = 4

// Dispatcher sends the deliveries of a callevents.DeliveryStore. Create it
// with New, run it with Start, and end it with Stop. It also implements
// callevents.CallEventTester, which works without Start.
type Dispatcher struct {
	cfg    Config
	log    *slog.Logger
	retry  RetryPolicy
	sender *sender
	rec    *recorder // commits attempt outcomes in batches

	// wake is signalled by Notify, by a request that ends (a slot is
	// free) and by a rescue.
	wake chan struct{}

	mu   sync.Mutex
	busy int // requests in flight
	// starved is set when a claim was limited by free slots and may have
	// left due deliveries behind: only then does a request that ends wake
	// the claim loop (otherwise every delivery would cost an extra, empty
	// claim). An origin out of room wakes it in the same way (capped).
	starved   bool
	queued    int      // deliveries claimed and waiting in the origins' queues
	leftovers []string // claimed, but never started or interrupted by Stop: released at Stop
	// origins holds fair share and circuit breaker state per receiver
	// origin, and ring the origins with deliveries queued, in turn
	// (fairshare.go).
	origins  map[string]*origin
	ring     []string
	breakers map[callevents.PausedReceiver]*breaker
	// passedOver is when a claim last looked past the origins without
	// room (Claim.PassOver), passCost what that claim took, and passEvery
	// how long until the next one (see passOver); only the claim loop uses
	// them. fresh is set by Notify: new deliveries, maybe for another
	// origin, are queued.
	passedOver time.Time
	passCost   time.Duration
	passEvery  time.Duration
	fresh      atomic.Bool
	// unrecorded counts consecutive records that failed because the
	// database is unavailable, across the delivery goroutines, so that
	// an outage is logged when it starts and when it ends, not per try.
	unrecorded int

	// run is the dispatcher's own lifecycle; rescuer and cleaner have
	// theirs (maintenance.go).
	run     startStop
	rescuer *rescuer
	cleaner *cleaner
	// hardCtx is what requests and store calls run with: cancelled at
	// Stop's deadline (run.hardStop).
	hardCtx  context.Context
	claiming sync.WaitGroup // the claim loop
	// claimTurn (capacity 1) is held by the claim under way: the claim
	// loop's, or an accepting transaction's (OfferClaim to
	// ClaimAccepted), so that two claims never share out the same room.
	claimTurn chan struct{}
	sends     sync.WaitGroup // the delivery goroutines, and give-backs
}

// New returns a dispatcher for cfg, with its defaults filled in. It returns
// an error when cfg is invalid (no Store, Lease not above Timeout, ...).
func New(cfg Config) (*Dispatcher, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &Dispatcher{
		cfg:       cfg,
		log:       cfg.Logger,
		retry:     cfg.RetryPolicy(),
		sender:    newSender(cfg),
		wake:      make(chan struct{}, 1),
		claimTurn: make(chan struct{}, 1),
		origins:   map[string]*origin{},
		breakers:  map[callevents.PausedReceiver]*breaker{},
	}
	var err error
	d.rescuer, err = newRescuer(rescuerConfig{
		Store: cfg.Store, Interval: cfg.RescueInterval, Logger: cfg.Logger, Worker: cfg.WorkerID, Now: cfg.Now,
		Rescued: func(int) { d.Notify() }, // they may be any origin's
	})
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	d.cleaner, err = newCleaner(cleanerConfig{
		Store: cfg.Store, Interval: cfg.CleanInterval, Retention: cfg.Retention, Logger: cfg.Logger, Worker: cfg.WorkerID, Now: cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	return d, nil
}

// Start starts claiming and sending deliveries, rescuing expired leases
// and cleaning old deliveries, in goroutines of their own; it returns at
// once. Cancelling ctx stops the dispatcher abruptly, like a Stop whose
// deadline has passed: call Stop all the same, to wait for its goroutines
// and give back what it had claimed. A dispatcher starts only once.
func (d *Dispatcher) Start(ctx context.Context) error {
	// Under mu, so that a Stop racing Start finds everything set up.
	d.mu.Lock()
	defer d.mu.Unlock()
	hardCtx, ok := d.run.startInit(ctx)
	if !ok {
		return errors.New("dispatcher: Start called twice, or after Stop")
	}
	d.hardCtx = hardCtx
	// The recorder outlives the loops and the sends (Stop ends it last),
	// so every outcome can still be committed while Stop drains.
	d.rec = newRecorder()
	go d.rec.run(d.cfg.Store, d.cfg.WorkerID, func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(d.hardCtx), storeTimeout)
	})
	d.claiming.Add(1)
	go d.claimLoop()
	d.rescuer.Start(hardCtx)
	d.cleaner.Start(hardCtx)
	d.log.Info("dispatcher: started", "worker", d.cfg.WorkerID, "concurrency", d.cfg.Concurrency)
	return nil
}

// Stop stops the dispatcher gracefully: it claims nothing more, lets the
// requests in flight finish and records their outcomes until ctx is done,
// then interrupts those still running. Every delivery it claimed but did
// not finish goes back to the queue (pending, due now, the attempt not
// counted), so it leaves nothing claimed. Stop returns once all of its
// goroutines have ended — a little after ctx's deadline when requests had
// to be interrupted, as outcomes are recorded and claims released with a
// context of their own. It returns an error only when the store would not
// take the claims back (their leases then expire and a rescuer makes them
// pending). Stop before Start, or a second Stop, does nothing (the second
// waits for the first).
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.mu.Lock()
	first, stopped := d.run.stop()
	busy := d.busy
	d.mu.Unlock()
	if !first {
		select {
		case <-stopped:
		case <-ctx.Done():
		}
		return nil
	}

	d.log.Info("dispatcher: stopping", "worker", d.cfg.WorkerID, "in_flight", busy)
	rescued, cleaned := d.rescuer.Stop(), d.cleaner.Stop()
	finished := make(chan struct{})
	go func() {
		d.claiming.Wait() // no more sends.Add after the claim loop ends
		// Nor after a handoff under way (OfferClaim) has ended: the turn,
		// once Stop holds it, is never given back, so no offer follows.
		select {
		case d.claimTurn <- struct{}{}:
		case <-d.hardCtx.Done(): // what it claims waits for its lease to end
		}
		d.sends.Wait()
		<-rescued
		<-cleaned
		close(finished)
	}()
	interrupted := false
	select {
	case <-finished:
	case <-ctx.Done():
		interrupted = true
		d.run.hardStop()
		d.rescuer.hardStop()
		d.cleaner.hardStop()
		<-finished
	}
	d.rec.stop()

	d.mu.Lock()
	leftovers := append(d.leftovers, d.drainQueues()...)
	d.leftovers = nil
	d.mu.Unlock()
	err := d.release(ctx, leftovers)
	d.sender.transport.CloseIdleConnections()
	d.log.Info("dispatcher: stopped", "worker", d.cfg.WorkerID, "interrupted", interrupted, "released", len(leftovers))
	d.run.stopDone()
	return err
}

// release gives claimed deliveries back to the queue.
func (d *Dispatcher) release(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	var err error
	for try := range recordTries {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		err = d.cfg.Store.ReleaseClaims(sctx, d.cfg.WorkerID, ids)
		cancel()
		if err == nil {
			return nil
		}
		if try < recordTries-1 && !pause(ctx, try) {
			break
		}
	}
	d.log.Error("dispatcher: could not release claimed deliveries; they are sent again when their lease ends",
		"worker", d.cfg.WorkerID, "count", len(ids), "error", err)
	return fmt.Errorf("dispatcher: release %d claimed deliveries: %w", len(ids), err)
}

// Notify wakes the dispatcher to claim at once, without waiting for the
// next poll. Call it after deliveries are queued (ActivityService.Queued).
// It never blocks, and does nothing to a dispatcher not running.
func (d *Dispatcher) Notify() {
	d.fresh.Store(true)
	d.signal()
}

// signal wakes the claim loop, or leaves a wake pending for it.
func (d *Dispatcher) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// claimLoop claims due deliveries and starts them, up to Concurrency in
// flight. After a full batch it claims again at once; otherwise it waits
// for PollInterval, Notify or a free slot.
func (d *Dispatcher) claimLoop() {
	defer d.claiming.Done()
	timer := time.NewTimer(d.cfg.PollInterval)
	defer timer.Stop()
	var failing streak
	for {
		select {
		case <-d.run.Stopping():
			return
		default:
		}
		full, err := d.claim()
		wait := d.cfg.PollInterval
		if err != nil {
			if d.hardCtx.Err() != nil {
				return
			}
			if failing.fail() {
				d.log.Error("dispatcher: cannot claim deliveries; retrying", "worker", d.cfg.WorkerID, "error", err)
			}
			wait = d.backoff(d.cfg.PollInterval, failing.count)
		} else {
			if n := failing.recover(); n > 0 {
				d.log.Info("dispatcher: claiming deliveries again", "worker", d.cfg.WorkerID, "failures", n)
			}
			if full {
				continue
			}
		}
		timer.Reset(wait)
		select {
		case <-d.run.Stopping():
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// claim claims up to min(BatchSize, free slots) deliveries, each origin
// within its room (fair share and circuit breaker: see rooms), and starts
// them. full reports whether it got all it asked for.
func (d *Dispatcher) claim() (full bool, err error) {
	select {
	case d.claimTurn <- struct{}{}:
	case <-d.run.Stopping():
		return false, nil
	}
	defer func() { <-d.claimTurn }()
	now := d.cfg.Now()
	c, ok := d.prepareClaim(now)
	if !ok {
		return false, nil
	}
	c.PassOver = d.passOver(now)
	ctx, cancel := context.WithTimeout(d.hardCtx, storeTimeout)
	began := time.Now()
	deliveries, err := d.cfg.Store.ClaimDue(ctx, c)
	cancel()
	if err != nil {
		return false, err
	}
	if c.PassOver {
		d.passedOver, d.passCost = now, time.Since(began)
		// Something came past an origin or receiver without room.
		blocked := slices.Contains(slices.Collect(maps.Values(c.Room)), 0) ||
			slices.Contains(slices.Collect(maps.Values(c.Paused)), 0)
		if blocked && len(deliveries) > 0 {
			d.passEvery = d.cfg.PollInterval
		} else {
			d.passEvery = min(2*d.passEvery, maxPassEvery)
		}
	}
	d.startClaimed(c, now, deliveries)
	return len(deliveries) == c.N, nil
}

// prepareClaim is the claim that fits now: up to min(BatchSize, free
// slots), each origin within its room; false when no slot is free.
// Called holding claimTurn.
func (d *Dispatcher) prepareClaim(now time.Time) (callevents.Claim, bool) {
	c := callevents.Claim{Worker: d.cfg.WorkerID, Now: now, Lease: d.cfg.Lease, OrderHold: max(d.cfg.OrderHold, 0)}
	d.mu.Lock()
	defer d.mu.Unlock()
	// Queued deliveries do not count: those of an origin without room
	// must not keep other origins' deliveries from being claimed.
	free := d.cfg.Concurrency - d.busy
	d.starved = free < d.cfg.BatchSize
	if free <= 0 {
		return c, false
	}
	d.rooms(&c, now)
	c.N = min(d.cfg.BatchSize, free)
	return c, true
}

// startClaimed queues and starts what a claim made at now (c) got, leased
// until now+c.Lease, or gives it back when Stop came meanwhile. Called
// holding claimTurn.
func (d *Dispatcher) startClaimed(c callevents.Claim, now time.Time, deliveries []callevents.Delivery) {
	leaseEnd := now.Add(c.Lease) // as the store computes it
	d.mu.Lock()
	select {
	case <-d.run.Stopping():
		// Stop came while claiming: give these back, unsent.
		for _, del := range deliveries {
			d.leftovers = append(d.leftovers, del.ID)
		}
		d.mu.Unlock()
		return
	default:
	}
	var back []string
	for _, del := range deliveries {
		if !d.enqueue(del, leaseEnd, now) {
			back = append(back, del.ID) // its breaker opened meanwhile
		}
	}
	if len(deliveries) < c.N {
		d.starved = false // nothing left behind for want of slots
	}
	d.capAfterClaim()
	starts, expired := d.pump(now)
	d.mu.Unlock()
	d.launch(starts, append(back, expired...))
}

var _ callevents.Handoff = (*Dispatcher)(nil)

// OfferClaim is the claim that deliveries being accepted in this process
// may take (callevents.Handoff), or false when the dispatcher is not
// running or has no free slot (the accepted ones then wait for the next
// claim, which Notify starts). A claim under way is waited for: on
// SQLite it cannot take the write lock while the accepting transaction
// holds it anyway, and giving up instead would have every accepted
// delivery claimed on its own.
func (d *Dispatcher) OfferClaim() (callevents.Claim, bool) {
	d.mu.Lock()
	running := d.hardCtx != nil
	d.mu.Unlock()
	if !running {
		return callevents.Claim{}, false
	}
	select {
	case <-d.run.Stopping():
		return callevents.Claim{}, false
	default:
	}
	select {
	case <-d.run.Stopping():
		return callevents.Claim{}, false
	case d.claimTurn <- struct{}{}:
	}
	c, ok := d.prepareClaim(d.cfg.Now())
	if !ok {
		<-d.claimTurn
		return callevents.Claim{}, false
	}
	c.OrderHold = 0 // the store hands over none held back
	return c, true
}

// ClaimAccepted starts the deliveries claimed under an offer of
// OfferClaim (callevents.Handoff), as a claim of the claim loop would.
func (d *Dispatcher) ClaimAccepted(c callevents.Claim, now time.Time, claimed []callevents.Delivery) {
	defer func() { <-d.claimTurn }()
	d.startClaimed(c, now, claimed)
}

// maxPassEvery bounds the pause between claims that look past origins
// without room while such claims find nothing.
const maxPassEvery = time.Second

// passOver decides whether this claim looks past the due deliveries of
// origins without room (Claim.PassOver). That reads all of their backlog,
// so it is done at most once a poll interval, and no more than a tenth of
// the time; after one that found nothing, half as often, down to once a
// second, until one finds something or Notify reports new deliveries. So
// another origin's delivery waits behind a saturated origin's backlog for
// at most a poll interval when it is new, and a second when it comes due
// for a retry.
func (d *Dispatcher) passOver(now time.Time) bool {
	if d.passEvery == 0 {
		d.passEvery = d.cfg.PollInterval
	}
	since := now.Sub(d.passedOver)
	if since < 0 {
		return true // the clock went back
	}
	floor := max(d.cfg.PollInterval, 10*d.passCost)
	if d.fresh.Swap(false) {
		d.passEvery = d.cfg.PollInterval
	}
	return since >= max(d.passEvery, floor)
}

// backoff is the pause after failures failures in a row of a store call:
// base doubled failures times, at most MaxStoreBackoff.
func (d *Dispatcher) backoff(base time.Duration, failures int) time.Duration {
	return min(base<<min(failures, 16), d.cfg.MaxStoreBackoff)
}

// sleep waits for wait, or until ctx ends (false).
func sleep(ctx context.Context, wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// pause waits a little before try+1 of a store call that failed: 50 ms,
// 200 ms, 800 ms, ... It returns false, at once, when ctx ends.
func pause(ctx context.Context, try int) bool {
	return sleep(ctx, 50*time.Millisecond<<(2*try))
}
