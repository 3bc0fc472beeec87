package dispatcher

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/callevents/callevents"
)

// Defaults of Config.
const (
	ConcurrencyDefault     = 128
	PollIntervalDefault    = 50 * time.Millisecond
	TimeoutDefault         = 10 * time.Second
	LeaseDefault           = 60 * time.Second
	JitterDefault          = 0.2
	UserAgentDefault       = "callevents/dev"
	RetentionDefault       = 7 * 24 * time.Hour
	CleanIntervalDefault   = time.Minute
	RescueIntervalDefault  = 10 * time.Second
	MaxStoreBackoffDefault = 5 * time.Second
	// OrderHoldDefault is callevents.OrderHoldDefault (60 s).
	OrderHoldDefault         = callevents.OrderHoldDefault
	BreakerFailuresDefault   = 5
	BreakerBackoffDefault    = 5 * time.Second
	BreakerMaxBackoffDefault = 5 * time.Minute
)

// RetryScheduleDefault returns the default delays between attempts (SPEC.md
// §6): 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, that is 9 attempts
// in all over about 7 h 43 min. It returns a new slice on every call.
func RetryScheduleDefault() []time.Duration {
	return []time.Duration{
		5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour,
	}
}

// MaxResponseBody is how much of a response body is read (and discarded)
// before the connection is closed or reused.
const MaxResponseBody = 64 << 10

// MaxResponseHeader bounds the headers of a receiver's answer (status line
// included; the HTTP/2 header list): a larger answer is read no further and
// the attempt fails with callevents.ErrorClassResponseTooLarge, which has no
// status and so counts against the receiver's circuit breaker as an
// attempt without an answer does.
const MaxResponseHeader = 64 << 10

// MaxConcurrentTests is how many TestCallEvent requests one dispatcher has
// in flight at once; more wait for a free slot (see TestCallEvent).
const MaxConcurrentTests = 8

// MaxConcurrentTestsPerOrganization is how many of those one organization
// may hold, so that one tenant's tests of a receiver that hangs leave the
// others room to test theirs.
const MaxConcurrentTestsPerOrganization = 2

