package dispatcher_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// callIDOf returns the CallID parameter of a request.
func callIDOf(h dispatchertest.Hit) string {
	payload := h.Body
	if h.Method == http.MethodGet {
		payload = h.RawQuery
	}
	v, _ := url.ParseQuery(payload)
	return v.Get("CallID")
}

// One call stalls at the receiver; the other calls go on meanwhile, and
// the stalled call's Hangup waits for its Dial-In.
func TestOrderPerCall(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		release := make(chan struct{})
		rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			if r.URL.Path == "/dial" && r.URL.Query().Get("CallID") == "stalled" {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
		})
		// Two Call Events on one receiver host: one call's Dial-In and
		// Hangup share an OrderKey.
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL + "/dial"})
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.Hangup, URL: rc.URL + "/hangup"})
		mustStart(t, testConfig(t, st))

		calls := []string{"stalled", "c1", "c2", "c3", "c4"}
		for _, id := range calls {
			mustAccept(t, st, time.Now(), dial(id))
		}
		for _, id := range calls {
			mustAccept(t, st, time.Now(), hangup(id))
		}
		// Everything but the stalled call's Hangup arrives while its
		// Dial-In is held.
		rc.WaitHits(t, 2*len(calls)-1)
		for _, h := range rc.Hits() {
			if callIDOf(h) == "stalled" && h.Path == "/hangup" {
				t.Fatal("the stalled call's Hangup overtook its Dial-In")
			}
		}
		close(release)
		hits := rc.WaitHits(t, 2*len(calls))
		if len(hits) != 2*len(calls) {
			t.Fatalf("receiver got %d requests, want %d", len(hits), 2*len(calls))
		}
		for _, id := range calls {
			dialAt, hangupAt := -1, -1
			for i, h := range hits {
				if callIDOf(h) == id {
					if h.Path == "/dial" {
						dialAt = i
					} else {
						hangupAt = i
					}
				}
			}
			if dialAt < 0 || hangupAt < dialAt {
				t.Errorf("call %s: Dial-In at %d, Hangup at %d", id, dialAt, hangupAt)
			}
		}
		if last := hits[len(hits)-1]; callIDOf(last) != "stalled" || last.Path != "/hangup" {
			t.Errorf("last request: %s of %s", last.Path, callIDOf(last))
		}
	})
}

// claimCounter counts the claims a store gets and the most it was asked for.
type claimCounter struct {
	testStore
	mu       sync.Mutex
	calls    int
	maxAsked int
	claimed  int
}

func (c *claimCounter) ClaimDue(ctx context.Context, claim callevents.Claim) ([]callevents.Delivery, error) {
	ds, err := c.testStore.ClaimDue(ctx, claim)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.maxAsked = max(c.maxAsked, claim.N)
	c.claimed += len(ds)
	return ds, err
}

func (c *claimCounter) stats() (calls, maxAsked, claimed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, c.maxAsked, c.claimed
}

// With a poll interval of an hour, only Notify (and freed slots) wake the
// dispatcher; claims never ask for more than the free slots or BatchSize,
// and no more than Concurrency requests run at once.
func TestNotifyBatchAndConcurrency(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		counter := &claimCounter{testStore: st}
		release := make(chan struct{})
		var inFlight, maxInFlight atomic.Int32
		rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
		cfg := testConfig(t, counter)
		cfg.PollInterval = time.Hour
		cfg.Concurrency = 3
		cfg.ReceiverConcurrency = 3 // one receiver may take every slot here
		cfg.BatchSize = 2
		d := mustStart(t, cfg)
		dispatchertest.WaitFor(t, "the first claim", func() bool { calls, _, _ := counter.stats(); return calls >= 1 })

		const total = 9
		for i := range total {
			mustAccept(t, st, time.Now(), dial("call-"+string(rune('a'+i))))
		}
		d.Notify()
		rc.WaitHits(t, 3)
		if _, maxAsked, claimed := counter.stats(); claimed != 3 || maxAsked > 2 {
			t.Errorf("with 3 slots busy: claimed %d, asked for at most %d", claimed, maxAsked)
		}
		close(release)
		dispatchertest.WaitFor(t, "every delivery delivered", func() bool {
			ds, _, _ := st.FindDeliveries(context.Background(), callevents.DeliveryFilter{Extension: extA, State: callevents.DeliveryDelivered})
			return len(ds) == total
		})
		if m := maxInFlight.Load(); m > 3 {
			t.Errorf("%d requests ran at once, want at most 3", m)
		}
		if _, maxAsked, _ := counter.stats(); maxAsked > 2 {
			t.Errorf("a claim asked for %d, more than BatchSize", maxAsked)
		}
	})
}

