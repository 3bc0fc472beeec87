package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// receiver is the Call Event's webhook receiver, on loopback: it notes
// when each bench delivery arrived, by CallID. It answers 200 at once, so
// what the bench measures is the service, not the receiver. It is not
// dispatchertest.Receiver, which keeps every request: the ceiling phase
// posts here as fast as a client can, and keeping those requests would
// lower the ceiling it measures and grow without bound.
type receiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	arrived map[string]time.Time // CallID → when it arrived
	count   atomic.Int64
	signal  chan struct{} // a send after each arrival, dropped when full
}

// newReceiver starts a receiver; close stops it.
func newReceiver() *receiver {
	r := &receiver{arrived: map[string]time.Time{}, signal: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		now := time.Now()
		if err := req.ParseForm(); err != nil {
			return
		}
		// The ceiling phase posts here too, but is no delivery.
		if id := req.PostForm.Get("CallID"); id != "" && !strings.HasPrefix(id, ceilingPrefix) {
			r.mu.Lock()
			r.arrived[id] = now
			r.mu.Unlock()
			r.count.Add(1)
			select {
			case r.signal <- struct{}{}:
			default:
			}
		}
	}))
	return r
}

// url is the receiver's webhook URL.
func (r *receiver) url() string { return r.srv.URL + "/hook" }

func (r *receiver) close() { r.srv.Close() }

// arrivedAt is when the delivery of callID arrived.
func (r *receiver) arrivedAt(callID string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.arrived[callID]
	return at, ok
}

// waitCount waits until n bench deliveries have arrived in all.
func (r *receiver) waitCount(ctx context.Context, n int64, timeout time.Duration) error {
	deadline := time.After(timeout)
	for r.count.Load() < n {
		select {
		case <-r.signal:
		case <-deadline:
			return fmt.Errorf("only %d of %d deliveries arrived within %v", r.count.Load(), n, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