// Config configures a Dispatcher. The zero value of every field but Store
// means its documented default; WithDefaults fills them in.
type Config struct {
	// Store is the durable delivery queue (required).
	Store callevents.DeliveryQueue
	// Logger receives the dispatcher's messages, prefixed "dispatcher: ",
	// with snake_case attributes (delivery_id, call_event_id, extension,
	// attempt, status_code, error_class). Nil discards them.
	Logger *slog.Logger
	// Observer, when set, sees every recorded attempt (its outcome, error
	// class and latency). Nil measures nothing.
	Observer callevents.Observer
	// WorkerID names this dispatcher in the leases it takes; every
	// dispatcher sharing a store needs its own. Empty means the host name,
	// the process id and 8 random hex digits ("host-1234-0a1b2c3d").
	WorkerID string
	// Concurrency is how many HTTP requests run at once.
	// 0 means ConcurrencyDefault (128).
	Concurrency int
	// BatchSize is the most deliveries claimed at a time (never more than
	// the free request slots). 0 means Concurrency.
	BatchSize int
	// ReceiverConcurrency is how many requests run at once to one
	// receiver origin (scheme, host, port), so that a slow or hanging
	// receiver holds at most that many of the Concurrency slots and the
	// rest go to everyone else. A receiver that answers fast may borrow
	// slots no other origin can use at that moment, up to Concurrency less
	// a quarter of this share; a slow, hanging or failing one never does.
	// 0 means a quarter of Concurrency (32 of the default 128), at least 1.
	ReceiverConcurrency int
	// OrderHold is how long a due delivery waits behind an unfinished
	// earlier delivery of its order key (a failing Dial-In holding back
	// the Hangup to the same receiver) before it goes out anyway, counted
	// from when it became due. 0 means OrderHoldDefault (60 s); a negative
	// value means no limit.
	OrderHold time.Duration
	// BreakerFailures is how many failed attempts in a row (no answer, a
	// timeout, or a 5xx) open the circuit breaker of an organization's
	// deliveries to a receiver origin: they then wait, their attempts
	// unspent, until a single probe delivery gets an answer. Breakers are
	// per dispatcher (process).
	// 0 means BreakerFailuresDefault (5).
	BreakerFailures int
	// BreakerBackoff is how long an open breaker waits before its first
	// probe; each failed probe doubles it, up to BreakerMaxBackoff. 0
	// means BreakerBackoffDefault (5 s) and BreakerMaxBackoffDefault
	// (5 min).
	BreakerBackoff    time.Duration
	BreakerMaxBackoff time.Duration
	// PollInterval is how often the queue is polled when a claim came back
	// short; Notify wakes the dispatcher at once. 0 means
	// PollIntervalDefault (50 ms).
	PollInterval time.Duration
	// Timeout bounds one HTTP request, from dialling to the end of the
	// response body. 0 means TimeoutDefault (10 s).
	Timeout time.Duration
	// Lease is how long a claimed delivery stays with this dispatcher
	// before a rescuer may give it to another. It must exceed Timeout.
	// 0 means LeaseDefault (60 s).
	Lease time.Duration
	// RetrySchedule is the delay before each retry: after attempt n fails
	// the next one is due RetrySchedule[n-1] later (± Jitter), so a
	// delivery gets len(RetrySchedule)+1 attempts. Nil means
	// RetryScheduleDefault() (9 attempts); an empty, non-nil slice means a
	// single attempt.
	RetrySchedule []time.Duration
	// Jitter spreads every retry delay uniformly over ±Jitter of it (0.2 is
	// ±20 %), so that receivers back from an outage are not hit by every
	// retry at once. 0 means JitterDefault (0.2); a negative value means no
	// jitter. At most 1.
	Jitter float64
	// Policy decides which targets may be dialled. Nil means
	// DefaultPolicy(): no private or special address, no allowlist.
	Policy *OutboundPolicy
	// UserAgent is sent as User-Agent. Empty means UserAgentDefault
	// ("callevents/dev"); cmd/ passes "callevents/<version> (<commit>)" from
	// the build information.
	UserAgent string
	// Retention is how long finished deliveries (and accepted activities)
	// are kept for the delivery log. 0 means RetentionDefault (7 days).
	Retention time.Duration
	// CleanInterval is how often finished deliveries older than Retention
	// are deleted. 0 means CleanIntervalDefault (1 min).
	CleanInterval time.Duration
	// RescueInterval is how often deliveries whose lease expired (their
	// worker died) are made pending again. 0 means RescueIntervalDefault
	// (10 s).
	RescueInterval time.Duration
	// MaxStoreBackoff bounds the pause between store calls that keep
	// failing, as when the database is down: the claim loop then waits
	// PollInterval doubled after each failure, and a delivery whose outcome
	// cannot be recorded because the database is unavailable
	// (callevents.ErrUnavailable) tries again after 50 ms doubled, both up
	// to MaxStoreBackoff, so an outage costs neither a hot loop nor, while
	// the lease lasts, a second send. 0 means MaxStoreBackoffDefault (5 s).
	MaxStoreBackoff time.Duration
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.WorkerID == "" {
		c.WorkerID = defaultWorkerID()
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.BatchSize == 0 {
		c.BatchSize = c.Concurrency
	}
	if c.ReceiverConcurrency == 0 {
		c.ReceiverConcurrency = max(c.Concurrency/4, 1)
	}
	if c.OrderHold == 0 {
		c.OrderHold = OrderHoldDefault
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = BreakerFailuresDefault
	}
	if c.BreakerBackoff == 0 {
		c.BreakerBackoff = BreakerBackoffDefault
	}
	if c.BreakerMaxBackoff == 0 {
		c.BreakerMaxBackoff = max(BreakerMaxBackoffDefault, c.BreakerBackoff)
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	}
	if c.Timeout == 0 {
		c.Timeout = TimeoutDefault
	}
	if c.Lease == 0 {
		c.Lease = LeaseDefault
	}
	if c.RetrySchedule == nil {
		c.RetrySchedule = RetryScheduleDefault()
	}
	if c.Jitter == 0 {
		c.Jitter = JitterDefault
	}
	if c.Policy == nil {
		c.Policy = DefaultPolicy()
	}
	if c.UserAgent == "" {
		c.UserAgent = UserAgentDefault
	}
	if c.Retention == 0 {
		c.Retention = RetentionDefault
	}
	if c.CleanInterval == 0 {
		c.CleanInterval = CleanIntervalDefault
	}
	if c.RescueInterval == 0 {
		c.RescueInterval = RescueIntervalDefault
	}
	if c.MaxStoreBackoff == 0 {
		c.MaxStoreBackoff = MaxStoreBackoffDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate checks a config that WithDefaults has filled in.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Store == nil {
		bad("Store is required")
	}
	if c.Concurrency < 1 {
		bad("Concurrency must be at least 1, got %d", c.Concurrency)
	}
	if c.BatchSize < 1 {
		bad("BatchSize must be at least 1, got %d", c.BatchSize)
	}
	if c.ReceiverConcurrency < 1 {
		bad("ReceiverConcurrency must be at least 1, got %d", c.ReceiverConcurrency)
	}
	if c.BreakerFailures < 1 {
		bad("BreakerFailures must be at least 1, got %d", c.BreakerFailures)
	}
	if c.BreakerMaxBackoff < c.BreakerBackoff {
		bad("BreakerMaxBackoff (%s) must be at least BreakerBackoff (%s)", c.BreakerMaxBackoff, c.BreakerBackoff)
	}
	for name, d := range map[string]time.Duration{
		"PollInterval": c.PollInterval, "Timeout": c.Timeout, "Lease": c.Lease,
		"Retention": c.Retention, "CleanInterval": c.CleanInterval, "RescueInterval": c.RescueInterval,
		"MaxStoreBackoff": c.MaxStoreBackoff, "BreakerBackoff": c.BreakerBackoff, "BreakerMaxBackoff": c.BreakerMaxBackoff,
	} {
		if d < 0 {
			bad("%s must be positive, got %s", name, d)
		}
	}
	if c.Lease <= c.Timeout {
		bad("Lease (%s) must exceed Timeout (%s), or a second worker could send a delivery still in flight", c.Lease, c.Timeout)
	}
	for i, d := range c.RetrySchedule {
		if d <= 0 {
			bad("RetrySchedule[%d] must be positive, got %s", i, d)
		}
	}
	if c.Jitter > 1 || math.IsNaN(c.Jitter) {
		bad("Jitter must be at most 1, got %g", c.Jitter)
	}
	if len(errs) > 0 {
		return fmt.Errorf("dispatcher: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// RetryPolicy is the retry policy of RetrySchedule and Jitter. c must
// have its defaults filled in (WithDefaults): a zero Jitter here means
// none.
func (c Config) RetryPolicy() RetryPolicy {
	return RetryPolicy{Schedule: c.RetrySchedule, Jitter: c.Jitter}
}

func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
