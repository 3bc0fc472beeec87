package dispatcher_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// Tenant isolation (SPEC.md §6): two organizations on one instance, one of
// them misbehaving, as a hosting provider runs it.

// arrivals records when each request reached a receiver, by CallID and
// event, for latency and order checks.
type arrivals struct {
	mu sync.Mutex
	at map[string]time.Time // "CallID event" → first arrival
}

func (a *arrivals) note(r *http.Request, body string) {
	params, _ := url.ParseQuery(body)
	if r.Method == http.MethodGet {
		params = r.URL.Query()
	}
	key := params.Get("CallID") + " " + r.Header.Get("X-CallEvents-Event")
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.at == nil {
		a.at = map[string]time.Time{}
	}
	if _, seen := a.at[key]; !seen {
		a.at[key] = time.Now()
	}
}

func (a *arrivals) get(key string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[key]
	return t, ok
}

// hanging answers nothing until the dispatcher gives up on the request (or
// until released, when release is not nil and gets closed).
func hanging(release <-chan struct{}) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// sharedHost is one CRM host for two organizations: org 0003's Dial-Out
// on 0003*301 goes to a path that answers 500, org 0004's Dial-In on
// 0004*301 (POST) to another path, answered; it records the arrivals.
func sharedHost(t *testing.T, st testStore) *arrivals {
	t.Helper()
	var seen arrivals
	var rc *dispatchertest.Receiver
	rc = dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		seen.note(r, rc.Hits()[n-1].Body)
		if r.URL.Path == "/org3" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	mustAddCallEvent(t, st, callevents.CallEvent{Extension: "0003*301", Type: callevents.DialOut, URL: rc.URL + "/org3"})
	mustAddCallEvent(t, st, callevents.CallEvent{Extension: "0004*301", Type: callevents.DialIn, URL: rc.URL + "/org4", Method: callevents.MethodPOST})
	return &seen
}

// Org 0003's Dial-Out goes to a path that answers 500, org 0004's Dial-In
// to another path of the same scheme://host:port, for one call between
// them. Org 0004's delivery must not wait for org 0003's retries: it is
// delivered within 2 s, while org 0003's is being retried.
func TestCrossTenantDeliveryIsolation(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		seen := sharedHost(t, st)
		cfg := testConfig(t, st)
		cfg.RetrySchedule = []time.Duration{time.Second, time.Second, time.Hour}
		cfg.Jitter = -1
		d := mustStart(t, cfg)

		reported := time.Now()
		mustAccept(t, st, reported, callevents.CallActivity{CallID: "tenant-call", Phase: callevents.PhaseDial,
			CallerExtension: "0003*301", CalledExtension: "0004*301", CalledNumber: "0004301"})
		d.Notify()
		org4 := waitDelivery(t, st, "0004*301", "org 0004's Dial-In delivered", inState(callevents.DeliveryDelivered))
		at, _ := seen.get("tenant-call Dial-In")
		if wait := at.Sub(reported); wait > 2*time.Second {
			t.Errorf("org 0004's Dial-In arrived %s after the report, want within 2 s", wait)
		}
		if org4.Attempts != 1 || org4.Sequence != 1 {
			t.Errorf("org 0004's Dial-In: %d attempts, sequence %d; want 1 and 1", org4.Attempts, org4.Sequence)
		}
		// Meanwhile org 0003's is retried, as its receiver keeps failing.
		org3 := waitDelivery(t, st, "0003*301", "org 0003's Dial-Out retried", func(d callevents.Delivery) bool {
			return len(d.History) >= 2
		})
		if org3.State.Finished() {
			t.Errorf("org 0003's Dial-Out is %s, want it still retrying", org3.State)
		}
		for _, a := range org3.History {
			if a.StatusCode != 500 {
				t.Errorf("org 0003's attempt %d: status %d, want 500", a.Attempt, a.StatusCode)
			}
		}
	})
}

