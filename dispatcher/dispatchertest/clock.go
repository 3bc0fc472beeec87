package dispatchertest

import (
	"sync"
	"time"
)

// Clock is a settable clock for dispatcher.Config.Now: it stands still
// until Advance moves it. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock at the current time in UTC, truncated to the
// second so that every store keeps the times derived from it exactly.
func NewClock() *Clock { return NewClockAt(time.Now().UTC().Truncate(time.Second)) }

// NewClockAt returns a Clock at t, for a test whose times are written out.
func NewClockAt(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
