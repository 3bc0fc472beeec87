package callevents

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DeliveryState is where a delivery is in its life:
//
//	pending ──claim──▶ running ──2xx──▶ delivered
//	   ▲                  │──retryable failure, attempts left──▶ pending (later)
//	   │                  │──no attempts left──▶ failed
//	   └──resend──────────┴──410, or its Call Event disabled/deleted──▶ cancelled
//
// A running delivery whose lease expires (its worker died) is pending again.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryRunning   DeliveryState = "running"
	DeliveryDelivered DeliveryState = "delivered"
	DeliveryFailed    DeliveryState = "failed"
	DeliveryCancelled DeliveryState = "cancelled"
)

// Valid reports whether s is one of the five states.
func (s DeliveryState) Valid() bool {
	switch s {
	case DeliveryPending, DeliveryRunning, DeliveryDelivered, DeliveryFailed, DeliveryCancelled:
		return true
	}
	return false
}

// Finished reports whether s is final (until an admin resends).
func (s DeliveryState) Finished() bool {
	return s == DeliveryDelivered || s == DeliveryFailed || s == DeliveryCancelled
}

// Delivery is one request owed to one Call Event for one extension event.
type Delivery struct {
	// ID is sent as webhook-id, the same on every attempt.
	ID          string
	CallEventID string
	Extension   Extension
	Type        EventType
	CallID      string
	// Payload is Params.Encode() of the event: what is sent and signed.
	Payload string
	// OrderKey groups the deliveries that go out one at a time, in order:
	// one call's events for one extension to one receiver (see OrderKey).
	OrderKey string
	// Sequence is the delivery's 1-based place within its OrderKey, in
	// the order the activity was committed; sent as X-CallEvents-Sequence.
	Sequence int
	// Origin is the receiver origin (see Origin) fair share and the
	// circuit breaker count the delivery against: its Call Event's, as
	// of the last edit of its URL.
	Origin        string
	State         DeliveryState
	Attempts      int // attempts made so far (the one in flight included)
	NextAttemptAt time.Time
	Created       time.Time // when the activity was accepted
	Finished      time.Time // zero until delivered, failed or cancelled
	LastStatus    int       // HTTP status of the last attempt; 0 if none
	LastError     string    // ErrorClass of the last attempt; "" if none

	// Set by ClaimDue from the Call Event as it is now.
	URL    string
	Method Method
	Secret string

	// History is every attempt, oldest first (FindDeliveries fills it).
	History []DeliveryAttempt
}

// DeliveryAttempt records one attempt (SPEC.md §8).
type DeliveryAttempt struct {
	Attempt    int
	At         time.Time
	StatusCode int    // 0 when there was no HTTP response
	ErrorClass string // an ErrorClass; "" on success
	Latency    time.Duration
}

// ErrorClass is why an attempt failed (SPEC.md §8). The values are on the
// wire (the delivery log's lastError and error, the test result) and in
// the metrics: they never change.
type ErrorClass string

// Error classes of a failed attempt.
const (
	ErrorClassTimeout    ErrorClass = "timeout"     // no answer within the dispatcher's timeout
	ErrorClassConnect    ErrorClass = "connect"     // the connection could not be made (refused, unreachable)
	ErrorClassDNS        ErrorClass = "dns"         // the host name did not resolve
	ErrorClassTLS        ErrorClass = "tls"         // TLS handshake or certificate failure
	ErrorClassPolicy     ErrorClass = "policy"      // refused by the outbound policy: never retried
	ErrorClassHTTPStatus ErrorClass = "http_status" // an answer other than 2xx or 3xx
	ErrorClassRedirect   ErrorClass = "redirect"    // a 3xx answer (redirects are not followed)
	ErrorClassIO         ErrorClass = "io"          // the connection broke, or the answer was not HTTP
	// ErrorClassResponseTooLarge is an answer whose headers exceed the
	// dispatcher's bound (64 KiB): read no further, and retried like any
	// other failure.
	ErrorClassResponseTooLarge ErrorClass = "response_too_large"
)

// NewDeliveryID returns a webhook-id: "dlv_" and 26 alphanumerics (no '.',
// as Standard Webhooks requires). The first 8 are the time in milliseconds
// (base 62, in byte order), the other 18 random (107 bits): ids made later
// sort later, so the store's index of them grows at its end, one page for
// a whole batch, rather than one page per id anywhere in the tree.
func NewDeliveryID() string { return newDeliveryID(time.Now()) }

func newDeliveryID(now time.Time) string {
	var b [4 + 8]byte
	copy(b[:], "dlv_")
	ms := uint64(now.UnixMilli())
	for i := 11; i >= 4; i-- {
		b[i] = sortedAlphanumerics[ms%62]
		ms /= 62
	}
	return string(b[:]) + randomAlphanumerics(18)
}