func TestStop(t *testing.T) {
	t.Parallel()

	// Stop waits for requests in flight and records their outcome.
	t.Run("drains", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			release := make(chan struct{})
			rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) { <-release })
			mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
			d := mustStart(t, testConfig(t, st))
			for _, id := range []string{"c1", "c2", "c3"} {
				mustAccept(t, st, time.Now(), dial(id))
			}
			rc.WaitHits(t, 3)
			stopped := make(chan error, 1)
			go func() { stopped <- d.Stop(context.Background()) }()
			// A window to see Stop return too early; it must hold while
			// requests are in flight.
			select {
			case err := <-stopped:
				t.Fatalf("Stop returned (%v) with requests in flight", err)
			case <-time.After(100 * time.Millisecond):
			}
			close(release)
			if err := <-stopped; err != nil {
				t.Fatalf("Stop: %v", err)
			}
			for _, del := range deliveries(t, st, extA) {
				if del.State != callevents.DeliveryDelivered {
					t.Errorf("delivery %s is %s after a drained Stop", del.CallID, del.State)
				}
			}
		})
	})

	// At Stop's deadline, requests still held are interrupted and their
	// deliveries given back, the attempt not counted.
	t.Run("releases at the deadline", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			var interrupted atomic.Int32
			rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				<-r.Context().Done()
				interrupted.Add(1)
			})
			mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
			d := mustStart(t, testConfig(t, st))
			mustAccept(t, st, time.Now(), dial("c1"))
			mustAccept(t, st, time.Now(), dial("c2"))
			rc.WaitHits(t, 2)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if err := d.Stop(ctx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			dispatchertest.WaitFor(t, "the receiver to see the requests end", func() bool { return interrupted.Load() == 2 })
			ds := deliveries(t, st, extA)
			if len(ds) != 2 {
				t.Fatalf("%d deliveries", len(ds))
			}
			for _, del := range ds {
				if del.State != callevents.DeliveryPending || del.Attempts != 0 || len(del.History) != 0 {
					t.Errorf("delivery %s after Stop: state %s, %d attempts, history %v", del.CallID, del.State, del.Attempts, del.History)
				}
			}
		})
	})

	t.Run("before start and twice", func(t *testing.T) {
		t.Parallel()
		d, err := dispatcher.New(testConfig(t, sqliteStore(t)))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Stop(context.Background()); err != nil {
			t.Errorf("Stop before Start: %v", err)
		}
		if err := d.Start(context.Background()); err == nil {
			t.Errorf("Start after Stop succeeded")
		}
		d2 := mustStart(t, testConfig(t, sqliteStore(t)))
		if err := d2.Start(context.Background()); err == nil {
			t.Errorf("a second Start succeeded")
		}
		if err := d2.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

// A delivery claimed by a worker that died is sent once its lease expires.
func TestRescue(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		rc := dispatchertest.NewReceiver(t, nil)
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
		mustAccept(t, st, time.Now(), dial("c1"))
		claimed, err := st.ClaimDue(context.Background(), callevents.Claim{Worker: "dead-worker", N: 10, Now: time.Now(), Lease: 200 * time.Millisecond})
		if err != nil || len(claimed) != 1 {
			t.Fatalf("ClaimDue by the doomed worker: %d, %v", len(claimed), err)
		}
		mustStart(t, testConfig(t, st))
		d := waitDelivery(t, st, extA, "delivered", inState(callevents.DeliveryDelivered))
		hits := rc.Hits()
		if len(hits) != 1 || hits[0].Header.Get("webhook-id") != claimed[0].ID {
			t.Fatalf("receiver got %d requests", len(hits))
		}
		if got := hits[0].Header.Get("X-CallEvents-Attempt"); got != "2" {
			t.Errorf("X-CallEvents-Attempt %s after the dead worker's attempt, want 2", got)
		}
		// The dead worker's late report changes nothing.
		if err := st.RecordAttempts(context.Background(), "dead-worker", []callevents.AttemptOutcome{{
			DeliveryID: d.ID, Next: callevents.DeliveryFailed,
			Attempt: callevents.DeliveryAttempt{Attempt: 1, At: time.Now(), ErrorClass: "timeout"},
		}}); err != nil {
			t.Fatal(err)
		}
		if d := onlyDelivery(t, st, extA); d.State != callevents.DeliveryDelivered {
			t.Errorf("a lost lease's report moved the delivery to %s", d.State)
		}
	})
}

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// RecordAttempts is retried on a store error; when it keeps failing, the
// outcome is logged once, with what it would have recorded.
func TestRecordAttemptRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		failures  int
		wantState callevents.DeliveryState
	}{
		{"transient", 2, callevents.DeliveryDelivered},
		{"persistent", 1000, callevents.DeliveryRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, db testStore) {
				var calls atomic.Int32
				st := &faultyStore{testStore: db, RecordAttemptsFunc: func([]callevents.AttemptOutcome) error {
					if int(calls.Add(1)) <= tc.failures {
						return callevents.UpdateFailed(errors.New("database is locked"))
					}
					return nil
				}}
				rc := dispatchertest.NewReceiver(t, nil)
				mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
				var logs lockedBuffer
				cfg := testConfig(t, st)
				cfg.Logger = slogTo(&logs)
				d := mustStart(t, cfg)
				mustAccept(t, st, time.Now(), dial("c1"))
				if tc.failures < 100 {
					waitDelivery(t, st, extA, string(tc.wantState), inState(tc.wantState))
					if n := calls.Load(); n != int32(tc.failures)+1 {
						t.Errorf("RecordAttempts called %d times", n)
					}
					return
				}
				dispatchertest.WaitFor(t, "the failure to be logged", func() bool { return strings.Contains(logs.String(), "could not record an attempt") })
				if err := d.Stop(context.Background()); err != nil {
					t.Fatal(err)
				}
				if n := strings.Count(logs.String(), "could not record an attempt"); n != 1 {
					t.Errorf("logged %d times, want once:\n%s", n, logs.String())
				}
				for _, attr := range []string{"delivery_id=dlv_", "next_state=delivered", "status_code=200", "store_error="} {
					if !strings.Contains(logs.String(), attr) {
						t.Errorf("the log lacks %s:\n%s", attr, logs.String())
					}
				}
				if got := onlyDelivery(t, st, extA); got.State != tc.wantState {
					t.Errorf("state %s, want %s (left for the rescuer)", got.State, tc.wantState)
				}
			})
		})
	}
}

