package dispatcher_test

import (
	"context"
	"errors"
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

// oversized answers 200 with headers larger than MaxResponseHeader.
func oversized(w http.ResponseWriter, _ *http.Request, _ int) {
	w.Header().Set("X-Padding", strings.Repeat("p", dispatcher.MaxResponseHeader))
}

// A receiver's answer is read only up to MaxResponseHeader of headers: a
// larger one is a failed attempt of class response_too_large, with no
// status, retried like any other failure and counted by the breaker.
func TestResponseHeadersBounded(t *testing.T) {
	t.Parallel()

	t.Run("delivery", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			rc := dispatchertest.NewReceiver(t, oversized)
			mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
			obs := &breakerLog{}
			cfg := testConfig(t, st)
			cfg.Observer = obs
			cfg.BreakerFailures = 1
			cfg.RetrySchedule = []time.Duration{time.Hour}
			mustStart(t, cfg)
			mustAccept(t, st, time.Now(), dial("call-1"))
			d := waitDelivery(t, st, extA, "a failed attempt", retrying(1))
			if d.State != callevents.DeliveryPending || d.LastError != "response_too_large" || d.LastStatus != 0 {
				t.Errorf("after an oversized answer: state %s, status %d, class %q", d.State, d.LastStatus, d.LastError)
			}
			if a := d.History[0]; a.StatusCode != 0 || a.ErrorClass != "response_too_large" {
				t.Errorf("attempt recorded as %+v", a)
			}
			dispatchertest.WaitFor(t, "the breaker to open on the oversized answer", func() bool { return obs.seen(callevents.BreakerOpen) >= 1 })
		})
	})

	// Headers a little under the bound are read as usual: the bound is
	// MaxResponseHeader, not less.
	t.Run("under the bound", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("X-Padding", strings.Repeat("p", dispatcher.MaxResponseHeader-1024))
			})
			mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
			mustStart(t, testConfig(t, st))
			mustAccept(t, st, time.Now(), dial("call-1"))
			if d := waitDelivery(t, st, extA, "delivered", inState(callevents.DeliveryDelivered)); d.LastStatus != 200 {
				t.Errorf("status %d", d.LastStatus)
			}
		})
	})

	t.Run("test event", func(t *testing.T) {
		t.Parallel()
		rc := dispatchertest.NewReceiver(t, oversized)
		d, err := dispatcher.New(testConfig(t, sqliteStore(t)))
		if err != nil {
			t.Fatal(err)
		}
		c := callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL}
		if res, err := d.TestCallEvent(context.Background(), c); err != nil || res.StatusCode != 0 || res.ErrorClass != "response_too_large" {
			t.Errorf("TestCallEvent of an oversized answer = %+v, %v", res, err)
		}
	})
}

// inFlight is a receiver handler that hangs until release is closed (or
// the request ends), counting the requests it holds at once.
type inFlight struct {
	release chan struct{}
	now     atomic.Int32
	max     atomic.Int32
}

func (f *inFlight) handle(_ http.ResponseWriter, r *http.Request, _ int) {
	n := f.now.Add(1)
	defer f.now.Add(-1)
	for {
		m := f.max.Load()
		if n <= m || f.max.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-f.release:
	case <-r.Context().Done():
	}
}

// orgExtension is an extension of organization n (0 to 9999).
func orgExtension(n int) callevents.Extension {
	return callevents.Extension(fmt.Sprintf("%04d*210", n))
}

// A flood of TestCallEvent calls of many organizations against a receiver
// that hangs has at most MaxConcurrentTests requests in flight at it; the
// others wait their turn (or, having waited too long, are refused with
// 151), and none fails.
func TestTestCallEventBounded(t *testing.T) {
	t.Parallel()
	f := &inFlight{release: make(chan struct{})}
	rc := dispatchertest.NewReceiver(t, f.handle)
	var once sync.Once
	release := func() { once.Do(func() { close(f.release) }) }
	t.Cleanup(release)
	d, err := dispatcher.New(testConfig(t, sqliteStore(t)))
	if err != nil {
		t.Fatal(err)
	}

	const calls = 20
	var wg sync.WaitGroup
	var answered, refused atomic.Int32
	for i := range calls {
		wg.Go(func() {
			c := callevents.CallEvent{Extension: orgExtension(i), Type: callevents.DialIn, URL: rc.URL}
			res, err := d.TestCallEvent(context.Background(), c)
			switch {
			case err == nil && res.StatusCode == 200:
				answered.Add(1)
			case callevents.ErrorCode(err, 0) == callevents.CodeRetrieveFailed:
				refused.Add(1)
			default:
				t.Errorf("TestCallEvent = %+v, %v", res, err)
			}
		})
	}
	dispatchertest.WaitFor(t, "the receiver to hold MaxConcurrentTests requests", func() bool {
		return f.now.Load() >= dispatcher.MaxConcurrentTests
	})
	release()
	wg.Wait()
	if n := f.max.Load(); n > dispatcher.MaxConcurrentTests {
		t.Errorf("%d test requests in flight at once, want at most %d", n, dispatcher.MaxConcurrentTests)
	}
	if got := answered.Load() + refused.Load(); got != calls {
		t.Errorf("%d answered and %d refused of %d calls", answered.Load(), refused.Load(), calls)
	}
	if n := int32(len(rc.Hits())); n != answered.Load() {
		t.Errorf("the receiver got %d requests for %d answers", n, answered.Load())
	}
	t.Logf("%d answered, %d refused", answered.Load(), refused.Load())
}

