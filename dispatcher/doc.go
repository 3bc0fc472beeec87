// Package dispatcher sends the Call Event requests queued in a
// callevents.DeliveryStore (SPEC.md §6) and implements
// callevents.CallEventTester.
//
// # Delivery lifecycle
//
// Intake stores one pending delivery per matching Call Event and calls
// Notify. A Dispatcher claims due deliveries in batches with ClaimDue,
// which leases them to its WorkerID for Config.Lease and hands out only
// the oldest unfinished delivery of each OrderKey (extension, receiver
// origin, call) unless it waited longer than Config.OrderHold, so one
// extension's receiver sees a call's events in order while everything
// else runs in parallel, up to Config.Concurrency requests at once.
//
// Claimed deliveries wait in a queue per receiver origin and start
// round-robin across origins, at most Config.ReceiverConcurrency per
// origin (fairshare.go): a slow or hanging receiver holds its share of the
// slots and no more, and a receiver that keeps failing is paused by a
// circuit breaker per organization and origin, its deliveries left pending
// with their attempts unspent while a single probe tests it. Each
// delivery that starts gets one HTTP attempt, and RecordAttempts moves it
// on:
//
//	2xx                        → delivered
//	410 Gone                   → cancelled, and its Call Event disabled
//	refused by OutboundPolicy  → failed at once (error class "policy")
//	3xx, other status, timeout,
//	network error              → pending again after RetrySchedule[n-1] ± Jitter
//	                             (429/503: Retry-After may lengthen it, up to 1 h),
//	                             or failed once len(RetrySchedule)+1 attempts are spent
//
// A rescuer loop makes deliveries whose lease expired (their worker died)
// pending again, and a cleaner loop deletes finished deliveries after
// Config.Retention; several processes may run both against one database.
// Stop drains: it claims no more, waits for the requests in flight until
// its context ends, and gives back what is still claimed.
//
// While the database is unavailable (callevents.ErrUnavailable) the claim
// loop backs off exponentially up to Config.MaxStoreBackoff, and a delivery
// already sent keeps its outcome and tries to record it, backing off too,
// for as long as its lease lasts; each outage is logged when it starts and
// when it ends. database/sql reconnects by itself when the database is back.
//
// # Requests
//
// Every request carries the ten parameters of the event (Delivery.Payload)
// in the query of a GET or the form body of a POST, User-Agent,
// X-CallEvents-Event, X-CallEvents-Attempt, X-CallEvents-Sequence (the
// delivery's place in its order key), and the Standard Webhooks
// headers webhook-id (the delivery id, stable across attempts),
// webhook-timestamp and, when the Call Event has a secret,
// webhook-signature. Redirects are not followed and no proxy is used; the
// OutboundPolicy checks the address actually dialled.
package dispatcher