// Stop returns only after every goroutine of the dispatcher has ended.
// Not parallel: parallel tests wait until it is over, so every goroutine
// running in package dispatcher belongs to it.
func TestStopEndsGoroutines(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			rc := dispatchertest.NewReceiver(t, nil)
			mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
			cfg := testConfig(t, st)
			d, err := dispatcher.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"c1", "c2", "c3"} {
				mustAccept(t, st, time.Now(), dial(id))
			}
			d.Notify()
			rc.WaitHits(t, 3)
			if _, err := d.TestCallEvent(context.Background(), callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL}); err != nil {
				t.Fatal(err)
			}
			if goroutines("callevents/dispatcher.") == "" {
				t.Fatal("found no dispatcher goroutine while it runs: the check below would prove nothing")
			}
			if err := d.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if g := goroutines("callevents/dispatcher."); g != "" {
				t.Errorf("goroutines left after Stop:\n%s", g)
			}
			// The client's idle connections close too (their goroutines end
			// shortly after the connection does).
			dispatchertest.WaitFor(t, "idle connections to close", func() bool { return goroutines("net/http.(*persistConn)") == "" })
		})
	}
}

// goroutines returns the stacks of the goroutines with a frame containing s.
func goroutines(s string) string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, s) {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// Two dispatchers on one queue (two processes on one database) send every
// delivery exactly once.
func TestTwoDispatchersShareTheQueue(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		rc := dispatchertest.NewReceiver(t, nil)
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL + "/in"})
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extB, Type: callevents.DialOut, URL: rc.URL + "/out"})
		for _, worker := range []string{"one", "two"} {
			cfg := testConfig(t, st)
			cfg.WorkerID = worker
			cfg.BatchSize = 3
			mustStart(t, cfg)
		}
		const calls = 20
		for i := range calls {
			mustAccept(t, st, time.Now(), dial("call-"+strconv.Itoa(i)))
		}
		hits := rc.WaitHits(t, 2*calls)
		dispatchertest.WaitFor(t, "every delivery recorded", func() bool {
			a, _, _ := st.FindDeliveries(context.Background(), callevents.DeliveryFilter{Extension: extA, State: callevents.DeliveryDelivered})
			b, _, _ := st.FindDeliveries(context.Background(), callevents.DeliveryFilter{Extension: extB, State: callevents.DeliveryDelivered})
			return len(a)+len(b) == 2*calls
		})
		seen := map[string]int{}
		for _, h := range rc.Hits() {
			seen[h.Header.Get("webhook-id")]++
		}
		if len(hits) != 2*calls || len(seen) != 2*calls {
			t.Errorf("%d requests for %d distinct deliveries, want %d of each", len(rc.Hits()), len(seen), 2*calls)
		}
	})
}