// One organization flooding tests of a receiver that hangs holds at most
// MaxConcurrentTestsPerOrganization slots: its further tests wait and are
// refused, while another organization's test of a healthy receiver is
// answered at once.
func TestTestCallEventPerOrganization(t *testing.T) {
	t.Parallel()
	f := &inFlight{release: make(chan struct{})}
	hanging := dispatchertest.NewReceiver(t, f.handle)
	healthy := dispatchertest.NewReceiver(t, nil)
	var flood sync.WaitGroup
	// Cleanups run last first: the receiver lets the flood go, it ends,
	// then the receivers close.
	t.Cleanup(flood.Wait)
	t.Cleanup(func() { close(f.release) })
	d, err := dispatcher.New(testConfig(t, sqliteStore(t)))
	if err != nil {
		t.Fatal(err)
	}
	hostile := callevents.CallEvent{Extension: orgExtension(3), Type: callevents.DialIn, URL: hanging.URL}
	var refused atomic.Int32
	for range 3 * dispatcher.MaxConcurrentTests {
		flood.Go(func() {
			if _, err := d.TestCallEvent(context.Background(), hostile); callevents.ErrorCode(err, 0) == callevents.CodeRetrieveFailed {
				refused.Add(1)
			}
		})
	}
	dispatchertest.WaitFor(t, "the hostile organization's tests to hold their slots", func() bool {
		return f.now.Load() == dispatcher.MaxConcurrentTestsPerOrganization
	})
	res, err := d.TestCallEvent(context.Background(), callevents.CallEvent{Extension: orgExtension(4), Type: callevents.DialIn, URL: healthy.URL})
	if err != nil || res.StatusCode != 200 {
		t.Errorf("another organization's test during the flood: %+v, %v; want 200", res, err)
	}
	dispatchertest.WaitFor(t, "the hostile organization's waiting tests to be refused", func() bool {
		return refused.Load() == 3*dispatcher.MaxConcurrentTests-dispatcher.MaxConcurrentTestsPerOrganization
	})
	if n := f.max.Load(); n != dispatcher.MaxConcurrentTestsPerOrganization {
		t.Errorf("the hostile organization had %d tests in flight at once, want %d", n, dispatcher.MaxConcurrentTestsPerOrganization)
	}
}

// With every slot taken, a test waits for one until its context ends (then
// returns the context's error) or for at most a second (then code 151, a
// message to try again): either way the receiver never sees it.
func TestTestCallEventBusy(t *testing.T) {
	t.Parallel()
	f := &inFlight{release: make(chan struct{})}
	rc := dispatchertest.NewReceiver(t, f.handle)
	d, err := dispatcher.New(testConfig(t, sqliteStore(t)))
	if err != nil {
		t.Fatal(err)
	}
	c := callevents.CallEvent{Extension: orgExtension(100), Type: callevents.DialIn, URL: rc.URL}
	var holders sync.WaitGroup
	// Cleanups run last first: the receiver lets the holders go, they
	// end, then the receiver closes.
	t.Cleanup(holders.Wait)
	t.Cleanup(func() { close(f.release) })
	for i := range dispatcher.MaxConcurrentTests {
		holder := c
		holder.Extension = orgExtension(i / dispatcher.MaxConcurrentTestsPerOrganization)
		holders.Go(func() { d.TestCallEvent(context.Background(), holder) })
	}
	dispatchertest.WaitFor(t, "every test slot taken", func() bool { return f.now.Load() == dispatcher.MaxConcurrentTests })

	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if _, err := d.TestCallEvent(short, c); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("TestCallEvent whose context ends while it waits: %v, want the context's error", err)
	}

	start := time.Now()
	_, err = d.TestCallEvent(context.Background(), c)
	if code := callevents.ErrorCode(err, 0); code != callevents.CodeRetrieveFailed || !strings.Contains(callevents.ErrorMessage(err), "Try again") {
		t.Errorf("TestCallEvent with every slot taken: %v, want code 151 saying to try again", err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond || waited > 4*time.Second {
		t.Errorf("refused after %s, want about a second", waited)
	}
	if n := len(rc.Hits()); n != dispatcher.MaxConcurrentTests {
		t.Errorf("the receiver got %d requests, want %d", n, dispatcher.MaxConcurrentTests)
	}
}