// A Dial-In whose URL keeps failing holds back the Hangup to a working URL
// on the same receiver and extension for the order hold, counted from when
// the Hangup became due, and no longer: then the Hangup goes out, marked
// with its sequence, while the Dial-In is still being retried.
func TestOrderHoldReleasesLaterDelivery(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		var seen arrivals
		var mu sync.Mutex
		sequences := map[string]string{}
		var rc *dispatchertest.Receiver
		rc = dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
			seen.note(r, rc.Hits()[n-1].Body)
			mu.Lock()
			sequences[r.Header.Get("X-CallEvents-Event")] = r.Header.Get("X-CallEvents-Sequence")
			mu.Unlock()
			if r.URL.Path == "/dial" {
				w.WriteHeader(http.StatusInternalServerError)
			}
		})
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL + "/dial"})
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.Hangup, URL: rc.URL + "/hangup"})
		const hold = 1500 * time.Millisecond
		cfg := testConfig(t, st)
		cfg.OrderHold = hold
		cfg.RetrySchedule = []time.Duration{time.Hour}
		d := mustStart(t, cfg)

		reported := time.Now()
		mustAccept(t, st, reported, dial("held-call"))
		mustAccept(t, st, reported, hangup("held-call"))
		d.Notify()
		dispatchertest.WaitFor(t, "the Hangup released after the hold", func() bool {
			_, ok := seen.get("held-call Hangup")
			return ok
		})
		dialAt, _ := seen.get("held-call Dial-In")
		hangAt, _ := seen.get("held-call Hangup")
		if wait := hangAt.Sub(reported); wait < hold {
			t.Errorf("the Hangup went out %s after it was due, before the %s hold", wait, hold)
		} else if wait > hold+2*time.Second {
			t.Errorf("the Hangup went out %s after it was due, long after the %s hold", wait, hold)
		}
		if !dialAt.Before(hangAt) {
			t.Errorf("the Dial-In (%s) did not go out before the Hangup (%s)", dialAt, hangAt)
		}
		mu.Lock()
		if sequences["Dial-In"] != "1" || sequences["Hangup"] != "2" {
			t.Errorf("X-CallEvents-Sequence: Dial-In %q, Hangup %q; want 1 and 2", sequences["Dial-In"], sequences["Hangup"])
		}
		mu.Unlock()
		for _, del := range deliveries(t, st, extA) {
			switch del.Type {
			case callevents.DialIn:
				if del.State != callevents.DeliveryPending || del.Attempts != 1 {
					t.Errorf("the Dial-In is %s after %d attempts, want pending for its retry after 1", del.State, del.Attempts)
				}
			case callevents.Hangup:
				if del.Sequence != 2 {
					t.Errorf("the Hangup has sequence %d, want 2", del.Sequence)
				}
			}
		}
	})
}

// 600 deliveries queued to a receiver that accepts connections and never
// answers, then 100 events reported one per request for another
// organization's healthy receiver on another origin: every one of the 100
// is delivered, p99 from report to arrival within 2 s, although the hanging
// receiver's backlog came first.
func TestNoisyNeighbour(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		release := make(chan struct{})
		var inFlight, maxInFlight atomic.Int32
		stuck := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
			now := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := maxInFlight.Load(); now > m && !maxInFlight.CompareAndSwap(m, now); m = maxInFlight.Load() {
			}
			hanging(release)(w, r, n)
		})
		unblock := sync.OnceFunc(func() { close(release) })
		t.Cleanup(unblock)
		var seen arrivals
		var healthy *dispatchertest.Receiver
		healthy = dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { seen.note(r, healthy.Hits()[n-1].Body) })
		// Two origins: the receivers listen on two ports.
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: "0003*301", Type: callevents.DialOut, URL: stuck.URL + "/crm"})
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: "0004*301", Type: callevents.DialIn, URL: healthy.URL + "/in"})
		cfg := testConfig(t, st)
		cfg.Timeout = 10 * time.Second // the default: the backlog hangs that long
		cfg.Lease = time.Minute
		d := mustStart(t, cfg)

		backlog := make([]callevents.CallActivity, 600)
		for i := range backlog {
			backlog[i] = callevents.CallActivity{CallID: fmt.Sprintf("stuck-%d", i), Phase: callevents.PhaseDial,
				CallerExtension: "0003*301", CalledNumber: "555"}
		}
		mustAccept(t, st, time.Now(), backlog...)
		d.Notify()
		stuck.WaitHits(t, 1) // the backlog is being worked on

		reported := make([]time.Time, 100)
		for i := range reported {
			reported[i] = time.Now()
			mustAccept(t, st, reported[i], callevents.CallActivity{CallID: fmt.Sprintf("healthy-%d", i), Phase: callevents.PhaseDial,
				CallerExtension: "0003*999", CalledExtension: "0004*301", CalledNumber: "0004301"})
			d.Notify()
		}
		var waits []time.Duration
		dispatchertest.WaitFor(t, "the 100 healthy events delivered", func() bool {
			waits = waits[:0]
			for i, r := range reported {
				at, ok := seen.get(fmt.Sprintf("healthy-%d Dial-In", i))
				if !ok {
					return false
				}
				waits = append(waits, at.Sub(r))
			}
			return true
		})
		slices.Sort(waits)
		p99 := waits[len(waits)*99/100-1]
		t.Logf("report → arrival beside a hanging receiver's backlog of 600: p50 %s, p99 %s, max %s", waits[len(waits)/2], p99, waits[len(waits)-1])
		if p99 > 2*time.Second {
			t.Errorf("p99 from report to arrival %s, want at most 2 s", p99)
		}
		if m, share := maxInFlight.Load(), d.Config().ReceiverConcurrency; m > int32(share) {
			t.Errorf("the hanging receiver held %d requests at once, want at most its share (%d)", m, share)
		}
		unblock() // rather than make Stop wait out the requests it holds
	})
}

