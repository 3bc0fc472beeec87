package dispatcher_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// outage makes a store unavailable for a while, as a stopped database is.
type outage struct {
	mu    sync.Mutex
	until time.Time
}

func (o *outage) start(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.until = time.Now().Add(d)
}

// err is the store's error during the outage (what store.formatError
// makes of a refused connection), nil outside it.
func (o *outage) err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if time.Now().Before(o.until) {
		return callevents.UpdateFailed(fmt.Errorf("%w: dial tcp 127.0.0.1:3306: connect: connection refused", callevents.ErrUnavailable))
	}
	return nil
}

// An outcome that cannot be recorded because the database is unavailable
// is kept, with a growing pause, until the database is back: the delivery
// is recorded once, not sent again when its lease ends, and the outage is
// logged when it starts and when it ends rather than per try. (Before, the
// dispatcher gave up after four tries in about a second.)
func TestRecordWaitsOutDatabaseOutage(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db testStore) {
		var down outage
		var calls atomic.Int32
		st := &faultyStore{testStore: db, RecordAttemptsFunc: func([]callevents.AttemptOutcome) error {
			calls.Add(1)
			return down.err()
		}}
		rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				down.start(2 * time.Second) // the database goes away while the request is out
			}
		})
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
		var logs lockedBuffer
		cfg := testConfig(t, st)
		cfg.Logger = slogTo(&logs)
		cfg.MaxStoreBackoff = 400 * time.Millisecond
		cfg.Lease = 20 * time.Second
		d := mustStart(t, cfg)
		begin := time.Now()
		mustAccept(t, st, time.Now(), dial("c1"))
		waitDelivery(t, st, extA, "delivered", inState(callevents.DeliveryDelivered))
		took := time.Since(begin)
		if took < 2*time.Second {
			t.Errorf("recorded after %v, during the 2 s outage", took)
		}
		if n := len(rc.Hits()); n != 1 {
			t.Errorf("the receiver got %d requests, want 1", n)
		}
		// 50, 100, 200, 400, 400, … ms over 2 s: about 8 tries, not a hot loop,
		// and not the 4 of a dispatcher that gives up.
		t.Logf("recorded after %v and %d tries", took.Round(time.Millisecond), calls.Load())
		if n := calls.Load(); n < 6 || n > 14 {
			t.Errorf("RecordAttempts called %d times over a 2 s outage with pauses up to 400 ms", n)
		}
		stopNow(t, d) // it logs the end of the outage after the store has the outcome
		checkLogged(t, &logs, map[string]int{
			"cannot record attempts, the database is unavailable": 1,
			"recording attempts again":                            1,
			"could not record an attempt":                         0,
		})
	})
}

// checkLogged checks how many times each message is in logs: an outage is
// logged once when it starts and once when it ends, not per try.
func checkLogged(t *testing.T, logs *lockedBuffer, want map[string]int) {
	t.Helper()
	for msg, n := range want {
		if got := strings.Count(logs.String(), msg); got != n {
			t.Errorf("%q logged %d times, want %d:\n%s", msg, got, n, logs.String())
		}
	}
}

// A delivery whose lease ends while the database is still away is given up
// (its rescue sends it again), rather than recorded under a lease that may
// be someone else's by then.
func TestRecordGivesUpAtLeaseEnd(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db testStore) {
		var down outage
		down.start(time.Hour)
		st := &faultyStore{testStore: db, RecordAttemptsFunc: func([]callevents.AttemptOutcome) error { return down.err() }}
		rc := dispatchertest.NewReceiver(t, nil)
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
		var logs lockedBuffer
		cfg := testConfig(t, st)
		cfg.Logger = slogTo(&logs)
		cfg.Timeout = 500 * time.Millisecond
		cfg.Lease = 1500 * time.Millisecond
		cfg.MaxStoreBackoff = 200 * time.Millisecond
		mustStart(t, cfg)
		mustAccept(t, st, time.Now(), dial("c1"))
		dispatchertest.WaitFor(t, "the outcome to be given up", func() bool { return strings.Contains(logs.String(), "could not record an attempt") })
		checkLogged(t, &logs, map[string]int{"cannot record attempts, the database is unavailable": 1})
	})
}

// While the database is away the claim loop backs off, up to
// MaxStoreBackoff, logs the outage once, and claims again once it is back.
func TestClaimBacksOffDuringOutage(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db testStore) {
		var down outage
		var claims atomic.Int32 // ClaimDue calls that failed
		st := &faultyStore{testStore: db, ClaimDueFunc: func(callevents.Claim) error {
			err := down.err()
			if err != nil {
				claims.Add(1)
			}
			return err
		}}
		rc := dispatchertest.NewReceiver(t, nil)
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
		var logs lockedBuffer
		cfg := testConfig(t, st)
		cfg.Logger = slogTo(&logs)
		cfg.PollInterval = 10 * time.Millisecond
		cfg.MaxStoreBackoff = 200 * time.Millisecond
		down.start(4 * time.Second)
		d := mustStart(t, cfg)
		mustAccept(t, st, time.Now(), dial("c1"))
		waitDelivery(t, st, extA, "delivered", inState(callevents.DeliveryDelivered))
		// 20, 40, 80, 160, then 200 ms pauses over 4 s: about 23 claims, where
		// a claim every PollInterval would be 400 and a 5 s cap 8. The bounds
		// leave room for a loaded machine's late timers.
		t.Logf("%d claims failed during the outage", claims.Load())
		if n := claims.Load(); n < 12 || n > 40 {
			t.Errorf("ClaimDue failed %d times over a 4 s outage, polling every 10 ms with pauses up to 200 ms", n)
		}
		stopNow(t, d) // it logs the end of the outage after the claim that ended it
		checkLogged(t, &logs, map[string]int{"cannot claim deliveries": 1, "claiming deliveries again": 1})
	})
}

// A pause that would outlast the lease is cut short: the last try comes a
// little before the lease ends, so a database back by then still gets the
// outcome.
func TestRecordTriesOnceMoreBeforeLeaseEnds(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db testStore) {
		var down outage
		st := &faultyStore{testStore: db, RecordAttemptsFunc: func([]callevents.AttemptOutcome) error { return down.err() }}
		rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { down.start(1800 * time.Millisecond) })
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
		var logs lockedBuffer
		cfg := testConfig(t, st)
		cfg.Logger = slogTo(&logs)
		cfg.Timeout = time.Second
		cfg.Lease = 3 * time.Second
		cfg.MaxStoreBackoff = time.Minute // tries at 0, 50, 150, 350, 750, 1550 ms, then not 3150 but 2700
		mustStart(t, cfg)
		mustAccept(t, st, time.Now(), dial("c1"))
		waitDelivery(t, st, extA, "delivered", inState(callevents.DeliveryDelivered))
		if strings.Contains(logs.String(), "could not record an attempt") {
			t.Errorf("gave up before the lease ended:\n%s", logs.String())
		}
		if n := len(rc.Hits()); n != 1 {
			t.Errorf("the receiver got %d requests, want 1", n)
		}
	})
}

// stopNow stops d, so that everything it logs is in.
func stopNow(t *testing.T, d *dispatcher.Dispatcher) {
	t.Helper()
	if err := d.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}