// A resent failed delivery goes out again under the same webhook-id.
func TestResend(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) {
			if n == 1 {
				w.WriteHeader(http.StatusInternalServerError)
			}
		})
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
		cfg := testConfig(t, st)
		cfg.RetrySchedule = []time.Duration{} // a single attempt
		d := mustStart(t, cfg)
		mustAccept(t, st, time.Now(), dial("c1"))
		failed := waitDelivery(t, st, extA, "failed", inState(callevents.DeliveryFailed))
		if _, err := st.ResendDelivery(context.Background(), extA, failed.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		d.Notify()
		got := waitDelivery(t, st, extA, "delivered", inState(callevents.DeliveryDelivered))
		hits := rc.Hits()
		if len(hits) != 2 || hits[1].Header.Get("webhook-id") != failed.ID || hits[1].Header.Get("X-CallEvents-Attempt") != "2" {
			t.Errorf("resend: %d requests, second with id %q attempt %q", len(hits), hits[len(hits)-1].Header.Get("webhook-id"), hits[len(hits)-1].Header.Get("X-CallEvents-Attempt"))
		}
		if len(got.History) != 2 {
			t.Errorf("history after resend: %+v", got.History)
		}
	})
}

// stallingClaims claims for real, then holds the claim until released.
type stallingClaims struct {
	testStore
	armed   atomic.Bool
	held    chan struct{} // closed when a claim is held
	proceed chan struct{}
}

func (s *stallingClaims) ClaimDue(ctx context.Context, c callevents.Claim) ([]callevents.Delivery, error) {
	ds, err := s.testStore.ClaimDue(ctx, c)
	if len(ds) > 0 && s.armed.CompareAndSwap(true, false) {
		close(s.held)
		<-s.proceed
	}
	return ds, err
}

// Deliveries claimed while Stop begins are given back unsent.
func TestStopReleasesUnstartedClaims(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		rc := dispatchertest.NewReceiver(t, nil)
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
		stalling := &stallingClaims{testStore: st, held: make(chan struct{}), proceed: make(chan struct{})}
		stalling.armed.Store(true)
		var logs lockedBuffer
		cfg := testConfig(t, stalling)
		cfg.Logger = slogTo(io.MultiWriter(&logs, tWriter{t}))
		d := mustStart(t, cfg)
		mustAccept(t, st, time.Now(), dial("c1"))
		d.Notify()
		<-stalling.held
		if got := onlyDelivery(t, st, extA); got.State != callevents.DeliveryRunning {
			t.Fatalf("claimed delivery is %s", got.State)
		}
		stopped := make(chan error, 1)
		go func() { stopped <- d.Stop(context.Background()) }()
		dispatchertest.WaitFor(t, "Stop to begin", func() bool { return strings.Contains(logs.String(), "dispatcher: stopping") })
		close(stalling.proceed)
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		got := onlyDelivery(t, st, extA)
		if got.State != callevents.DeliveryPending || got.Attempts != 0 || len(rc.Hits()) != 0 {
			t.Errorf("after Stop: state %s, %d attempts, %d requests", got.State, got.Attempts, len(rc.Hits()))
		}
	})
}
