// Package dispatcher sends the Call Event requests queued in a
// callevents.DeliveryStore (SPEC.md §6) and implements
// callevents.CallEventTester.
//
// # Delivery lifecycle
//
// Intake stores one pending delivery per matching Call Event and calls
// Notify. A Dispatcher claims due deliveries in batches with ClaimDue,
// which leases them to its WorkerID for Config.Lease and hands out only
// the oldest unfinished delivery of each OrderKey, so one call's events
// reach one receiver in order while everything else runs in parallel, up
// to Config.Concurrency requests at once. Each claimed delivery gets one
// HTTP attempt, and RecordAttempt moves it on:
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
// X-CallEvents-Event, X-CallEvents-Attempt, and the Standard Webhooks
// headers webhook-id (the delivery id, stable across attempts),
// webhook-timestamp and, when the Call Event has a secret,
// webhook-signature. Redirects are not followed and no proxy is used; the
// OutboundPolicy checks the address actually dialled.
package dispatcher
