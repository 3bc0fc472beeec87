package callevents

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Observer is what operators measure. Each component that takes one calls it
// where the event already happens; a nil Observer means NopObserver.
// Implementations must be safe for concurrent use and cheap: they are called
// on the request and delivery paths.
type Observer interface {
	// ActivityAccepted: an intake request was accepted with activities
	// items, queueing queued deliveries.
	ActivityAccepted(activities, queued int)
	// ActivityRejected: an intake request with activities items was refused
	// with code; none of them was stored.
	ActivityRejected(activities int, code Code)
	// DeliveryAttempted: an attempt's outcome was recorded; next is where
	// it left the delivery, errorClass is "" on success.
	DeliveryAttempted(next DeliveryState, errorClass string, latency time.Duration)
	// RequestServed: an edge ("soap", "rest", "intake", "oauth") answered
	// operation with code (0: success).
	RequestServed(edge, operation string, code Code)
	// AMIConnected: the AMI source's connection went up or down.
	AMIConnected(up bool)
	// BreakerChanged: a dispatcher's circuit breaker for an organization's
	// deliveries to a receiver origin moved to state; open is how many
	// breakers that dispatcher now has open or half-open.
	BreakerChanged(organization, origin string, state BreakerState, open int)
}

// BreakerState is where a dispatcher's circuit breaker for one
// organization's deliveries to one receiver origin is: closed (sending), open (paused: due deliveries wait, their
// attempts unspent) or half-open (one probe delivery in flight).
type BreakerState string

// Breaker states.
const (
	BreakerClosed   BreakerState = "closed"
	BreakerOpen     BreakerState = "open"
	BreakerHalfOpen BreakerState = "half_open"
)

// NopObserver measures nothing.
type NopObserver struct{}

func (NopObserver) ActivityAccepted(int, int)                              {}
func (NopObserver) ActivityRejected(int, Code)                             {}
func (NopObserver) DeliveryAttempted(DeliveryState, string, time.Duration) {}
func (NopObserver) RequestServed(string, string, Code)                     {}
func (NopObserver) AMIConnected(bool)                                      {}
func (NopObserver) BreakerChanged(string, string, BreakerState, int)       {}

// ObserverOrNop returns o, or NopObserver when o is nil.
func ObserverOrNop(o Observer) Observer {
	if o == nil {
		return NopObserver{}
	}
	return o
}

// QueueStats is the state of the delivery queue at one moment.
type QueueStats struct {
	Pending int // deliveries waiting (due or not)
	Running int // deliveries leased to a worker
	// OldestDue is how long the oldest due pending delivery has been due
	// (0 when none is due).
	OldestDue time.Duration
}

// QueueStatsReader reads the queue's depth; a store implements it.
type QueueStatsReader interface {
	QueueStats(ctx context.Context, now time.Time) (QueueStats, error)
}

// OutcomeCount is how many deliveries finished in one minute, by outcome.
type OutcomeCount struct {
	Minute    time.Time // UTC, whole minutes
	Delivered int
	Failed    int
}

// DeliveryOutcomeReader counts finished deliveries per minute; a store
// implements it (the console's Overview).
type DeliveryOutcomeReader interface {
	// DeliveryOutcomes returns the minutes since since (inclusive) that
	// had a delivered or failed delivery, oldest first.
	DeliveryOutcomes(ctx context.Context, since time.Time) ([]OutcomeCount, error)
}

// OpenBreaker is a circuit breaker that is open or half-open: an
// organization's deliveries to a receiver origin wait while a probe tests
// the receiver.
type OpenBreaker struct {
	Organization string
	Origin       string
	State        BreakerState
	Since        time.Time
}

// BreakerBoard remembers which breakers a process's dispatcher has open,
// from its BreakerChanged reports, for the console. The zero value is
// ready; it is safe for concurrent use.
type BreakerBoard struct {
	mu   sync.Mutex
	open map[PausedReceiver]OpenBreaker
}

// BreakerChanged records a breaker's move (the Observer method's
// arguments); closed forgets it.
func (b *BreakerBoard) BreakerChanged(organization, origin string, state BreakerState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := PausedReceiver{Organization: organization, Origin: origin}
	if state == BreakerClosed {
		delete(b.open, key)
		return
	}
	if b.open == nil {
		b.open = map[PausedReceiver]OpenBreaker{}
	}
	since := b.open[key].Since
	if since.IsZero() {
		since = time.Now().UTC()
	}
	b.open[key] = OpenBreaker{Organization: organization, Origin: origin, State: state, Since: since}
}

// OpenBreakers returns the open and half-open breakers, by organization
// and origin.
func (b *BreakerBoard) OpenBreakers() []OpenBreaker {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]OpenBreaker, 0, len(b.open))
	for _, o := range b.open {
		out = append(out, o)
	}
	slices.SortFunc(out, func(x, y OpenBreaker) int {
		return cmp.Or(cmp.Compare(x.Organization, y.Organization), cmp.Compare(x.Origin, y.Origin))
	})
	return out
}