// breakerLog records the breaker changes a dispatcher reports.
type breakerLog struct {
	callevents.NopObserver
	mu       sync.Mutex
	states   []callevents.BreakerState
	open     int
	onChange func(organization string, state callevents.BreakerState)
}

func (b *breakerLog) BreakerChanged(organization, _ string, state callevents.BreakerState, open int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.states = append(b.states, state)
	b.open = open
	if b.onChange != nil {
		b.onChange(organization, state)
	}
}

func (b *breakerLog) seen(state callevents.BreakerState) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, s := range b.states {
		if s == state {
			n++
		}
	}
	return n
}

// A receiver that hangs opens its breaker after BreakerFailures timeouts:
// the rest of what is queued to it waits without spending attempts while
// probes test it, and once it answers again everything is delivered, once.
func TestBreakerPausesHangingReceiver(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		var hang atomic.Bool
		hang.Store(true)
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		var delivered sync.Map // webhook-id → answered 200
		var twice atomic.Int32
		rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			if hang.Load() {
				hanging(release)(w, r, 0)
				return
			}
			if _, again := delivered.LoadOrStore(r.Header.Get("webhook-id"), true); again {
				twice.Add(1)
			}
		})
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL + "/in"})
		obs := &breakerLog{}
		cfg := testConfig(t, st)
		cfg.Observer = obs
		cfg.Timeout = 300 * time.Millisecond
		cfg.Lease = 10 * time.Second
		cfg.ReceiverConcurrency = 4
		cfg.BreakerFailures = 5
		cfg.BreakerBackoff = 200 * time.Millisecond
		cfg.BreakerMaxBackoff = 400 * time.Millisecond
		cfg.RetrySchedule = slices.Repeat([]time.Duration{100 * time.Millisecond}, 99)
		cfg.Jitter = -1
		d := mustStart(t, cfg)

		const queued = 100
		for i := range queued {
			mustAccept(t, st, time.Now(), dial("breaker-"+strconv.Itoa(i)))
		}
		d.Notify()
		dispatchertest.WaitFor(t, "the breaker to open", func() bool { return obs.seen(callevents.BreakerOpen) >= 1 })
		// While it is open, probes come one at a time: let a few go by.
		dispatchertest.WaitFor(t, "three probes", func() bool { return obs.seen(callevents.BreakerHalfOpen) >= 3 })
		spent, attempts := 0, 0
		for _, del := range deliveries(t, st, extA) {
			if del.Attempts > 0 {
				spent++
			}
			attempts += del.Attempts
		}
		t.Logf("breaker open: %d of %d deliveries tried, %d attempts in all", spent, queued, attempts)
		if spent == queued {
			t.Errorf("every one of the %d queued deliveries spent an attempt on the hanging receiver", queued)
		}
		// Before the breaker: 5 failures plus what was in flight with them
		// (4 at most); after: one probe at a time.
		if max := cfg.BreakerFailures + cfg.ReceiverConcurrency + obs.seen(callevents.BreakerHalfOpen) + 1; attempts > max {
			t.Errorf("%d attempts against a paused receiver, want at most %d", attempts, max)
		}
		if n := len(rc.Hits()); n > attempts+cfg.ReceiverConcurrency {
			t.Errorf("the receiver got %d requests for %d attempts", n, attempts)
		}

		hang.Store(false)
		dispatchertest.WaitFor(t, "everything queued delivered once the receiver answers", func() bool {
			for _, del := range deliveries(t, st, extA) {
				if del.State != callevents.DeliveryDelivered {
					return false
				}
			}
			return true
		})
		if obs.seen(callevents.BreakerClosed) < 1 {
			t.Error("the breaker never closed")
		}
		obs.mu.Lock()
		if obs.open != 0 {
			t.Errorf("%d breakers still open", obs.open)
		}
		obs.mu.Unlock()
		if n := twice.Load(); n != 0 {
			t.Errorf("%d deliveries answered twice", n)
		}
		n := 0
		delivered.Range(func(any, any) bool { n++; return true })
		if n != queued {
			t.Errorf("%d deliveries answered, want %d", n, queued)
		}
	})
}

