package dispatcher

import (
	"log/slog"
	"math"
	mathrand "math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/callevents/callevents"
)

// The outcome policy (SPEC.md §6): where an attempt leaves its delivery.
// It is pure, apart from the jitter's randomness: no store, no lock, no
// goroutine, so that it can be read and tested on its own.

// MaxRetryAfter bounds how long a receiver's Retry-After may park a
// delivery.
const MaxRetryAfter = time.Hour

// RetryPolicy decides when a failed attempt is tried again, and how often
// a delivery is tried at all.
type RetryPolicy struct {
	// Schedule is the delay before each retry: after attempt n fails the
	// next one is due Schedule[n-1] later, so a delivery gets
	// len(Schedule)+1 attempts.
	Schedule []time.Duration
	// Jitter spreads every delay uniformly over ±Jitter of it (0.2 is
	// ±20 %); 0 or less means none.
	Jitter float64
}

// MaxAttempts is how many attempts a delivery gets: len(Schedule)+1.
func (p RetryPolicy) MaxAttempts() int { return len(p.Schedule) + 1 }

// Delay returns the delay before the next attempt of a delivery whose
// attempts-th attempt failed: Schedule[attempts-1] spread by ±Jitter. It
// returns false when no attempt is left (attempts >= MaxAttempts()).
func (p RetryPolicy) Delay(attempts int) (time.Duration, bool) {
	if attempts < 1 {
		attempts = 1
	}
	if attempts > len(p.Schedule) {
		return 0, false
	}
	d := p.Schedule[attempts-1]
	if p.Jitter > 0 {
		// Uniform over [d·(1-j), d·(1+j)].
		f := 1 + p.Jitter*(2*mathrand.Float64()-1)
		d = time.Duration(float64(d) * f)
	}
	return d, true
}

// outcome decides where attempt del.Attempts of del, made at at with
// result res, leaves the delivery, now:
//
//	2xx                            → delivered
//	410 Gone                       → cancelled, its Call Event disabled
//	refused by the outbound policy → failed (retrying will not help)
//	any other failure              → pending, due after p's delay (a 429's
//	                                 or 503's Retry-After may lengthen it),
//	                                 or failed when no attempt is left
func outcome(p RetryPolicy, del callevents.Delivery, res result, at, now time.Time) callevents.AttemptOutcome {
	o := callevents.AttemptOutcome{
		DeliveryID: del.ID,
		Attempt: callevents.DeliveryAttempt{
			Attempt: del.Attempts, At: at, StatusCode: res.status,
			ErrorClass: string(res.class), Latency: res.latency,
		},
	}
	switch {
	case res.class == "":
		o.Next = callevents.DeliveryDelivered
	case res.status == http.StatusGone:
		o.Next = callevents.DeliveryCancelled
		o.DisableCallEvent = true
	case res.class == callevents.ErrorClassPolicy:
		o.Next = callevents.DeliveryFailed
	default:
		delay, ok := p.Delay(del.Attempts)
		if !ok {
			o.Next = callevents.DeliveryFailed
			break
		}
		if res.status == http.StatusTooManyRequests || res.status == http.StatusServiceUnavailable {
			if ra, ok := parseRetryAfter(res.retryAfter, now); ok {
				delay = retryAfterDelay(delay, ra)
			}
		}
		o.Next = callevents.DeliveryPending
		o.NextAttemptAt = now.Add(delay)
	}
	return o
}

// outcomeMessage is how a recorded outcome is logged: a failure that ends
// the delivery is a warning, a retry news, a delivery a detail.
func outcomeMessage(next callevents.DeliveryState, class callevents.ErrorClass) (slog.Level, string) {
	switch next {
	case callevents.DeliveryDelivered:
		return slog.LevelDebug, "dispatcher: delivered"
	case callevents.DeliveryPending:
		return slog.LevelInfo, "dispatcher: attempt failed; retrying"
	case callevents.DeliveryCancelled:
		return slog.LevelWarn, "dispatcher: receiver answered 410 Gone; Call Event disabled"
	}
	if class == callevents.ErrorClassPolicy {
		return slog.LevelWarn, "dispatcher: delivery failed; target refused by the outbound policy"
	}
	return slog.LevelWarn, "dispatcher: delivery failed; no attempt left"
}

// retryAfterDelay applies a receiver's Retry-After (429, 503) to the
// scheduled delay. The receiver may lengthen the wait, but only up to
// MaxRetryAfter: the result is ra clamped to [scheduled, max(scheduled,
// MaxRetryAfter)]. A receiver cannot make us retry sooner than the schedule
// (that would let a struggling receiver be hammered, or a hostile one burn
// the attempts in seconds), nor park a delivery for days on its word alone.
func retryAfterDelay(scheduled, ra time.Duration) time.Duration {
	if ra > MaxRetryAfter {
		ra = MaxRetryAfter
	}
	return max(ra, scheduled)
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date (RFC 9110 §10.2.3). ok is false when it is absent or malformed.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 63); err == nil {
		if secs > uint64(math.MaxInt64/int64(time.Second)) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
