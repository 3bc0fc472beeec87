package dispatcher_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	p := dispatcher.Config{}.WithDefaults().RetryPolicy()
	if p.MaxAttempts() != 9 {
		t.Fatalf("MaxAttempts() = %d, want 9", p.MaxAttempts())
	}
	for _, tc := range []struct {
		attempts int
		want     time.Duration // 0: no attempt left
	}{
		{1, 5 * time.Second},
		{2, 30 * time.Second},
		{3, 2 * time.Minute},
		{4, 10 * time.Minute},
		{5, 30 * time.Minute},
		{6, time.Hour},
		{7, 2 * time.Hour},
		{8, 4 * time.Hour},
		{9, 0},
		{10, 0},
	} {
		lo, hi := time.Duration(float64(tc.want)*0.8), time.Duration(float64(tc.want)*1.2)
		var seenLow, seenHigh bool
		for range 2000 {
			got, ok := p.Delay(tc.attempts)
			if ok != (tc.want != 0) {
				t.Fatalf("Delay(%d) ok = %v, want %v", tc.attempts, ok, tc.want != 0)
			}
			if !ok {
				break
			}
			if got < lo || got > hi {
				t.Fatalf("Delay(%d) = %s, outside [%s, %s]", tc.attempts, got, lo, hi)
			}
			seenLow = seenLow || got < tc.want*9/10
			seenHigh = seenHigh || got > tc.want*11/10
		}
		if tc.want != 0 && !(seenLow && seenHigh) {
			t.Errorf("Delay(%d) is not spread over ±20%% (low %v, high %v)", tc.attempts, seenLow, seenHigh)
		}
	}

	exact := dispatcher.Config{Jitter: -1, RetrySchedule: []time.Duration{time.Second}}.WithDefaults().RetryPolicy()
	if got, ok := exact.Delay(1); !ok || got != time.Second {
		t.Errorf("without jitter Delay(1) = %s, %v", got, ok)
	}
	single := dispatcher.Config{RetrySchedule: []time.Duration{}}.WithDefaults().RetryPolicy()
	if _, ok := single.Delay(1); ok || single.MaxAttempts() != 1 {
		t.Errorf("an empty schedule must mean one attempt")
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	for name, cfg := range map[string]dispatcher.Config{
		"no store":             {},
		"lease below timeout":  {Store: st, Timeout: time.Minute, Lease: 30 * time.Second},
		"lease equal timeout":  {Store: st, Timeout: time.Minute, Lease: time.Minute},
		"negative interval":    {Store: st, PollInterval: -time.Second},
		"zero retry delay":     {Store: st, RetrySchedule: []time.Duration{0}},
		"jitter above one":     {Store: st, Jitter: 1.5},
		"negative concurrency": {Store: st, Concurrency: -1},
	} {
		if _, err := dispatcher.New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	d, err := dispatcher.New(dispatcher.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	got := d.Config()
	if got.Concurrency != 128 || got.BatchSize != 128 || got.Timeout != 10*time.Second || got.Lease != time.Minute ||
		got.UserAgent != "callevents/dev" || got.WorkerID == "" || got.Policy == nil || got.Retention != 7*24*time.Hour {
		t.Errorf("defaults not applied: %+v", got)
	}
}

// outcomeSetup queues one Dial-In delivery to a receiver answering with
// handle, and starts a dispatcher on a settable clock, without jitter.
func outcomeSetup(t *testing.T, st testStore, schedule []time.Duration, handle func(http.ResponseWriter, *http.Request, int)) (*dispatchertest.Receiver, callevents.CallEvent, *dispatchertest.Clock) {
	return outcomeSetupClock(t, st, dispatchertest.NewClock(), schedule, handle)
}

func outcomeSetupClock(t *testing.T, st testStore, clk *dispatchertest.Clock, schedule []time.Duration, handle func(http.ResponseWriter, *http.Request, int)) (*dispatchertest.Receiver, callevents.CallEvent, *dispatchertest.Clock) {
	rc := dispatchertest.NewReceiver(t, handle)
	c := mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL + "/hook"})
	cfg := testConfig(t, st)
	cfg.Now = clk.Now
	cfg.Jitter = -1
	cfg.RetrySchedule = schedule
	mustStart(t, cfg)
	mustAccept(t, st, clk.Now(), dial("call-1"))
	return rc, c, clk
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	hour := []time.Duration{time.Hour}

	t.Run("2xx delivered", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			rc, _, _ := outcomeSetup(t, st, hour, dispatchertest.Status(http.StatusNoContent))
			d := waitDelivery(t, st, extA, "delivered", inState(callevents.DeliveryDelivered))
			if len(rc.Hits()) != 1 || d.LastStatus != 204 || d.LastError != "" || len(d.History) != 1 {
				t.Errorf("delivery %+v after %d requests", d, len(rc.Hits()))
			}
		})
	})

	t.Run("3xx not followed", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			target := dispatchertest.NewReceiver(t, nil)
			_, _, clk := outcomeSetup(t, st, hour, func(w http.ResponseWriter, r *http.Request, _ int) {
				http.Redirect(w, r, target.URL+"/elsewhere", http.StatusFound)
			})
			d := waitDelivery(t, st, extA, "a failed attempt", retrying(1))
			if d.State != callevents.DeliveryPending || d.LastStatus != 302 || d.LastError != "redirect" {
				t.Errorf("after a redirect: state %s, status %d, class %q", d.State, d.LastStatus, d.LastError)
			}
			if want := clk.Now().Add(time.Hour); !d.NextAttemptAt.Equal(want) {
				t.Errorf("next attempt at %s, want %s", d.NextAttemptAt, want)
			}
			if n := len(target.Hits()); n != 0 {
				t.Errorf("the redirect target got %d requests", n)
			}
		})
	})

	t.Run("410 cancels and disables", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			_, c, _ := outcomeSetup(t, st, hour, dispatchertest.Status(http.StatusGone))
			d := waitDelivery(t, st, extA, "cancelled", inState(callevents.DeliveryCancelled))
			if d.LastStatus != 410 || len(d.History) != 1 {
				t.Errorf("cancelled delivery %+v", d)
			}
			typ := c.Type
			got, _, err := st.FindCallEvents(context.Background(), callevents.CallEventFilter{Extension: extA, Type: &typ, ID: &c.ID})
			if err != nil || len(got) != 1 || got[0].Status != callevents.StatusDisabled {
				t.Errorf("Call Event after 410: %+v, %v", got, err)
			}
		})
	})

	t.Run("500 retried then failed", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			schedule := []time.Duration{time.Minute, 2 * time.Minute}
			rc, _, clk := outcomeSetup(t, st, schedule, dispatchertest.Status(http.StatusInternalServerError))
			for attempt, delay := range schedule {
				d := waitDelivery(t, st, extA, "a failed attempt", retrying(attempt+1))
				if d.State != callevents.DeliveryPending || d.LastError != "http_status" || d.LastStatus != 500 {
					t.Fatalf("after attempt %d: %+v", attempt+1, d)
				}
				if want := clk.Now().Add(delay); !d.NextAttemptAt.Equal(want) {
					t.Fatalf("after attempt %d: next at %s, want %s", attempt+1, d.NextAttemptAt, want)
				}
				clk.Advance(delay)
			}
			d := waitDelivery(t, st, extA, "failed", inState(callevents.DeliveryFailed))
			if d.Attempts != 3 || len(d.History) != 3 || len(rc.Hits()) != 3 {
				t.Errorf("failed after %d attempts, %d history entries, %d requests; want 3", d.Attempts, len(d.History), len(rc.Hits()))
			}
		})
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			rc := dispatchertest.NewReceiver(t, func(_ http.ResponseWriter, r *http.Request, _ int) { <-r.Context().Done() })
			mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
			cfg := testConfig(t, st)
			cfg.Timeout = 100 * time.Millisecond
			cfg.RetrySchedule = []time.Duration{time.Hour}
			mustStart(t, cfg)
			mustAccept(t, st, time.Now(), dial("call-1"))
			d := waitDelivery(t, st, extA, "a failed attempt", retrying(1))
			if d.State != callevents.DeliveryPending || d.LastError != "timeout" || d.LastStatus != 0 {
				t.Errorf("after a timeout: state %s, status %d, class %q", d.State, d.LastStatus, d.LastError)
			}
			if l := d.History[0].Latency; l < 100*time.Millisecond || l > 5*time.Second {
				t.Errorf("latency of a timed-out attempt: %s", l)
			}
		})
	})

	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			rc := dispatchertest.NewReceiver(t, nil)
			url := rc.URL
			rc.Close() // nothing listens there any more
			mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: url})
			cfg := testConfig(t, st)
			cfg.RetrySchedule = []time.Duration{time.Hour}
			mustStart(t, cfg)
			mustAccept(t, st, time.Now(), dial("call-1"))
			d := waitDelivery(t, st, extA, "a failed attempt", retrying(1))
			if d.State != callevents.DeliveryPending || d.LastError != "connect" {
				t.Errorf("after a refused connection: state %s, class %q", d.State, d.LastError)
			}
		})
	})
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		code       int
		retryAfter func(now time.Time) string
		schedule   time.Duration
		want       time.Duration
	}{
		{"429 seconds", 429, func(time.Time) string { return "120" }, 5 * time.Second, 2 * time.Minute},
		{"503 HTTP date", 503, func(now time.Time) string { return now.Add(30 * time.Minute).Format(http.TimeFormat) }, 5 * time.Second, 30 * time.Minute},
		{"429 above the cap", 429, func(time.Time) string { return "18000" }, 5 * time.Second, time.Hour},
		{"503 below the schedule", 503, func(time.Time) string { return "1" }, 10 * time.Minute, 10 * time.Minute},
		{"503 date in the past", 503, func(now time.Time) string { return now.Add(-time.Hour).Format(http.TimeFormat) }, 5 * time.Second, 5 * time.Second},
		{"429 malformed", 429, func(time.Time) string { return "soon" }, 5 * time.Second, 5 * time.Second},
		{"500 ignores it", 500, func(time.Time) string { return "600" }, 5 * time.Second, 5 * time.Second},
		{"schedule above the cap wins", 429, func(time.Time) string { return "60" }, 2 * time.Hour, 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, st testStore) {
				clk := dispatchertest.NewClock()
				outcomeSetupClock(t, st, clk, []time.Duration{tc.schedule}, func(w http.ResponseWriter, _ *http.Request, _ int) {
					w.Header().Set("Retry-After", tc.retryAfter(clk.Now()))
					w.WriteHeader(tc.code)
				})
				d := waitDelivery(t, st, extA, "a failed attempt", retrying(1))
				if d.State != callevents.DeliveryPending || d.LastStatus != tc.code {
					t.Fatalf("state %s, status %d", d.State, d.LastStatus)
				}
				if want := clk.Now().Add(tc.want); !d.NextAttemptAt.Equal(want) {
					t.Errorf("next attempt at %s (+%s), want +%s", d.NextAttemptAt, d.NextAttemptAt.Sub(clk.Now()), tc.want)
				}
			})
		})
	}
}