// The breaker's pause before each probe starts at BreakerBackoff, doubles
// after every failed probe up to BreakerMaxBackoff, and no request reaches
// the receiver in between; a probe that gets an answer closes it and the
// rest of the queue follows. Times are the dispatcher's clock.
func TestBreakerBackoffDoubles(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db testStore) {
		st := &claimCounter{testStore: db}
		clk := dispatchertest.NewClock()
		var up atomic.Bool
		rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
			if !up.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		})
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
		obs := &breakerLog{}
		cfg := testConfig(t, st)
		cfg.Now = clk.Now
		cfg.Observer = obs
		cfg.ReceiverConcurrency = 1
		cfg.BreakerFailures = 2
		cfg.BreakerBackoff = time.Minute
		cfg.BreakerMaxBackoff = 4 * time.Minute
		cfg.RetrySchedule = slices.Repeat([]time.Duration{time.Millisecond}, 50)
		cfg.Jitter = -1
		mustStart(t, cfg)
		for i := range 5 {
			mustAccept(t, st, clk.Now(), dial("backoff-"+strconv.Itoa(i)))
		}
		dispatchertest.WaitFor(t, "the breaker to open after 2 failures", func() bool { return obs.seen(callevents.BreakerOpen) == 1 })
		if n := len(rc.Hits()); n != 2 {
			t.Fatalf("%d requests before the breaker opened, want 2", n)
		}
		// quiet advances the clock and waits for two more claims: none of
		// them may send anything.
		quiet := func(d time.Duration) {
			t.Helper()
			before := len(rc.Hits())
			clk.Advance(d)
			calls, _, _ := st.stats()
			dispatchertest.WaitFor(t, "two claims", func() bool { c, _, _ := st.stats(); return c >= calls+2 })
			if n := len(rc.Hits()); n != before {
				t.Fatalf("%d requests reached a paused receiver %s into its pause", n-before, d)
			}
		}
		probe := func(wantOpen int) {
			t.Helper()
			before := len(rc.Hits())
			clk.Advance(time.Second)
			dispatchertest.WaitFor(t, "a probe", func() bool { return len(rc.Hits()) == before+1 })
			dispatchertest.WaitFor(t, "the probe's outcome", func() bool { return obs.seen(callevents.BreakerOpen) == wantOpen })
		}
		for i, pause := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 4 * time.Minute} {
			quiet(pause - time.Second)
			probe(i + 2)
		}
		up.Store(true)
		quiet(4*time.Minute - time.Second)
		clk.Advance(time.Second)
		dispatchertest.WaitFor(t, "the breaker to close", func() bool { return obs.seen(callevents.BreakerClosed) == 1 })
		clk.Advance(time.Second) // retries of the failed ones are due
		dispatchertest.WaitFor(t, "every delivery delivered", func() bool {
			for _, d := range deliveries(t, st, extA) {
				if d.State != callevents.DeliveryDelivered {
					return false
				}
			}
			return true
		})
		if got := obs.seen(callevents.BreakerHalfOpen); got != 5 {
			t.Errorf("%d probes, want 5", got)
		}
	})
}

