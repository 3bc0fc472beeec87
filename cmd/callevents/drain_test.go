package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/store"
)

// Ensure a stop signal drains `dispatch`: a request in flight when the
// signal comes finishes and is recorded delivered, not aborted and queued
// again (which would send it twice).
func TestDispatchDrainsOnSignal(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "drain.db")
	db, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	arrived, release := make(chan struct{}), make(chan struct{})
	var hits atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if hits.Add(1) == 1 {
			close(arrived)
		}
		<-release
	}))
	defer rcv.Close()
	svc := &callevents.CallEventService{Store: db}
	url := rcv.URL + "/in"
	if _, err := svc.AddCallEvent(ctx, callevents.Principal{Scope: callevents.ScopeAdmin}, "0003*210", callevents.DialIn,
		callevents.CallEventUpdate{URL: &url}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.AcceptActivity(ctx, []callevents.CallActivity{{CallID: "c1", Phase: callevents.PhaseDial, CalledExtension: "0003*210"}}, time.Now()); err != nil || n.Queued != 1 {
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
	if d := items[0]; d.State != callevents.DeliveryDelivered || d.Attempts != 1 || hits.Load() != 1 {
		t.Errorf("after the signal: state %s, attempts %d, requests %d; want delivered, 1, 1", d.State, d.Attempts, hits.Load())
	}
}
