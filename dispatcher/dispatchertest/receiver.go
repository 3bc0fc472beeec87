package dispatchertest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Hit is one request a Receiver got.
type Hit struct {
	Method   string
	Path     string
	RawQuery string
	Body     string
	Header   http.Header
	At       time.Time // when it arrived
}

// Handler answers the n-th request (1-based) a Receiver got, after it is
// recorded; the request's body can be read again. Writing nothing answers
// 200.
type Handler func(w http.ResponseWriter, r *http.Request, n int)

// Status answers every request with code.
func Status(code int) Handler {
	return func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(code) }
}

// Receiver is an HTTP server on 127.0.0.1 that records every request, then
// lets its Handler answer it.
type Receiver struct {
	*httptest.Server
	handle Handler

	mu      sync.Mutex
	hits    []Hit
	changed chan struct{} // closed and replaced on every hit
}

// NewReceiver starts a Receiver answering with handle (200 when nil) and
// closes it when the test ends.
func NewReceiver(tb TB, handle Handler) *Receiver {
	rc := StartReceiver(handle)
	tb.Cleanup(rc.Close)
	return rc
}

// StartReceiver starts a Receiver outside a test; Close stops it.
func StartReceiver(handle Handler) *Receiver {
	rc := &Receiver{handle: handle, changed: make(chan struct{})}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	return rc
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h := Hit{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Body: string(body), Header: r.Header.Clone(), At: time.Now()}
	rc.mu.Lock()
	rc.hits = append(rc.hits, h)
	n := len(rc.hits)
	close(rc.changed)
	rc.changed = make(chan struct{})
	rc.mu.Unlock()
	if rc.handle != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		rc.handle(w, r, n)
	}
}

// Hits returns the requests received so far, oldest first.
func (rc *Receiver) Hits() []Hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Hit(nil), rc.hits...)
}

// WaitHits waits until at least n requests have arrived, failing the test
// after WaitTimeout, and returns them all.
func (rc *Receiver) WaitHits(tb TB, n int) []Hit {
	tb.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		rc.mu.Lock()
		got, changed := len(rc.hits), rc.changed
		rc.mu.Unlock()
		if got >= n {
			return rc.Hits()
		}
		select {
		case <-changed:
		case <-deadline.C:
			tb.Fatalf("timed out after %v waiting for %d requests at the receiver (got %d)", WaitTimeout, n, got)
		}
	}
}
