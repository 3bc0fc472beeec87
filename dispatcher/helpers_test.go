package dispatcher_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

const (
	extA = callevents.Extension("0003*210")
	extB = callevents.Extension("0003*211")
)

// testSecret is a Call Event secret with characters that need no escaping
// but are not base64 either.
const testSecret = "s3cret-Of-twenty+chars!"

// testLogger logs to t, so that a failing test shows what the dispatcher said.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// allowLoopback is the policy of every test that sends to an httptest
// server, which listens on 127.0.0.1.
func allowLoopback(t testing.TB) *dispatcher.OutboundPolicy {
	t.Helper()
	p, err := dispatcher.ParseAllowTargets("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testConfig returns a config for st that polls often and reaches loopback.
func testConfig(t testing.TB, st callevents.DeliveryStore) dispatcher.Config {
	return dispatcher.Config{
		Store:          st,
		Logger:         testLogger(t),
		PollInterval:   10 * time.Millisecond,
		Timeout:        5 * time.Second,
		Lease:          30 * time.Second,
		RescueInterval: 50 * time.Millisecond,
		Policy:         allowLoopback(t),
		UserAgent:      "callevents/test",
	}
}

// mustStart starts a dispatcher for cfg and stops it when the test ends.
func mustStart(t testing.TB, cfg dispatcher.Config) *dispatcher.Dispatcher {
	t.Helper()
	d, err := dispatcher.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return d
}

// mustAddCallEvent stores c, enabled unless disabled is set.
func mustAddCallEvent(t testing.TB, st testStore, c callevents.CallEvent) callevents.CallEvent {
	t.Helper()
	if c.ID == "" {
		c.ID = callevents.NewCallEventID()
	}
	if c.Status == callevents.StatusDisabled {
		c.Status = callevents.StatusEnabled
	}
	c.Modified = time.Now().UTC().Truncate(time.Second)
	if err := c.Validate(); err != nil {
		t.Fatalf("invalid test Call Event: %v", err)
	}
	if err := st.CreateCallEvent(context.Background(), c, 100); err != nil {
		t.Fatalf("CreateCallEvent: %v", err)
	}
	return c
}

// mustAccept queues activities and returns how many deliveries were queued.
func mustAccept(t testing.TB, st testStore, now time.Time, activities ...callevents.CallActivity) int {
	t.Helper()
	for i := range activities {
		if activities[i].Time.IsZero() {
			activities[i].Time = now
		}
	}
	res, err := st.AcceptActivity(context.Background(), activities, now, nil)
	if err != nil {
		t.Fatalf("AcceptActivity: %v", err)
	}
	return res.Queued
}

// dial is a call from extB to extA, with values that need escaping.
func dial(callID string) callevents.CallActivity {
	return callevents.CallActivity{
		CallID: callID, Phase: callevents.PhaseDial,
		CallerExtension: string(extB), CallerIDNum: "+40 721 000 111", CallerIDName: "Ana Popescu & Co",
		CalledNumber: "210", CalledExtension: string(extA), CalledDID: "0213100200", CallAPIID: "api-7",
	}
}

func hangup(callID string) callevents.CallActivity {
	a := dial(callID)
	a.Phase, a.Status = callevents.PhaseHangup, "ANSWER"
	return a
}

// deliveries returns the deliveries of ext, newest first.
func deliveries(t testing.TB, st testStore, ext callevents.Extension) []callevents.Delivery {
	t.Helper()
	ds, _, err := st.FindDeliveries(context.Background(), callevents.DeliveryFilter{Extension: ext})
	if err != nil {
		t.Fatalf("FindDeliveries: %v", err)
	}
	return ds
}

// onlyDelivery returns the single delivery of ext.
func onlyDelivery(t testing.TB, st testStore, ext callevents.Extension) callevents.Delivery {
	t.Helper()
	ds := deliveries(t, st, ext)
	if len(ds) != 1 {
		t.Fatalf("got %d deliveries of %s, want 1", len(ds), ext)
	}
	return ds[0]
}

// waitDelivery waits until the single delivery of ext satisfies cond.
func waitDelivery(t testing.TB, st testStore, ext callevents.Extension, what string, cond func(callevents.Delivery) bool) callevents.Delivery {
	t.Helper()
	var d callevents.Delivery
	dispatchertest.WaitFor(t, what, func() bool {
		d = onlyDelivery(t, st, ext)
		return cond(d)
	})
	return d
}

func inState(s callevents.DeliveryState) func(callevents.Delivery) bool {
	return func(d callevents.Delivery) bool { return d.State == s }
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// retrying reports a delivery pending again after its n-th attempt.
func retrying(n int) func(callevents.Delivery) bool {
	return func(d callevents.Delivery) bool {
		return d.State == callevents.DeliveryPending && d.Attempts == n && len(d.History) == n
	}
}
