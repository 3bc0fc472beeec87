package dispatcher_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// Receivers that misbehave for a while, then recover: what a receiver sees
// once it is back, and what the delivery log says about the bad spell.
//
// Covered elsewhere, not repeated here: a single refused connection and a
// single timeout are classified ("connect", "timeout") by TestOutcomes in
// outcome_test.go; 429 and 503 with Retry-After (seconds, HTTP date, the
// one-hour cap, never sooner than the schedule, malformed, ignored on 500)
// by TestRetryAfter in outcome_test.go; a stalled, not timed-out, request
// holding back its call's Hangup by TestOrderPerCall in lifecycle_test.go.

// callDeliveries queues a Dial-In then a Hangup for each of calls, to two
// Call Events of extA at base (a URL without a path): one receiver, so each
// call's two deliveries share an order key.
func callDeliveries(t *testing.T, st testStore, base string, calls ...string) {
	t.Helper()
	mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: base + "/dial"})
	mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.Hangup, URL: base + "/hangup"})
	for _, id := range calls {
		mustAccept(t, st, time.Now(), dial(id))
	}
	for _, id := range calls {
		mustAccept(t, st, time.Now(), hangup(id))
	}
}

// waitAllDelivered waits until every delivery of extA is delivered, and
// returns them; n is how many there must be.
func waitAllDelivered(t *testing.T, st testStore, n int) []callevents.Delivery {
	t.Helper()
	var ds []callevents.Delivery
	dispatchertest.WaitFor(t, strconv.Itoa(n)+" deliveries delivered", func() bool {
		ds = deliveries(t, st, extA)
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if d.State.Finished() && d.State != callevents.DeliveryDelivered {
				t.Fatalf("delivery %s of %s ended %s: %+v", d.Type, d.CallID, d.State, d.History)
			}
			if d.State != callevents.DeliveryDelivered {
				return false
			}
		}
		return true
	})
	return ds
}

// checkOncePerDeliveryInOrder checks what the receiver got once everything
// is delivered: each delivery reached it exactly reached(d) times, the last
// of them its final attempt (so nothing was sent after the answer), and
// each call's Hangup came after the last request of its Dial-In. reached
// counts the requests that got to the receiver: a hung one does, a refused
// connection does not.
func checkOncePerDeliveryInOrder(t *testing.T, hits []dispatchertest.Hit, ds []callevents.Delivery, reached func(callevents.Delivery) int) {
	t.Helper()
	byID := map[string][]int{} // webhook-id -> X-CallEvents-Attempt of each request
	for _, h := range hits {
		n, _ := strconv.Atoi(h.Header.Get("X-CallEvents-Attempt"))
		byID[h.Header.Get("webhook-id")] = append(byID[h.Header.Get("webhook-id")], n)
	}
	for _, d := range ds {
		got := byID[d.ID]
		if want := reached(d); len(got) != want {
			t.Errorf("%s of %s reached the receiver %d times (attempts %v), want %d", d.Type, d.CallID, len(got), got, want)
			continue
		}
		// The answered request is the delivery's last attempt, and it is
		// the last request of that delivery: nothing was sent after it.
		if len(got) == 0 || got[len(got)-1] != d.Attempts {
			t.Errorf("%s of %s: the receiver saw attempts %v, the delivery ended on attempt %d", d.Type, d.CallID, got, d.Attempts)
		}
	}
	calls := map[string]bool{}
	for _, d := range ds {
		calls[d.CallID] = true
	}
	for id := range calls {
		lastDial, firstHangup := -1, -1
		for i, h := range hits {
			if callIDOf(h) != id {
				continue
			}
			switch h.Path {
			case "/dial":
				lastDial = i
			case "/hangup":
				if firstHangup < 0 {
					firstHangup = i
				}
			}
		}
		if lastDial < 0 || firstHangup < lastDial {
			t.Errorf("call %s: last Dial-In request at %d, first Hangup at %d: the Hangup overtook its Dial-In", id, lastDial, firstHangup)
		}
	}
}

// freeAddr returns a loopback address where nothing listens: one the kernel
// just handed out and that was closed again.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// serveOn makes rc listen on addr instead of the address it was started
// on, as a receiver restarted on its old port. It waits for addr to be
// free: the port was released by freeAddr, but an outgoing connection of
// another test may hold it for a moment as its local port. (Go listeners set
// SO_REUSEADDR, so our own closed connections in TIME_WAIT do not stop it.)
func serveOn(t *testing.T, rc *dispatchertest.Receiver, addr string) {
	t.Helper()
	var l net.Listener
	dispatchertest.WaitFor(t, addr+" to be free to listen on again", func() bool {
		var err error
		l, err = net.Listen("tcp", addr)
		return err == nil
	})
	// The recording handler is rc's own, so rc.Hits sees every request.
	srv := httptest.NewUnstartedServer(rc.Config.Handler)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	rc.Server.Close()
	rc.Server = srv
	t.Cleanup(srv.Close)
}

