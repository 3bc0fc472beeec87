package main

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/testdb"
)

// Ensure a stop signal drains `dispatch`: a request in flight when the
// signal comes finishes and is recorded delivered, not aborted and queued
// again (which would send it twice).
func TestDispatchDrainsOnSignal(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.DSN(t, store.DialectSQLite)
	db := testdb.MustOpenDSN(t, dsn, store.Options{})
	arrived, release := make(chan struct{}), make(chan struct{})
	rcv := dispatchertest.NewReceiver(t, func(_ http.ResponseWriter, _ *http.Request, n int) {
		if n == 1 {
			close(arrived)
		}
		<-release
	})
	svc := &callevents.CallEventService{Store: db}
	url := rcv.URL + "/in"
	if _, err := svc.AddCallEvent(ctx, callevents.Principal{Scope: callevents.ScopeAdmin}, "0003*210", callevents.DialIn,
		callevents.CallEventUpdate{URL: &url}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.AcceptActivity(ctx, []callevents.CallActivity{{CallID: "c1", Phase: callevents.PhaseDial, CalledExtension: "0003*210"}}, time.Now(), nil); err != nil || n.Queued != 1 {
		t.Fatalf("queued %+v: %v", n, err)
	}

	runCtx, signal := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"dispatch", "--db", dsn, "--allow-targets", "127.0.0.0/8"}, io.Discard, io.Discard)
	}()
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the delivery never reached the receiver")
	}
	signal() // SIGTERM while the request is in flight
	// The receiver answers only after the signal: a drained request still
	// gets its answer and is recorded.
	close(release)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("dispatch exited %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dispatch did not stop within 30 s of the signal")
	}
	items, _, err := db.FindDeliveries(ctx, callevents.DeliveryFilter{Extension: "0003*210"})
	if err != nil || len(items) != 1 {
		t.Fatalf("deliveries %v %v", items, err)
	}
	if d, hits := items[0], len(rcv.Hits()); d.State != callevents.DeliveryDelivered || d.Attempts != 1 || hits != 1 {
		t.Errorf("after the signal: state %s, attempts %d, requests %d; want delivered, 1, 1", d.State, d.Attempts, hits)
	}
}