// sortedAlphanumerics are the alphanumerics in byte order.
const sortedAlphanumerics = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Origin is the receiver of a URL as ordering and fair share see it: its
// scheme, host and port, lower case ("https://crm.example.com:8443"). An
// unparsable URL is its own origin.
func Origin(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// OrderKey is the ordering group of a delivery (SPEC.md §6): the Call
// Event's extension, the receiver's origin and the call. One extension's
// receiver sees the events of one call in the order they were accepted (a
// Hangup never overtakes its Dial-In), while other extensions,
// organizations, calls and receivers proceed in parallel.
func OrderKey(ext Extension, rawURL, callID string) string {
	return string(ext) + " " + Origin(rawURL) + " " + callID
}

// OrderHoldDefault is how long a due delivery waits behind an unfinished
// earlier one of its order key before it goes out anyway.
const OrderHoldDefault = 60 * time.Second

// Claim is what a worker asks ClaimDue for.
type Claim struct {
	Worker string        // who takes the leases
	N      int           // the most deliveries to claim
	Now    time.Time     // due at or before Now
	Lease  time.Duration // leased until Now+Lease
	// OrderHold is how long a delivery that is due waits behind an
	// unfinished earlier delivery of its order key; after that it is
	// claimable all the same. 0 means no limit.
	OrderHold time.Duration
	// Room bounds what this claim takes per receiver origin (Origin of
	// the URL the delivery was queued for): Room[origin] for the origins
	// listed, 0 passing them over (saturated, or paused by a circuit
	// breaker), and DefaultRoom for the others (0: no bound). Deliveries
	// passed over stay pending, their attempts unspent.
	Room        map[string]int
	DefaultRoom int
	// Paused lists organizations' receivers whose circuit breaker is
	// open: their deliveries are passed over like those of an origin
	// without room, but for as many as the value (1: the breaker's
	// probe).
	Paused map[PausedReceiver]int
	// PassOver makes the claim look past the due deliveries of origins
	// without room for the other origins' ones. That reads every due
	// delivery of those origins, so a dispatcher asks for it about once a
	// poll interval; other claims read only the oldest due deliveries.
	PassOver bool
}

// PausedReceiver is one organization's deliveries to one receiver origin:
// what a dispatcher's circuit breaker pauses, so that one organization's
// failing endpoint on a shared host does not pause another's.
type PausedReceiver struct {
	Organization string // Extension.Organization of the deliveries
	Origin       string
}

// PausedRoom is how many deliveries of organization to origin c may take
// when a breaker pauses them (paused), as Room is for an origin.
func (c Claim) PausedRoom(organization, origin string) (room int, paused bool) {
	room, paused = c.Paused[PausedReceiver{organization, origin}]
	return room, paused
}

// RoomFor is how many deliveries of origin c may take.
func (c Claim) RoomFor(origin string) int {
	if r, ok := c.Room[origin]; ok {
		return r
	}
	if c.DefaultRoom <= 0 {
		return c.N
	}
	return c.DefaultRoom
}

// AttemptOutcome is what a worker reports after an attempt.
type AttemptOutcome struct {
	DeliveryID string
	Attempt    DeliveryAttempt
	// Next is the state to move to: delivered, pending (retry at
	// NextAttemptAt), failed or cancelled.
	Next          DeliveryState
	NextAttemptAt time.Time
	// DisableCallEvent disables the Call Event (the receiver answered 410)
	// and cancels its other pending deliveries, in the same transaction.
	DisableCallEvent bool
}

// DeliveryFilter selects deliveries of one extension. Empty fields do not
// filter. Offset and Limit page the result (Limit 0: no limit).
type DeliveryFilter struct {
	Extension Extension
	// ID, when set, selects that one delivery of the extension.
	ID          string
	CallEventID string
	CallID      string
	State       DeliveryState
	Offset      int
	Limit       int
}

// ActivityStore is where the intake (ActivityService) puts call activity.
// Implementations return coded errors: 151/152 wrapping internal ones.
type ActivityStore interface {
	// AcceptActivity stores the activities and, in the same transaction, a
	// pending delivery (due now) for every enabled Call Event that matches
	// one of their ExtensionEvents. An activity whose DedupeKey was accepted
	// before adds nothing. Each delivery takes the next Sequence of its
	// OrderKey such that no later one can commit before it: concurrent
	// callers sharing a key take turns. Returns the deliveries queued and
	// the activities accepted and found to be duplicates (see
	// ActivityResult; of two concurrent calls reporting one activity, one
	// accepts it and the other counts a duplicate); the deliveries are
	// durable when it returns.
	//
	// With a Handoff, the same transaction also claims for it what its
	// offer has room for (see Handoff), and ActivityResult.Claimed counts
	// them; nil claims nothing.
	AcceptActivity(ctx context.Context, activities []CallActivity, now time.Time, h Handoff) (ActivityResult, error)
}

// A Handoff is a dispatcher in the accepting process that takes new
// deliveries as they are accepted: the accepting transaction leases them
// to it, as ClaimDue would, so they need no claim of their own (SPEC.md
// §6's order still holds: a delivery with an unfinished earlier one of its
// order key is left pending for ClaimDue).
type Handoff interface {
	// OfferClaim returns the claim the dispatcher would make now (Worker,
	// N, Lease, Room, DefaultRoom, Paused; Now is the store's), or false
	// when it takes nothing now. Each true is followed by exactly one
	// ClaimAccepted, and no other claim of the dispatcher runs in between.
	OfferClaim() (Claim, bool)
	// ClaimAccepted hands over the deliveries claimed under the offer,
	// running and leased until now+c.Lease, once their transaction has
	// committed; none when it failed.
	ClaimAccepted(c Claim, now time.Time, claimed []Delivery)
}

// DeliveryQueue is the durable delivery queue as a dispatcher works it.
// Implementations return coded errors: 151/152 wrapping internal ones.
type DeliveryQueue interface {
	// ClaimDue leases up to c.N deliveries to c.Worker until c.Now+c.Lease:
	// pending, due (NextAttemptAt <= c.Now), with no earlier unfinished
	// delivery of the same OrderKey (committed or not) unless due for
	// longer than c.OrderHold, and within c's room for their origin. Each
	// gets Attempts+1, state running, and the URL, Method and Secret of
	// its Call Event. A delivery whose Call Event is gone or disabled is
	// cancelled instead of claimed.
	ClaimDue(ctx context.Context, c Claim) ([]Delivery, error)
	// RecordAttempts stores each outcome's attempt and moves its delivery
	// to Next, all in one transaction (a dispatcher commits the outcomes of
	// its requests in batches), but each only while worker still holds the
	// delivery's lease: others are skipped (a rescuer gave the delivery to
	// someone else), and that is no error.
	RecordAttempts(ctx context.Context, worker string, outcomes []AttemptOutcome) error
	// ReleaseClaims gives worker's leased deliveries back as pending,
	// without counting the attempt (graceful shutdown). They keep their due
	// time, which is at or before the claim, so they are due at once.
	ReleaseClaims(ctx context.Context, worker string, ids []string) error
	// RescueExpired makes running deliveries whose lease ended before now
	// pending again (due at once, their place in the queue kept; the lost
	// attempt stays counted), and returns how many.
	RescueExpired(ctx context.Context, now time.Time) (int, error)
	// CleanFinished deletes deliveries finished before before (with their
	// attempts) and activities accepted before before; returns deliveries deleted.
	CleanFinished(ctx context.Context, before time.Time) (int, error)
}

// DeliveryLog is the admin's view of the deliveries (DeliveryService).
// Implementations return coded errors: 256 for a missing delivery, 151/152
// wrapping internal ones.
type DeliveryLog interface {
	// FindDeliveries returns a page of deliveries (newest first) with their
	// History, and the total without paging.
	FindDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, int, error)
	// ResendDelivery makes a delivered or failed delivery of ext pending and
	// due now, keeping its id and history. Returns 256 if there is no such
	// delivery, and 400 when it is pending, running or cancelled.
	ResendDelivery(ctx context.Context, ext Extension, id string, now time.Time) (Delivery, error)
}

// DeliveryStore is the three on one value, as a store implements them: for
// wiring and for conformance suites, which see the whole life of a
// delivery.
type DeliveryStore interface {
	ActivityStore
	DeliveryQueue
	DeliveryLog
}

// TestResult is the outcome of a synthetic request sent now.
type TestResult struct {
	StatusCode int
	ErrorClass string // an ErrorClass; "" on a 2xx answer
	Latency    time.Duration
}

// CallEventTester sends a synthetic event to a Call Event right away,
// outside the queue (implemented by the dispatcher).
type CallEventTester interface {
	TestCallEvent(ctx context.Context, c CallEvent) (TestResult, error)
}

// WebhookSignature is the webhook-signature of a delivery attempt
// (Standard Webhooks v1): "v1," and the standard base64 of HMAC-SHA256
// keyed with secret over id + "." + timestamp + "." + payload. The key is
// the secret exactly as the user set it (its bytes, not a "whsec_" base64
// key), and payload is the encoded parameter string — the body of a POST,
// the appended query of a GET.
func WebhookSignature(secret, id string, timestamp int64, payload string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write([]byte(payload))
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