// Two organizations on one CRM host: org 0003's endpoint answers 500,
// org 0004's answers. Org 0003's breaker opens; org 0004's deliveries to
// the same origin keep going out at once, every one of them, and its
// breaker never opens.
func TestBreakerPausesOneOrganization(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		seen := sharedHost(t, st)
		opened := map[string]int{}
		var mu sync.Mutex
		obs := &breakerLog{}
		obs.onChange = func(org string, state callevents.BreakerState) {
			mu.Lock()
			defer mu.Unlock()
			if state == callevents.BreakerOpen {
				opened[org]++
			}
		}
		cfg := testConfig(t, st)
		cfg.Observer = obs
		cfg.BreakerFailures = 3
		cfg.BreakerBackoff = time.Hour // no probe in this test
		cfg.RetrySchedule = []time.Duration{time.Hour}
		d := mustStart(t, cfg)

		const calls = 20
		reported := make([]time.Time, calls)
		for i := range calls {
			reported[i] = time.Now()
			mustAccept(t, st, reported[i], callevents.CallActivity{CallID: fmt.Sprintf("shared-%d", i), Phase: callevents.PhaseDial,
				CallerExtension: "0003*301", CalledExtension: "0004*301", CalledNumber: "0004301"})
			d.Notify()
		}
		dispatchertest.WaitFor(t, "org 0004's deliveries", func() bool {
			for i := range calls {
				if _, ok := seen.get(fmt.Sprintf("shared-%d Dial-In", i)); !ok {
					return false
				}
			}
			return true
		})
		for i := range calls {
			at, _ := seen.get(fmt.Sprintf("shared-%d Dial-In", i))
			if wait := at.Sub(reported[i]); wait > 2*time.Second {
				t.Errorf("org 0004's call %d arrived %s after its report, want within 2 s", i, wait)
			}
		}
		dispatchertest.WaitFor(t, "org 0003's breaker to open", func() bool { return obs.seen(callevents.BreakerOpen) >= 1 })
		mu.Lock()
		if opened["0004"] != 0 || opened["0003"] != 1 {
			t.Errorf("breakers opened: %v, want org 0003's once and never org 0004's", opened)
		}
		mu.Unlock()
		tried := 0
		for _, del := range deliveries(t, st, "0003*301") {
			if del.Attempts > 0 {
				tried++
			}
		}
		if tried == calls {
			t.Errorf("all %d of org 0003's deliveries spent an attempt on its failing endpoint", calls)
		}
	})
}

// A lone receiver that answers fast may borrow the slots nobody else uses:
// more than its share in flight, never more than Concurrency less the
// reserve.
func TestFastReceiverBorrowsIdleSlots(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		release := make(chan struct{})
		var inFlight, maxInFlight, hits atomic.Int32
		rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
			now := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := maxInFlight.Load(); now > m && !maxInFlight.CompareAndSwap(m, now); m = maxInFlight.Load() {
			}
			// The first share answers at once and makes a record; then
			// requests wait until as many as may run are in.
			if hits.Add(1) > 4 {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
		})
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
		cfg := testConfig(t, st)
		cfg.Concurrency = 16
		cfg.ReceiverConcurrency = 4
		d := mustStart(t, cfg)
		for i := range 4 {
			mustAccept(t, st, time.Now(), dial("warm-"+strconv.Itoa(i)))
		}
		d.Notify()
		dispatchertest.WaitFor(t, "the first share answered", func() bool {
			n := 0
			for _, del := range deliveries(t, st, extA) {
				if del.State == callevents.DeliveryDelivered {
					n++
				}
			}
			return n == 4
		})
		for i := range 40 {
			mustAccept(t, st, time.Now(), dial("busy-"+strconv.Itoa(i)))
		}
		d.Notify()
		// 16 slots less a reserve of 1.
		dispatchertest.WaitFor(t, "15 requests in flight", func() bool { return inFlight.Load() == 15 })
		close(release)
		dispatchertest.WaitFor(t, "everything delivered", func() bool {
			for _, del := range deliveries(t, st, extA) {
				if del.State != callevents.DeliveryDelivered {
					return false
				}
			}
			return true
		})
		if m := maxInFlight.Load(); m != 15 {
			t.Errorf("at most %d requests in flight, want 15 (Concurrency 16 less the reserve)", m)
		}
	})
}