// A Call Event disabled or deleted while its deliveries wait: they are
// cancelled, never sent.
func TestDisabledOrDeletedCallEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(st testStore, c callevents.CallEvent) error
	}{
		{"disabled", func(st testStore, c callevents.CallEvent) error {
			off := callevents.StatusDisabled
			_, err := st.UpdateCallEvent(context.Background(), c.Extension, c.Type, c.ID, callevents.CallEventUpdate{Status: &off}, time.Now())
			return err
		}},
		{"deleted", func(st testStore, c callevents.CallEvent) error {
			_, err := st.DeleteCallEvents(context.Background(), callevents.CallEventFilter{Extension: c.Extension, ID: &c.ID})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, st testStore) {
				rc := dispatchertest.NewReceiver(t, nil)
				c := mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
				other := mustAddCallEvent(t, st, callevents.CallEvent{Extension: extB, Type: callevents.DialOut, URL: rc.URL + "/other"})
				mustAccept(t, st, time.Now(), dial("call-1"))
				if err := tc.change(st, c); err != nil {
					t.Fatal(err)
				}
				mustStart(t, testConfig(t, st))
				waitDelivery(t, st, other.Extension, "the other Call Event's delivery", inState(callevents.DeliveryDelivered))
				waitDelivery(t, st, extA, "cancelled", inState(callevents.DeliveryCancelled))
				for _, h := range rc.Hits() {
					if h.Path != "/other" {
						t.Errorf("a %s Call Event got a request", tc.name)
					}
				}
			})
		})
	}
}