// A receiver down for a while: its address refuses connections for several
// attempts, then a server listens on the same address again. Every delivery
// then arrives, each once, and each call's Hangup after its Dial-In: while
// the Dial-In is retried the Hangup waits, it is neither sent nor failed.
func TestReceiverDownThenBack(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		addr := freeAddr(t)
		calls := []string{"c1", "c2", "c3"}
		callDeliveries(t, st, "http://"+addr, calls...)
		cfg := testConfig(t, st)
		// Retries every 100 ms, no jitter, 50 attempts: the outage below
		// lasts about 3 of them, which leaves ample room before a delivery
		// could run out of attempts on a slow machine.
		cfg.Jitter = -1
		cfg.RetrySchedule = slices.Repeat([]time.Duration{100 * time.Millisecond}, 49)
		// Retries, not the circuit breaker (TestBreaker…), are the subject.
		cfg.BreakerFailures = 1000
		mustStart(t, cfg)

		const downAttempts = 3
		dispatchertest.WaitFor(t, "every Dial-In refused "+strconv.Itoa(downAttempts)+" times", func() bool {
			for _, d := range deliveries(t, st, extA) {
				if d.State.Finished() {
					t.Fatalf("%s of %s is %s while the receiver is down, with attempts left: %+v", d.Type, d.CallID, d.State, d.History)
				}
				if d.Type == callevents.DialIn && len(d.History) < downAttempts {
					return false
				}
			}
			return true
		})
		for _, d := range deliveries(t, st, extA) {
			switch d.Type {
			case callevents.DialIn:
				for _, a := range d.History {
					if a.ErrorClass != "connect" || a.StatusCode != 0 {
						t.Errorf("Dial-In of %s, attempt %d while down: status %d, class %q, want a refused connection", d.CallID, a.Attempt, a.StatusCode, a.ErrorClass)
					}
				}
			case callevents.Hangup:
				if d.Attempts != 0 || d.State != callevents.DeliveryPending {
					t.Errorf("Hangup of %s was tried while its Dial-In waits for a retry: %d attempts, %s", d.CallID, d.Attempts, d.State)
				}
			}
		}

		rc := dispatchertest.NewReceiver(t, nil)
		serveOn(t, rc, addr)
		ds := waitAllDelivered(t, st, 2*len(calls))
		checkOncePerDeliveryInOrder(t, rc.Hits(), ds, func(callevents.Delivery) int { return 1 })
		for _, d := range ds {
			last := d.History[len(d.History)-1]
			if last.StatusCode != 200 || last.ErrorClass != "" {
				t.Errorf("%s of %s: last attempt status %d, class %q", d.Type, d.CallID, last.StatusCode, last.ErrorClass)
			}
			if d.Type == callevents.DialIn && d.Attempts <= downAttempts {
				t.Errorf("Dial-In of %s delivered on attempt %d, before the receiver was back", d.CallID, d.Attempts)
			}
			if d.Type == callevents.Hangup && d.Attempts != 1 {
				t.Errorf("Hangup of %s took %d attempts, want 1 (sent only once its Dial-In was delivered)", d.CallID, d.Attempts)
			}
		}
	})
}

// A receiver that accepts the connection, reads the request and never
// answers (nor notices the dispatcher hang up): each attempt ends at
// Config.Timeout and is recorded as a timeout, the retry follows on
// schedule over a new connection, and once the receiver answers again the
// delivery is delivered, then its call's Hangup, which waited meanwhile.
func TestReceiverHangsThenAnswers(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		var hanging atomic.Bool
		hanging.Store(true)
		release := make(chan struct{})
		rc := dispatchertest.NewReceiver(t, func(http.ResponseWriter, *http.Request, int) {
			if hanging.Load() {
				<-release
			}
		})
		// Cleanups run last-registered first: this frees the hung handlers
		// before rc.Close (registered by NewReceiver), which waits for them.
		t.Cleanup(func() { close(release) })
		callDeliveries(t, st, rc.URL, "c1")
		const timeout = 200 * time.Millisecond
		cfg := testConfig(t, st)
		cfg.Timeout = timeout
		cfg.Jitter = -1
		cfg.RetrySchedule = slices.Repeat([]time.Duration{50 * time.Millisecond}, 30)
		mustStart(t, cfg)

		// Two timeouts in a row: the first retry went out, and hung too.
		dialIn := func() callevents.Delivery {
			for _, d := range deliveries(t, st, extA) {
				if d.Type == callevents.DialIn {
					return d
				}
			}
			t.Fatal("no Dial-In delivery")
			return callevents.Delivery{}
		}
		dispatchertest.WaitFor(t, "two timed-out attempts", func() bool {
			d := dialIn()
			if d.State.Finished() {
				t.Fatalf("Dial-In is %s while the receiver hangs, with attempts left: %+v", d.State, d.History)
			}
			return len(d.History) >= 2
		})
		hanging.Store(false)

		ds := waitAllDelivered(t, st, 2)
		hits := rc.Hits()
		// Every attempt reached the receiver, the hung ones included.
		checkOncePerDeliveryInOrder(t, hits, ds, func(d callevents.Delivery) int { return d.Attempts })
		for _, d := range ds {
			if d.Type == callevents.Hangup {
				if d.Attempts != 1 {
					t.Errorf("Hangup took %d attempts, want 1 (sent only once its Dial-In was delivered)", d.Attempts)
				}
				continue
			}
			if len(d.History) < 3 {
				t.Fatalf("Dial-In history %+v, want at least two timeouts and a success", d.History)
			}
			for i, a := range d.History {
				last := i == len(d.History)-1
				switch {
				case last && (a.StatusCode != 200 || a.ErrorClass != ""):
					t.Errorf("last attempt: status %d, class %q, want 200", a.StatusCode, a.ErrorClass)
				case !last && (a.StatusCode != 0 || a.ErrorClass != "timeout"):
					t.Errorf("attempt %d: status %d, class %q, want a timeout", a.Attempt, a.StatusCode, a.ErrorClass)
				case !last && (a.Latency < timeout || a.Latency > timeout+2*time.Second):
					// Config.Timeout, not testConfig's 5 s, ended the attempt.
					t.Errorf("attempt %d timed out after %s, want about %s", a.Attempt, a.Latency, timeout)
				}
				if a.Attempt != i+1 {
					t.Errorf("history entry %d is attempt %d", i, a.Attempt)
				}
			}
		}
	})
}
