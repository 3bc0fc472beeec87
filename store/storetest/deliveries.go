package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callevents/callevents"
)

// DeliveryStore is what ExerciseDeliveries tests: the queue, and the Call
// Events it fans out to.
type DeliveryStore interface {
	callevents.CallEventStore
	callevents.DeliveryStore
}

// ExerciseDeliveries runs the delivery queue suite. open must return a new,
// empty, ready store for each call and close it in t.Cleanup; subtests
// call it in parallel. Times are passed in explicitly, so nothing waits.
func ExerciseDeliveries(t *testing.T, open func(t *testing.T) DeliveryStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s DeliveryStore)
	}{
		{"AcceptFansOutToEnabledCallEvents", testAcceptFansOut},
		{"AcceptDedupes", testAcceptDedupes},
		{"AcceptNothingMatches", testAcceptNothingMatches},
		{"AcceptDuplicatesConcurrently", testAcceptDuplicatesConcurrently},
		{"ClaimLeases", testClaimLeases},
		{"ClaimOrdersByKey", testClaimOrdersByKey},
		{"ClaimOrdersPerExtension", testClaimOrdersPerExtension},
		{"ClaimOrderHold", testClaimOrderHold},
		{"ClaimRoomPerOrigin", testClaimRoomPerOrigin},
		{"ClaimPausedReceiver", testClaimPausedReceiver},
		{"Sequences", testSequences},
		{"SequencesConcurrently", testSequencesConcurrently},
		{"RecordAttempt", testRecordAttempt},
		{"RecordAttemptNeedsTheLease", testRecordAttemptNeedsTheLease},
		{"RecordAttemptsInOneBatch", testRecordAttemptsBatch},
		{"RetryLater", testRetryLater},
		{"ReleaseClaims", testReleaseClaims},
		{"RescueExpired", testRescueExpired},
		{"Gone410DisablesAndCancels", testGone410},
		{"DisableCancelsPending", testDisableCancelsPending},
		{"DeleteCancelsPending", testDeleteCancelsPending},
		{"ClaimCancelsOrphans", testClaimCancelsOrphans},
		{"Resend", testResend},
		{"FindDeliveries", testFindDeliveries},
		{"CleanFinished", testCleanFinished},
		{"ClaimConcurrent", testClaimConcurrent},
		{"QueueStats", testQueueStats},
		{"HandoffClaimsWhatFits", testHandoffClaimsWhatFits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, open(t))
		})
	}
}

// queueNow is a time with microseconds, which the queue keeps.
var queueNow = base.Add(time.Hour + 123456*time.Microsecond)

// Extensions of the delivery tests: calls go from caller to called.
const (
	caller callevents.Extension = "0005*100"
	called callevents.Extension = "0005*200"
)

func dial(callID string) callevents.CallActivity {
	return callevents.CallActivity{CallID: callID, Phase: callevents.PhaseDial, CallerExtension: string(caller),
		CallerIDNum: "100", CallerIDName: "Alice & Bob", CalledNumber: "200", CalledExtension: string(called), CallAPIID: "api-" + callID}
}

func answer(callID string) callevents.CallActivity {
	a := dial(callID)
	a.Phase = callevents.PhaseAnswer
	return a
}

func hangup(callID, status string) callevents.CallActivity {
	a := dial(callID)
	a.Phase, a.Status = callevents.PhaseHangup, status
	return a
}

// addCallEvent creates an enabled Call Event of ext and typ sending to url.
func addCallEvent(t *testing.T, s DeliveryStore, ext callevents.Extension, typ callevents.EventType, url string) callevents.CallEvent {
	t.Helper()
	c := callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: ext, Type: typ, Method: callevents.MethodPOST,
		URL: url, Status: callevents.StatusEnabled, Secret: "whsec-0123456789abcdef", Modified: base}
	must(t, s.CreateCallEvent(context.Background(), c, callevents.MaxCallEventsPerExtensionDefault))
	return c
}

// accept accepts acts and checks that want deliveries were queued, and
// that each activity counted once, as accepted or as a duplicate.
func accept(t *testing.T, s DeliveryStore, now time.Time, want int, acts ...callevents.CallActivity) callevents.ActivityResult {
	t.Helper()
	res, err := s.AcceptActivity(context.Background(), acts, now, nil)
	if err != nil {
		t.Fatalf("AcceptActivity: %v", err)
	}
	if res.Queued != want {
		t.Fatalf("AcceptActivity queued %d deliveries, want %d", res.Queued, want)
	}
	if res.Accepted < 0 || res.Duplicates < 0 || res.Accepted+res.Duplicates != len(acts) {
		t.Fatalf("AcceptActivity of %d activities: %+v, want each accepted or a duplicate", len(acts), res)
	}
	return res
}

// acceptCounts accepts acts and checks the whole result.
func acceptCounts(t *testing.T, s DeliveryStore, now time.Time, want callevents.ActivityResult, acts ...callevents.CallActivity) {
	t.Helper()
	if got := accept(t, s, now, want.Queued, acts...); got != want {
		t.Fatalf("AcceptActivity: %+v, want %+v", got, want)
	}
}

func claim(t *testing.T, s DeliveryStore, worker string, n int, now time.Time) []callevents.Delivery {
	t.Helper()
	ds, err := s.ClaimDue(context.Background(), callevents.Claim{Worker: worker, N: n, Now: now, Lease: time.Minute})
	if err != nil {
		t.Fatalf("ClaimDue: %v", err)
	}
	for _, d := range ds {
		if d.State != callevents.DeliveryRunning {
			t.Fatalf("claimed %s in state %s", d.ID, d.State)
		}
	}
	return ds
}

func outcome(d callevents.Delivery, next callevents.DeliveryState, status int, errClass string, at time.Time) callevents.AttemptOutcome {
	return callevents.AttemptOutcome{
		DeliveryID: d.ID,
		Attempt:    callevents.DeliveryAttempt{Attempt: d.Attempts, At: at, StatusCode: status, ErrorClass: errClass, Latency: 1500 * time.Microsecond},
		Next:       next,
	}
}

func record(t *testing.T, s DeliveryStore, worker string, o callevents.AttemptOutcome) {
	t.Helper()
	if err := s.RecordAttempts(context.Background(), worker, []callevents.AttemptOutcome{o}); err != nil {
		t.Fatalf("RecordAttempts(%s): %v", o.DeliveryID, err)
	}
}

func deliveries(t *testing.T, s DeliveryStore, f callevents.DeliveryFilter) ([]callevents.Delivery, int) {
	t.Helper()
	ds, total, err := s.FindDeliveries(context.Background(), f)
	if err != nil {
		t.Fatalf("FindDeliveries(%+v): %v", f, err)
	}
	return ds, total
}

// delivery returns the delivery id of ext as the log shows it.
func delivery(t *testing.T, s DeliveryStore, ext callevents.Extension, id string) callevents.Delivery {
	t.Helper()
	ds, _ := deliveries(t, s, callevents.DeliveryFilter{Extension: ext})
	for _, d := range ds {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("delivery %s of %s not found", id, ext)
	return callevents.Delivery{}
}

func wantState(t *testing.T, s DeliveryStore, ext callevents.Extension, id string, want callevents.DeliveryState) callevents.Delivery {
	t.Helper()
	d := delivery(t, s, ext, id)
	if d.State != want {
		t.Fatalf("delivery %s is %s, want %s", id, d.State, want)
	}
	return d
}

func ofCallEvent(ds []callevents.Delivery, id string) []callevents.Delivery {
	var out []callevents.Delivery
	for _, d := range ds {
		if d.CallEventID == id {
			out = append(out, d)
		}
	}
	return out
}

func testAcceptFansOut(t *testing.T, s DeliveryStore) {
	out := addCallEvent(t, s, caller, callevents.DialOut, "https://Caller.Example:8443/out?x=1")
	disabled := addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/disabled")
	_, err := s.UpdateCallEvent(context.Background(), caller, callevents.DialOut, disabled.ID,
		callevents.CallEventUpdate{Status: ptr(callevents.StatusDisabled)}, base)
	must(t, err)
	in1 := addCallEvent(t, s, called, callevents.DialIn, "http://called.example/in1")
	in2 := addCallEvent(t, s, called, callevents.DialIn, "http://called.example/in2")
	addCallEvent(t, s, called, callevents.Hangup, "http://called.example/hangup") // another type
	addCallEvent(t, s, "0005*300", callevents.DialIn, "http://other.example/")    // another extension

	a := dial("call-1")
	accept(t, s, queueNow.In(elsewhere), 3, a)

	events := a.ExtensionEvents()
	for _, c := range []struct {
		ce       callevents.CallEvent
		event    callevents.ExtensionEvent
		sequence int // in2 follows in1: one extension, receiver and call
	}{{out, events[0], 1}, {in1, events[1], 1}, {in2, events[1], 2}} {
		ds, total := deliveries(t, s, callevents.DeliveryFilter{Extension: c.ce.Extension, CallEventID: c.ce.ID})
		if total != 1 || len(ds) != 1 {
			t.Fatalf("Call Event %s has %d deliveries, want 1", c.ce.URL, total)
		}
		d := ds[0]
		want := callevents.Delivery{
			ID: d.ID, CallEventID: c.ce.ID, Extension: c.ce.Extension, Type: c.ce.Type, CallID: "call-1",
			Payload: c.event.Params.Encode(), OrderKey: callevents.OrderKey(c.ce.Extension, c.ce.URL, "call-1"), Sequence: c.sequence, Origin: callevents.Origin(c.ce.URL),
			State: callevents.DeliveryPending, NextAttemptAt: queueNow, Created: queueNow, History: []callevents.DeliveryAttempt{},
		}
		if len(d.ID) != 30 || d.ID[:4] != "dlv_" {
			t.Fatalf("delivery id %q is not a webhook-id", d.ID)
		}
		sameDelivery(t, d, want)
	}
	if _, total := deliveries(t, s, callevents.DeliveryFilter{Extension: caller, CallEventID: disabled.ID}); total != 0 {
		t.Fatalf("the disabled Call Event got %d deliveries", total)
	}
	// The same extension, receiver (scheme and host, any case) and call
	// share an order key.
	if got, want := callevents.OrderKey(out.Extension, out.URL, "call-1"), string(out.Extension)+" https://caller.example:8443 call-1"; got != want {
		t.Fatalf("OrderKey = %q, want %q", got, want)
	}
}

// sameDelivery compares everything the log shows, times as instants in UTC.
func sameDelivery(t *testing.T, got, want callevents.Delivery) {
	t.Helper()
	for _, tm := range []struct {
		name      string
		got, want time.Time
	}{{"NextAttemptAt", got.NextAttemptAt, want.NextAttemptAt}, {"Created", got.Created, want.Created}, {"Finished", got.Finished, want.Finished}} {
		if !tm.got.Equal(tm.want) || (!tm.got.IsZero() && tm.got.Location() != time.UTC) {
			t.Fatalf("delivery %s: %s = %v, want %v in UTC", got.ID, tm.name, tm.got, tm.want)
		}
	}
	g, w := got, want
	g.NextAttemptAt, g.Created, g.Finished, g.History = time.Time{}, time.Time{}, time.Time{}, nil
	w.NextAttemptAt, w.Created, w.Finished, w.History = time.Time{}, time.Time{}, time.Time{}, nil
	if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) {
		t.Fatalf("got delivery\n%+v\nwant\n%+v", got, want)
	}
	if len(got.History) != len(want.History) {
		t.Fatalf("delivery %s: history %+v, want %+v", got.ID, got.History, want.History)
	}
	for i := range got.History {
		g, w := got.History[i], want.History[i]
		if g.Attempt != w.Attempt || !g.At.Equal(w.At) || g.At.Location() != time.UTC || g.StatusCode != w.StatusCode ||
			g.ErrorClass != w.ErrorClass || g.Latency != w.Latency {
			t.Fatalf("delivery %s: attempt %d is %+v, want %+v", got.ID, i, g, w)
		}
	}
}

func testAcceptDedupes(t *testing.T, s DeliveryStore) {
	addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	addCallEvent(t, s, called, callevents.DialIn, "https://called.example/in")
	addCallEvent(t, s, called, callevents.AnswerIn, "https://called.example/answer")

	// Twice in one request, and once more with a field outside the key:
	// the first is accepted, the others are duplicates.
	again := dial("call-1")
	again.CallerIDName = "changed"
	acceptCounts(t, s, queueNow, callevents.ActivityResult{Queued: 2, Accepted: 1, Duplicates: 2}, dial("call-1"), dial("call-1"), again)
	// In later requests, alone or beside a new one.
	acceptCounts(t, s, queueNow.Add(time.Second), callevents.ActivityResult{Duplicates: 1}, dial("call-1"))
	acceptCounts(t, s, queueNow.Add(time.Second), callevents.ActivityResult{Queued: 1, Accepted: 1, Duplicates: 1}, dial("call-1"), answer("call-1"))
	acceptCounts(t, s, queueNow.Add(time.Second), callevents.ActivityResult{Duplicates: 2}, answer("call-1"), again)
	// Another call, or the same call between other extensions, is new.
	acceptCounts(t, s, queueNow.Add(2*time.Second), callevents.ActivityResult{Queued: 2, Accepted: 1}, dial("call-2"))
	other := dial("call-1")
	other.CallerExtension = "0005*101"
	acceptCounts(t, s, queueNow.Add(2*time.Second), callevents.ActivityResult{Queued: 1, Accepted: 1}, other)

	ds, total := deliveries(t, s, callevents.DeliveryFilter{Extension: called})
	if total != 4 {
		t.Fatalf("%d deliveries for %s, want 4", total, called)
	}
	// The first report wins.
	if last := ds[len(ds)-1]; last.Payload != dial("call-1").ExtensionEvents()[1].Params.Encode() {
		t.Fatalf("payload %q is not the first report's", last.Payload)
	}
	// The key is callId, phase and both extensions: a change to any one
	// of them is a new activity, matched or not.
	for _, c := range []struct {
		change func(a *callevents.CallActivity)
		queued int
	}{
		{func(a *callevents.CallActivity) { a.CallID = "call-3" }, 2},
		{func(a *callevents.CallActivity) { a.Phase, a.Status = callevents.PhaseHangup, "BUSY" }, 0}, // no Hangup Call Event
		{func(a *callevents.CallActivity) { a.CalledExtension = "0005*201" }, 1},
	} {
		a := dial("call-1")
		c.change(&a)
		acceptCounts(t, s, queueNow.Add(3*time.Second), callevents.ActivityResult{Queued: c.queued, Accepted: 1}, a)
	}
}

func testAcceptNothingMatches(t *testing.T, s DeliveryStore) {
	// No Call Event matched: accepted all the same, with nothing queued,
	// which the PBX tells from a duplicate.
	acceptCounts(t, s, queueNow, callevents.ActivityResult{Accepted: 1}, dial("call-1"))
	// The activity was still accepted: a Call Event added since does not
	// make the same report fire.
	addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	acceptCounts(t, s, queueNow, callevents.ActivityResult{Duplicates: 1}, dial("call-1"))
	acceptCounts(t, s, queueNow, callevents.ActivityResult{})
	acceptCounts(t, s, queueNow, callevents.ActivityResult{Queued: 1, Accepted: 1}, dial("call-2"))
}

// testAcceptDuplicatesConcurrently has several requests report
// overlapping activities at once (a PBX retrying while the first attempt is
// still being stored): each activity is queued exactly once overall.
func testAcceptDuplicatesConcurrently(t *testing.T, s DeliveryStore) {
	addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	addCallEvent(t, s, called, callevents.DialIn, "https://called.example/in")
	const requests, calls = 8, 40
	start := make(chan struct{})
	results := make([]callevents.ActivityResult, requests)
	errs := make([]error, requests)
	var wg sync.WaitGroup
	for r := range requests {
		wg.Go(func() {
			// Each request holds half the calls, overlapping its neighbours.
			var acts []callevents.CallActivity
			for i := range calls / 2 {
				acts = append(acts, dial(fmt.Sprintf("call-%d", (r*calls/4+i)%calls)))
			}
			<-start
			results[r], errs[r] = s.AcceptActivity(context.Background(), acts, queueNow, nil)
		})
	}
	close(start)
	wg.Wait()
	var total callevents.ActivityResult
	for r := range requests {
		must(t, errs[r])
		if res := results[r]; res.Accepted+res.Duplicates != calls/2 || res.Queued != 2*res.Accepted {
			t.Fatalf("request %d of %d activities: %+v, want each accepted or a duplicate, 2 deliveries each accepted", r, calls/2, res)
		}
		total.Queued += results[r].Queued
		total.Accepted += results[r].Accepted
		total.Duplicates += results[r].Duplicates
	}
	// Each activity is accepted by exactly one request; the others count
	// it as a duplicate, whether it was stored before or in their own
	// transaction.
	if want := (callevents.ActivityResult{Queued: 2 * calls, Accepted: calls, Duplicates: requests*calls/2 - calls}); total != want {
		t.Fatalf("overlapping requests: %+v in all, want %+v", total, want)
	}
	if _, n := deliveries(t, s, callevents.DeliveryFilter{Extension: caller}); n != calls {
		t.Fatalf("%d deliveries stored for %s, want %d", n, caller, calls)
	}
}

func testClaimLeases(t *testing.T, s DeliveryStore) {
	ce := addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	for i := range 5 {
		accept(t, s, queueNow.Add(time.Duration(i)*time.Millisecond), 1, dial(fmt.Sprintf("call-%d", i)))
	}
	if got := claim(t, s, "w1", 5, queueNow.Add(-time.Microsecond)); len(got) != 0 {
		t.Fatalf("claimed %d deliveries before they were due", len(got))
	}
	if got := claim(t, s, "w1", 0, queueNow.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("claimed %d deliveries with n = 0", len(got))
	}
	// Due exactly at now; a millisecond later than the first, not due.
	first := claim(t, s, "w1", 5, queueNow)
	if len(first) != 1 || first[0].CallID != "call-0" {
		t.Fatalf("claimed %+v at the first one's due time, want call-0 only", first)
	}
	d := first[0]
	if d.Attempts != 1 || d.URL != ce.URL || d.Method != ce.Method || d.Secret != ce.Secret {
		t.Fatalf("claimed %+v, want attempt 1 with the Call Event's URL, method and secret", d)
	}
	if d.NextAttemptAt.Location() != time.UTC || !d.NextAttemptAt.Equal(queueNow) {
		t.Fatalf("claimed NextAttemptAt %v, want %v", d.NextAttemptAt, queueNow)
	}
	logged := wantState(t, s, caller, d.ID, callevents.DeliveryRunning)
	if logged.Attempts != 1 || logged.Secret != "" || logged.URL != "" {
		t.Fatalf("the log shows %+v: want 1 attempt and no secret or URL", logged)
	}
	// Oldest due first, at most n, never twice.
	later := queueNow.Add(time.Second)
	two := claim(t, s, "w2", 2, later)
	if len(two) != 2 || two[0].CallID != "call-1" || two[1].CallID != "call-2" {
		t.Fatalf("claimed %+v, want call-1 and call-2", two)
	}
	rest := claim(t, s, "w3", 10, later)
	if len(rest) != 2 || rest[0].CallID != "call-3" || rest[1].CallID != "call-4" {
		t.Fatalf("claimed %+v, want call-3 and call-4", rest)
	}
	if got := claim(t, s, "w1", 10, later.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("claimed %d running deliveries again", len(got))
	}
}

func testClaimOrdersByKey(t *testing.T, s DeliveryStore) {
	// Two Call Events on one receiver share the order key of a call; a
	// third on another receiver has its own.
	out := addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	hang := addCallEvent(t, s, caller, callevents.Hangup, "https://CALLER.example/hangup")
	other := addCallEvent(t, s, caller, callevents.Hangup, "https://elsewhere.example/hangup")
	accept(t, s, queueNow, 1, dial("call-1"))
	accept(t, s, queueNow, 2, hangup("call-1", "ANSWER"))
	accept(t, s, queueNow, 1, dial("call-2"))

	now := queueNow.Add(time.Minute)
	got := claim(t, s, "w1", 10, now)
	var kinds []string
	for _, d := range got {
		kinds = append(kinds, d.CallID+" "+d.CallEventID)
	}
	want := []string{"call-1 " + out.ID, "call-1 " + other.ID, "call-2 " + out.ID}
	if !slices.Equal(kinds, want) {
		t.Fatalf("claimed %v, want %v: the Hangup to caller.example waits for the Dial-Out", kinds, want)
	}
	dialOut := got[0]
	// Still held back while the Dial-Out is running, and while it waits
	// for a retry.
	if more := claim(t, s, "w2", 10, now); len(more) != 0 {
		t.Fatalf("claimed %d more while the first of the key was running", len(more))
	}
	o := outcome(dialOut, callevents.DeliveryPending, 503, "http_status", now)
	o.NextAttemptAt = now.Add(time.Minute)
	record(t, s, "w1", o)
	if more := claim(t, s, "w2", 10, now.Add(30*time.Second)); len(more) != 0 {
		t.Fatalf("claimed %d while the first of the key waited for its retry", len(more))
	}
	// Due again: the retry goes first, then the Hangup.
	retry := claim(t, s, "w2", 10, now.Add(time.Minute))
	if len(retry) != 1 || retry[0].ID != dialOut.ID || retry[0].Attempts != 2 {
		t.Fatalf("claimed %+v, want the retried Dial-Out alone, attempt 2", retry)
	}
	record(t, s, "w2", outcome(retry[0], callevents.DeliveryFailed, 500, "http_status", now.Add(time.Minute)))
	next := claim(t, s, "w2", 10, now.Add(time.Minute))
	if len(next) != 1 || next[0].CallEventID != hang.ID {
		t.Fatalf("claimed %+v after the Dial-Out failed, want the Hangup", next)
	}
}

// Two organizations' extensions on one call and one CRM host have an
// order key each: org 0003's failing Dial-Out does not hold back org
// 0004's Dial-In.
func testClaimOrdersPerExtension(t *testing.T, s DeliveryStore) {
	failing := addCallEvent(t, s, "0003*301", callevents.DialOut, "http://crm.example:8080/fails")
	working := addCallEvent(t, s, "0004*301", callevents.DialIn, "http://crm.example:8080/works")
	a := callevents.CallActivity{CallID: "call-x", Phase: callevents.PhaseDial, CallerExtension: "0003*301", CalledExtension: "0004*301", CalledNumber: "0004301"}
	accept(t, s, queueNow, 2, a)
	got := claim(t, s, "w1", 10, queueNow)
	if len(got) != 2 {
		t.Fatalf("claimed %d of the two organizations' deliveries, want both at once", len(got))
	}
	for _, d := range got {
		if d.Sequence != 1 {
			t.Fatalf("delivery of %s has sequence %d, want 1 (a key of its own)", d.Extension, d.Sequence)
		}
		next := callevents.DeliveryDelivered
		if d.CallEventID == failing.ID {
			next = callevents.DeliveryPending
		}
		o := outcome(d, next, 500, "http_status", queueNow)
		o.NextAttemptAt = queueNow.Add(5 * time.Second)
		record(t, s, "w1", o)
	}
	wantState(t, s, "0004*301", ofCallEvent(got, working.ID)[0].ID, callevents.DeliveryDelivered)
	// A later event of org 0004's call is not held back either.
	addCallEvent(t, s, "0004*301", callevents.AnswerIn, "http://crm.example:8080/works")
	accept(t, s, queueNow, 1, callevents.CallActivity{CallID: "call-x", Phase: callevents.PhaseAnswer, CallerExtension: "0003*301", CalledExtension: "0004*301", CalledNumber: "0004301"})
	if more := claim(t, s, "w1", 10, queueNow); len(more) != 1 || more[0].Extension != "0004*301" || more[0].Sequence != 2 {
		t.Fatalf("claimed %+v, want org 0004's Answer-In, sequence 2", more)
	}
}

// A delivery waits behind an unfinished earlier one of its key for at most
// the order hold, counted from when it became due; 0 waits without limit.
func testClaimOrderHold(t *testing.T, s DeliveryStore) {
	addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	addCallEvent(t, s, caller, callevents.Hangup, "https://caller.example/hangup")
	accept(t, s, queueNow, 1, dial("call-1"))
	accept(t, s, queueNow, 1, hangup("call-1", "ANSWER"))
	first := claim(t, s, "w1", 10, queueNow)
	if len(first) != 1 || first[0].Type != callevents.DialOut {
		t.Fatalf("claimed %+v, want the Dial-Out alone", first)
	}
	o := outcome(first[0], callevents.DeliveryPending, 500, "http_status", queueNow)
	o.NextAttemptAt = queueNow.Add(time.Hour)
	record(t, s, "w1", o)
	held := func(now time.Time, hold time.Duration) []callevents.Delivery {
		t.Helper()
		ds, err := s.ClaimDue(context.Background(), callevents.Claim{Worker: "w2", N: 10, Now: now, Lease: time.Minute, OrderHold: hold})
		if err != nil {
			t.Fatalf("ClaimDue: %v", err)
		}
		return ds
	}
	if got := held(queueNow.Add(59*time.Second), time.Minute); len(got) != 0 {
		t.Fatalf("claimed %d within the hold", len(got))
	}
	if got := held(queueNow.Add(2*time.Hour), 0); len(got) != 1 || got[0].Type != callevents.DialOut {
		// Hold 0: the Hangup waits without limit, behind the retry due now.
		t.Fatalf("hold 0: claimed %+v, want the retried Dial-Out alone", got)
	} else {
		o := outcome(got[0], callevents.DeliveryPending, 500, "http_status", queueNow)
		o.NextAttemptAt = queueNow.Add(3 * time.Hour)
		record(t, s, "w2", o)
	}
	if got := held(queueNow.Add(2*time.Hour), 0); len(got) != 0 {
		t.Fatalf("hold 0: claimed %d while the Dial-Out waits for its retry", len(got))
	}
	got := held(queueNow.Add(time.Minute), time.Minute)
	if len(got) != 1 || got[0].Type != callevents.Hangup || got[0].Sequence != 2 {
		t.Fatalf("after the hold: claimed %+v, want the Hangup, sequence 2", got)
	}
}

// A claim takes at most an origin's room, and passes over the origins with
// none, leaving their deliveries pending and their attempts unspent.
func testClaimRoomPerOrigin(t *testing.T, s DeliveryStore) {
	addCallEvent(t, s, caller, callevents.DialOut, "http://busy.example/out")
	addCallEvent(t, s, called, callevents.DialIn, "http://quiet.example/in")
	// Five calls: five Dial-Outs to busy, then five Dial-Ins to quiet, all
	// due at once and each its own key.
	for i := range 5 {
		accept(t, s, queueNow, 2, dial(fmt.Sprintf("call-%d", i)))
	}
	count := func(ds []callevents.Delivery) map[string]int {
		out := map[string]int{}
		for _, d := range ds {
			out[callevents.Origin(d.URL)]++
			if d.Attempts != 1 {
				t.Fatalf("delivery %s claimed as attempt %d, want 1", d.ID, d.Attempts)
			}
		}
		return out
	}
	c := callevents.Claim{Worker: "w1", N: 10, Now: queueNow, Lease: time.Minute, DefaultRoom: 2,
		Room: map[string]int{"http://busy.example": 1}, PassOver: true}
	ds, err := s.ClaimDue(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if got := count(ds); got["http://busy.example"] != 1 || got["http://quiet.example"] != 2 || len(ds) != 3 {
		t.Fatalf("claimed %v, want 1 of busy (its room) and 2 of quiet (the default room)", got)
	}
	c.Room = map[string]int{"http://busy.example": 0}
	c.DefaultRoom = 0
	ds, err = s.ClaimDue(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if got := count(ds); got["http://busy.example"] != 0 || got["http://quiet.example"] != 3 {
		t.Fatalf("claimed %v, want quiet's other 3 and none of busy (no room)", got)
	}
	pending, _ := deliveries(t, s, callevents.DeliveryFilter{Extension: caller, State: callevents.DeliveryPending})
	if len(pending) != 4 {
		t.Fatalf("%d of busy's deliveries pending, want the 4 passed over", len(pending))
	}
	for _, d := range pending {
		if d.Attempts != 0 {
			t.Fatalf("passed-over delivery %s spent %d attempts", d.ID, d.Attempts)
		}
	}
	// Without PassOver a claim reads only the oldest due rows, as many as
	// there is room for: busy's backlog, so quiet's newer one waits for a
	// claim that passes over.
	accept(t, s, queueNow, 2, dial("call-5"))
	c = callevents.Claim{Worker: "w1", N: 10, Now: queueNow, Lease: time.Minute, DefaultRoom: 2, Room: map[string]int{"http://busy.example": 0}}
	if ds, err = s.ClaimDue(context.Background(), c); err != nil || len(ds) != 0 {
		t.Fatalf("without PassOver: claimed %d, %v; want none (the oldest due are busy's)", len(ds), err)
	}
	c.PassOver = true
	if ds, err = s.ClaimDue(context.Background(), c); err != nil || len(ds) != 1 || ds[0].CallID != "call-5" {
		t.Fatalf("with PassOver: claimed %+v, %v; want quiet's call-5", ds, err)
	}
}

// A paused receiver (one organization's deliveries to one origin) gives
// the claim none of its deliveries, or as many as allowed (a probe), while
// another organization's deliveries to the same origin are claimed.
func testClaimPausedReceiver(t *testing.T, s DeliveryStore) {
	addCallEvent(t, s, "0003*301", callevents.DialOut, "http://crm.example/org3")
	addCallEvent(t, s, "0004*301", callevents.DialIn, "http://crm.example/org4")
	for i := range 4 {
		accept(t, s, queueNow, 2, callevents.CallActivity{CallID: fmt.Sprintf("call-%d", i), Phase: callevents.PhaseDial,
			CallerExtension: "0003*301", CalledExtension: "0004*301", CalledNumber: "0004301"})
	}
	org3 := callevents.PausedReceiver{Organization: "0003", Origin: "http://crm.example"}
	for _, passOver := range []bool{false, true} {
		c := callevents.Claim{Worker: "w1", N: 2, Now: queueNow, Lease: time.Minute, Paused: map[callevents.PausedReceiver]int{org3: 0}, PassOver: passOver}
		ds, err := s.ClaimDue(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Extension != "0004*301" {
				t.Fatalf("PassOver %v: claimed %s's delivery while its receiver is paused", passOver, d.Extension)
			}
		}
		if passOver && len(ds) != 2 {
			t.Fatalf("PassOver: claimed %d of org 0004's, want 2 past org 0003's paused ones", len(ds))
		}
	}
	c := callevents.Claim{Worker: "w1", N: 10, Now: queueNow, Lease: time.Minute, Paused: map[callevents.PausedReceiver]int{org3: 1}, PassOver: true}
	ds, err := s.ClaimDue(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	n3 := 0
	for _, d := range ds {
		if d.Extension == "0003*301" {
			n3++
		}
	}
	if n3 != 1 {
		t.Fatalf("claimed %d of org 0003's deliveries with room for a probe, want 1 (of %d claimed)", n3, len(ds))
	}
}

// Each delivery has its place within its order key, 1, 2, 3 in acceptance
// order, kept on every attempt and on a resend.
func testSequences(t *testing.T, s DeliveryStore) {
	addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	addCallEvent(t, s, caller, callevents.Hangup, "https://caller.example/hangup")
	addCallEvent(t, s, caller, callevents.AnswerOut, "https://caller.example/answer")
	accept(t, s, queueNow, 1, dial("call-1"))
	accept(t, s, queueNow, 1, dial("call-2"))
	accept(t, s, queueNow, 2, answer("call-1"), hangup("call-1", "ANSWER"))
	all, _ := deliveries(t, s, callevents.DeliveryFilter{Extension: caller})
	got := map[string][]int{}
	for i := len(all) - 1; i >= 0; i-- { // oldest first
		got[all[i].CallID] = append(got[all[i].CallID], all[i].Sequence)
	}
	if !slices.Equal(got["call-1"], []int{1, 2, 3}) || !slices.Equal(got["call-2"], []int{1}) {
		t.Fatalf("sequences %v, want call-1 1, 2, 3 and call-2 1", got)
	}
	now := queueNow
	for range 5 {
		for _, d := range claim(t, s, "w1", 10, now) {
			if d.CallID == "call-1" && d.Type == callevents.DialOut && d.Attempts == 1 {
				o := outcome(d, callevents.DeliveryPending, 500, "http_status", now)
				o.NextAttemptAt = now
				record(t, s, "w1", o)
				continue
			}
			record(t, s, "w1", outcome(d, callevents.DeliveryDelivered, 200, "", now))
		}
	}
	for _, d := range mustFind(t, s) {
		if d.State != callevents.DeliveryDelivered {
			t.Fatalf("delivery %s is %s, want delivered", d.ID, d.State)
		}
		if d.CallID == "call-1" && d.Type == callevents.Hangup {
			resent, err := s.ResendDelivery(context.Background(), caller, d.ID, now)
			if err != nil {
				t.Fatal(err)
			}
			if resent.Sequence != 3 {
				t.Fatalf("resent delivery has sequence %d, want 3 as before", resent.Sequence)
			}
			again := claim(t, s, "w1", 10, now)
			if len(again) != 1 || again[0].Sequence != 3 {
				t.Fatalf("claimed %+v after the resend, want the Hangup with sequence 3", again)
			}
		}
	}
}

// Accepts of one call's events running at once each take a place of their
// own: the places are 1..n, none twice, none missing.
func testSequencesConcurrently(t *testing.T, s DeliveryStore) {
	addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := dial("call-1")
			a.CalledExtension = fmt.Sprintf("0005*%d", 300+i) // a distinct activity each
			if _, err := s.AcceptActivity(context.Background(), []callevents.CallActivity{a}, queueNow, nil); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("AcceptActivity: %v", err)
	}
	all, _ := deliveries(t, s, callevents.DeliveryFilter{Extension: caller})
	var seqs []int
	for _, d := range all {
		seqs = append(seqs, d.Sequence)
	}
	slices.Sort(seqs)
	want := make([]int, n)
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(seqs, want) {
		t.Fatalf("sequences %v, want 1..%d", seqs, n)
	}
}

func testRecordAttempt(t *testing.T, s DeliveryStore) {
	addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	for i := range 3 {
		accept(t, s, queueNow, 1, dial(fmt.Sprintf("call-%d", i)))
	}
	ds := claim(t, s, "w1", 3, queueNow)
	at := queueNow.Add(time.Second + 654321*time.Microsecond)
	for i, next := range []callevents.DeliveryState{callevents.DeliveryDelivered, callevents.DeliveryFailed, callevents.DeliveryCancelled} {
		o := outcome(ds[i], next, 200+i, fmt.Sprintf("class-%d", i), at.In(elsewhere))
		record(t, s, "w1", o)
		got := wantState(t, s, caller, ds[i].ID, next)
		want := ds[i]
		want.URL, want.Method, want.Secret = "", 0, ""
		want.State, want.Finished, want.LastStatus, want.LastError = next, at, 200+i, fmt.Sprintf("class-%d", i)
		want.History = []callevents.DeliveryAttempt{{Attempt: 1, At: at, StatusCode: 200 + i, ErrorClass: fmt.Sprintf("class-%d", i), Latency: 1500 * time.Microsecond}}
		sameDelivery(t, got, want)
		// A second report of the same attempt changes nothing.
		o.Attempt.StatusCode = 299
		record(t, s, "w1", o)
		sameDelivery(t, delivery(t, s, caller, ds[i].ID), want)
	}
	if err := s.RecordAttempts(context.Background(), "w1", []callevents.AttemptOutcome{{DeliveryID: "dlv_nosuchdelivery", Next: callevents.DeliveryDelivered}}); err != nil {
		t.Fatalf("RecordAttempts of an unknown delivery: %v", err)
	}
}

func testRecordAttemptNeedsTheLease(t *testing.T, s DeliveryStore) {
	addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	accept(t, s, queueNow, 1, dial("call-1"))
	d := claim(t, s, "w1", 1, queueNow)[0]
	record(t, s, "w2", outcome(d, callevents.DeliveryDelivered, 200, "", queueNow))
	if got := wantState(t, s, caller, d.ID, callevents.DeliveryRunning); len(got.History) != 0 {
		t.Fatalf("another worker's attempt was recorded: %+v", got.History)
	}
	// The lease expires and the delivery goes to w2: w1's report is late.
	if n, err := s.RescueExpired(context.Background(), queueNow.Add(2*time.Minute)); err != nil || n != 1 {
		t.Fatalf("RescueExpired = %d, %v; want 1", n, err)
	}
	d2 := claim(t, s, "w2", 1, queueNow.Add(2*time.Minute))[0]
	record(t, s, "w1", outcome(d, callevents.DeliveryDelivered, 200, "", queueNow.Add(2*time.Minute)))
	if got := wantState(t, s, caller, d.ID, callevents.DeliveryRunning); len(got.History) != 0 || got.Attempts != 2 {
		t.Fatalf("the late report was recorded: %+v", got)
	}
	record(t, s, "w2", outcome(d2, callevents.DeliveryDelivered, 204, "", queueNow.Add(3*time.Minute)))
	if got := wantState(t, s, caller, d.ID, callevents.DeliveryDelivered); len(got.History) != 1 || got.History[0].Attempt != 2 {
		t.Fatalf("history %+v, want w2's attempt 2 alone", got.History)
	}
}

// testRecordAttemptsBatch reports several outcomes at once: each applies
// on its own terms, and a batch with an invalid one stores nothing.
func testRecordAttemptsBatch(t *testing.T, s DeliveryStore) {
	ctx := context.Background()
	ce := addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	gone := addCallEvent(t, s, called, callevents.DialIn, "https://gone.example/in")
	accept(t, s, queueNow, 6, dial("call-1"), dial("call-2"), dial("call-3"))
	mine := claim(t, s, "w1", 5, queueNow)
	theirs := claim(t, s, "w2", 1, queueNow)
	if len(mine) != 5 || len(theirs) != 1 {
		t.Fatalf("claimed %d and %d, want 5 and 1", len(mine), len(theirs))
	}
	// mine: call-1 out, call-1 in, call-2 out, call-2 in, call-3 out.
	at := queueNow.Add(time.Second)
	retry := outcome(mine[2], callevents.DeliveryPending, 503, "http_status", at)
	retry.NextAttemptAt = at.Add(time.Minute)
	gone410 := outcome(mine[1], callevents.DeliveryCancelled, 410, "gone", at)
	gone410.DisableCallEvent = true
	invalid := outcome(mine[4], callevents.DeliveryRunning, 200, "", at)
	err := s.RecordAttempts(ctx, "w1", []callevents.AttemptOutcome{outcome(mine[0], callevents.DeliveryDelivered, 200, "", at), invalid})
	if err == nil {
		t.Fatal("a batch with next state running was accepted")
	}
	wantState(t, s, caller, mine[0].ID, callevents.DeliveryRunning)

	must(t, s.RecordAttempts(ctx, "w1", []callevents.AttemptOutcome{
		outcome(mine[0], callevents.DeliveryDelivered, 200, "", at),
		gone410,
		retry,
		outcome(theirs[0], callevents.DeliveryDelivered, 200, "", at), // w2's: skipped
		{DeliveryID: "dlv_nosuchdeliverynosuchdeliv", Next: callevents.DeliveryFailed},
		outcome(mine[4], callevents.DeliveryFailed, 500, "http_status", at),
	}))
	must(t, s.RecordAttempts(ctx, "w1", nil))
	wantState(t, s, caller, mine[0].ID, callevents.DeliveryDelivered)
	wantState(t, s, called, mine[1].ID, callevents.DeliveryCancelled)
	if d := wantState(t, s, caller, mine[2].ID, callevents.DeliveryPending); !d.NextAttemptAt.Equal(retry.NextAttemptAt) {
		t.Fatalf("retry at %v, want %v", d.NextAttemptAt, retry.NextAttemptAt)
	}
	wantState(t, s, caller, mine[4].ID, callevents.DeliveryFailed)
	// w2's is untouched, then the Call Event is disabled, its other
	// delivery (call-2 in, still running) left to finish.
	if d := wantState(t, s, theirs[0].Extension, theirs[0].ID, callevents.DeliveryRunning); len(d.History) != 0 {
		t.Fatalf("w2's delivery got w1's attempt: %+v", d.History)
	}
	if c := findOne(t, s, gone); c.Status != callevents.StatusDisabled {
		t.Fatal("the 410 in a batch did not disable its Call Event")
	}
	wantState(t, s, called, mine[3].ID, callevents.DeliveryRunning)
	if c := findOne(t, s, ce); c.Status != callevents.StatusEnabled {
		t.Fatal("another Call Event was disabled")
	}
}

func testRetryLater(t *testing.T, s DeliveryStore) {
	addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	accept(t, s, queueNow, 1, dial("call-1"))
	d := claim(t, s, "w1", 1, queueNow)[0]
	retryAt := queueNow.Add(5*time.Second + 250*time.Millisecond)
	o := outcome(d, callevents.DeliveryPending, 0, "timeout", queueNow.Add(10*time.Second))
	o.NextAttemptAt = retryAt
	record(t, s, "w1", o)
	got := wantState(t, s, caller, d.ID, callevents.DeliveryPending)
	if !got.NextAttemptAt.Equal(retryAt) || !got.Finished.IsZero() || got.LastError != "timeout" || got.Attempts != 1 {
		t.Fatalf("after a retryable failure: %+v", got)
	}
	if early := claim(t, s, "w1", 1, retryAt.Add(-time.Microsecond)); len(early) != 0 {
		t.Fatal("claimed before the retry was due")
	}
	again := claim(t, s, "w2", 1, retryAt)
	if len(again) != 1 || again[0].Attempts != 2 {
		t.Fatalf("claimed %+v at the retry time, want attempt 2", again)
	}
	// Without an attempt number, the store counts it from the claims.
	o = outcome(again[0], callevents.DeliveryDelivered, 200, "", retryAt.Add(time.Second))
	o.Attempt.Attempt = 0
	record(t, s, "w2", o)
	got = wantState(t, s, caller, d.ID, callevents.DeliveryDelivered)
	if len(got.History) != 2 || got.History[0].ErrorClass != "timeout" || got.History[1].StatusCode != 200 || got.LastError != "" || got.LastStatus != 200 {
		t.Fatalf("after the retry: %+v", got)
	}
	if got.History[0].Attempt != 1 || got.History[1].Attempt != 2 || !got.NextAttemptAt.Equal(retryAt) {
		t.Fatalf("after the retry: attempts %+v, next attempt %v", got.History, got.NextAttemptAt)
	}
}

func testReleaseClaims(t *testing.T, s DeliveryStore) {
	addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	accept(t, s, queueNow, 3, dial("call-1"), dial("call-2"), dial("call-3"))
	ds := claim(t, s, "w1", 3, queueNow)
	ctx := context.Background()
	// Only w1's own, only those named.
	must(t, s.ReleaseClaims(ctx, "w2", []string{ds[0].ID, ds[1].ID}))
	must(t, s.ReleaseClaims(ctx, "w1", []string{ds[0].ID, ds[1].ID, "dlv_nosuchdelivery"}))
	must(t, s.ReleaseClaims(ctx, "w1", nil))
	for i, want := range []callevents.DeliveryState{callevents.DeliveryPending, callevents.DeliveryPending, callevents.DeliveryRunning} {
		got := wantState(t, s, caller, ds[i].ID, want)
		if want == callevents.DeliveryPending && got.Attempts != 0 {
			t.Fatalf("a released delivery counts %d attempts, want 0", got.Attempts)
		}
	}
	// Due at once, in their old places.
	again := claim(t, s, "w2", 3, queueNow)
	if len(again) != 2 || again[0].ID != ds[0].ID || again[1].ID != ds[1].ID || again[0].Attempts != 1 {
		t.Fatalf("claimed %+v after the release", again)
	}
	// w1 lost them: its report does nothing.
	record(t, s, "w1", outcome(ds[0], callevents.DeliveryDelivered, 200, "", queueNow))
	wantState(t, s, caller, ds[0].ID, callevents.DeliveryRunning)
}

func testRescueExpired(t *testing.T, s DeliveryStore) {
	addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	accept(t, s, queueNow, 2, dial("call-1"), dial("call-2"))
	ctx := context.Background()
	early, err := s.ClaimDue(ctx, callevents.Claim{Worker: "w1", N: 1, Now: queueNow, Lease: 30 * time.Second})
	must(t, err)
	late, err := s.ClaimDue(ctx, callevents.Claim{Worker: "w2", N: 1, Now: queueNow.Add(10 * time.Second), Lease: 30 * time.Second})
	must(t, err)
	for _, c := range []struct {
		now  time.Time
		want int
	}{{queueNow.Add(30 * time.Second), 0}, {queueNow.Add(30*time.Second + time.Microsecond), 1}, {queueNow.Add(time.Hour), 1}, {queueNow.Add(time.Hour), 0}} {
		n, err := s.RescueExpired(ctx, c.now)
		must(t, err)
		if n != c.want {
			t.Fatalf("RescueExpired(%v) = %d, want %d", c.now, n, c.want)
		}
	}
	for _, d := range []callevents.Delivery{early[0], late[0]} {
		// The attempt stays counted: it may have reached the receiver.
		if got := wantState(t, s, caller, d.ID, callevents.DeliveryPending); got.Attempts != 1 {
			t.Fatalf("a rescued delivery counts %d attempts, want 1", got.Attempts)
		}
	}
	again := claim(t, s, "w3", 5, queueNow.Add(time.Hour))
	if len(again) != 2 || again[0].ID != early[0].ID || again[0].Attempts != 2 {
		t.Fatalf("claimed %+v after the rescue", again)
	}
}

func testGone410(t *testing.T, s DeliveryStore) {
	ctx := context.Background()
	gone := addCallEvent(t, s, caller, callevents.DialOut, "https://gone.example/out")
	bystander := addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	accept(t, s, queueNow, 6, dial("call-1"), dial("call-2"), dial("call-3"))
	ds := claim(t, s, "w1", 6, queueNow)
	var mine, others []callevents.Delivery
	for _, d := range ds {
		if d.CallEventID == gone.ID {
			mine = append(mine, d)
		} else {
			others = append(others, d)
		}
	}
	// Put the gone one's third delivery back as pending.
	must(t, s.ReleaseClaims(ctx, "w1", []string{mine[2].ID}))
	at := queueNow.Add(time.Second)
	o := outcome(mine[0], callevents.DeliveryCancelled, 410, "gone", at)
	o.DisableCallEvent = true
	record(t, s, "w1", o)

	ce := findOne(t, s, gone)
	if ce.Status != callevents.StatusDisabled || !ce.Modified.Equal(at.Truncate(time.Second)) {
		t.Fatalf("after a 410 the Call Event is %+v, want disabled, modified %v", ce, at.Truncate(time.Second))
	}
	got := wantState(t, s, caller, mine[0].ID, callevents.DeliveryCancelled)
	if got.LastStatus != 410 || len(got.History) != 1 {
		t.Fatalf("the 410 attempt: %+v", got)
	}
	// The pending one is cancelled; the running one finishes.
	if got := wantState(t, s, caller, mine[2].ID, callevents.DeliveryCancelled); !got.Finished.Equal(at) {
		t.Fatalf("cancelled at %v, want %v", got.Finished, at)
	}
	wantState(t, s, caller, mine[1].ID, callevents.DeliveryRunning)
	record(t, s, "w1", outcome(mine[1], callevents.DeliveryDelivered, 200, "", at))
	wantState(t, s, caller, mine[1].ID, callevents.DeliveryDelivered)
	for _, d := range others {
		wantState(t, s, caller, d.ID, callevents.DeliveryRunning)
	}
	if findOne(t, s, bystander).Status != callevents.StatusEnabled {
		t.Fatal("another Call Event was disabled")
	}
}

func testDisableCancelsPending(t *testing.T, s DeliveryStore) {
	ctx := context.Background()
	ce := addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	bystander := addCallEvent(t, s, caller, callevents.DialOut, "https://other.example/out")
	accept(t, s, queueNow, 2, dial("call-1"))
	running := claim(t, s, "w1", 2, queueNow)
	accept(t, s, queueNow, 4, dial("call-2"), dial("call-3"))

	// An update that leaves it enabled cancels nothing.
	_, err := s.UpdateCallEvent(ctx, caller, ce.Type, ce.ID, callevents.CallEventUpdate{Note: ptr("still on")}, base.Add(time.Hour))
	must(t, err)
	ds, _ := deliveries(t, s, callevents.DeliveryFilter{Extension: caller, CallEventID: ce.ID, State: callevents.DeliveryPending})
	if len(ds) != 2 {
		t.Fatalf("%d pending after an update, want 2", len(ds))
	}
	disabledAt := base.Add(2 * time.Hour)
	_, err = s.UpdateCallEvent(ctx, caller, ce.Type, ce.ID, callevents.CallEventUpdate{Status: ptr(callevents.StatusDisabled)}, disabledAt)
	must(t, err)
	for _, d := range ds {
		if got := wantState(t, s, caller, d.ID, callevents.DeliveryCancelled); !got.Finished.Equal(disabledAt) {
			t.Fatalf("cancelled at %v, want %v", got.Finished, disabledAt)
		}
	}
	for _, d := range running {
		wantState(t, s, caller, d.ID, callevents.DeliveryRunning)
		record(t, s, "w1", outcome(d, callevents.DeliveryDelivered, 200, "", queueNow))
		wantState(t, s, caller, d.ID, callevents.DeliveryDelivered)
	}
	if ds, _ := deliveries(t, s, callevents.DeliveryFilter{Extension: caller, CallEventID: bystander.ID, State: callevents.DeliveryPending}); len(ds) != 2 {
		t.Fatalf("the other Call Event has %d pending, want 2", len(ds))
	}
	// Enabling again brings nothing back.
	_, err = s.UpdateCallEvent(ctx, caller, ce.Type, ce.ID, callevents.CallEventUpdate{Status: ptr(callevents.StatusEnabled)}, disabledAt)
	must(t, err)
	if ds, _ := deliveries(t, s, callevents.DeliveryFilter{Extension: caller, CallEventID: ce.ID, State: callevents.DeliveryPending}); len(ds) != 0 {
		t.Fatalf("%d pending after enabling again, want 0", len(ds))
	}
}

func testDeleteCancelsPending(t *testing.T, s DeliveryStore) {
	out := addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	hang := addCallEvent(t, s, caller, callevents.Hangup, "https://caller.example/hangup")
	in := addCallEvent(t, s, called, callevents.DialIn, "https://called.example/in")
	accept(t, s, queueNow, 2, dial("call-1"))
	running := claim(t, s, "w1", 10, queueNow)
	accept(t, s, queueNow, 2, dial("call-2"))
	accept(t, s, queueNow, 1, hangup("call-2", "")) // no Hangup Call Event on called

	deleteCallEvents(t, s, callevents.CallEventFilter{Extension: caller}, out.ID, hang.ID)
	ds, _ := deliveries(t, s, callevents.DeliveryFilter{Extension: caller})
	for _, d := range ds {
		want := callevents.DeliveryCancelled
		if d.CallID == "call-1" {
			want = callevents.DeliveryRunning
		}
		if d.State != want {
			t.Fatalf("delivery %s of %s is %s after the delete, want %s", d.ID, d.CallID, d.State, want)
		}
	}
	if len(ds) != 3 {
		t.Fatalf("the log keeps %d deliveries of deleted Call Events, want 3", len(ds))
	}
	if ds, _ := deliveries(t, s, callevents.DeliveryFilter{Extension: called, CallEventID: in.ID, State: callevents.DeliveryPending}); len(ds) != 1 {
		t.Fatalf("the other extension has %d pending, want 1", len(ds))
	}
	for _, d := range running {
		record(t, s, "w1", outcome(d, callevents.DeliveryDelivered, 200, "", queueNow))
	}
	wantState(t, s, caller, ofCallEvent(running, out.ID)[0].ID, callevents.DeliveryDelivered)
}

func testClaimCancelsOrphans(t *testing.T, s DeliveryStore) {
	ctx := context.Background()
	gone := addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/gone")
	off := addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/off")
	accept(t, s, queueNow, 2, dial("call-1"))
	// A later delivery of the same receiver and call, held back by them.
	hang := addCallEvent(t, s, caller, callevents.Hangup, "https://caller.example/hangup")
	accept(t, s, queueNow, 1, hangup("call-1", "BUSY"))
	first := claim(t, s, "w1", 10, queueNow)
	if len(first) != 1 || first[0].CallEventID != gone.ID {
		t.Fatalf("claimed %+v, want the first Dial-Out", first)
	}
	// While running, one Call Event is deleted and the other disabled; the
	// retry and a resend bring their deliveries back as pending.
	deleteCallEvents(t, s, callevents.CallEventFilter{Extension: caller, ID: &gone.ID}, gone.ID)
	o := outcome(first[0], callevents.DeliveryPending, 500, "http_status", queueNow)
	o.NextAttemptAt = queueNow.Add(time.Minute)
	record(t, s, "w1", o)
	second := claim(t, s, "w1", 10, queueNow)
	if len(second) != 0 {
		t.Fatalf("claimed %+v while the retry holds the key", second)
	}
	_, err := s.UpdateCallEvent(ctx, caller, off.Type, off.ID, callevents.CallEventUpdate{Status: ptr(callevents.StatusDisabled)}, base)
	must(t, err)

	now := queueNow.Add(time.Minute)
	got := claim(t, s, "w1", 10, now)
	if len(got) != 1 || got[0].CallEventID != hang.ID {
		t.Fatalf("claimed %+v, want only the Hangup, behind the cancelled ones", got)
	}
	if d := wantState(t, s, caller, first[0].ID, callevents.DeliveryCancelled); !d.Finished.Equal(now) || d.Attempts != 1 {
		t.Fatalf("the orphan: %+v", d)
	}
	wantState(t, s, caller, ofCallEvent(mustFind(t, s), off.ID)[0].ID, callevents.DeliveryCancelled)

	// Resent while its Call Event is disabled: cancelled at the claim.
	record(t, s, "w1", outcome(got[0], callevents.DeliveryDelivered, 200, "", now))
	_, err = s.UpdateCallEvent(ctx, caller, hang.Type, hang.ID, callevents.CallEventUpdate{Status: ptr(callevents.StatusDisabled)}, base)
	must(t, err)
	_, err = s.ResendDelivery(ctx, caller, got[0].ID, now)
	must(t, err)
	if again := claim(t, s, "w1", 10, now); len(again) != 0 {
		t.Fatalf("claimed %+v for a disabled Call Event", again)
	}
	wantState(t, s, caller, got[0].ID, callevents.DeliveryCancelled)
}

func mustFind(t *testing.T, s DeliveryStore) []callevents.Delivery {
	t.Helper()
	ds, _ := deliveries(t, s, callevents.DeliveryFilter{Extension: caller})
	return ds
}

func testResend(t *testing.T, s DeliveryStore) {
	ctx := context.Background()
	ce := addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	accept(t, s, queueNow, 4, dial("call-1"), dial("call-2"), dial("call-3"), dial("call-4"))
	ds := claim(t, s, "w1", 3, queueNow)
	record(t, s, "w1", outcome(ds[0], callevents.DeliveryDelivered, 200, "", queueNow))
	record(t, s, "w1", outcome(ds[1], callevents.DeliveryFailed, 500, "http_status", queueNow))
	pending := mustFind(t, s)[0] // call-4, newest first

	for name, id := range map[string]string{"pending": pending.ID, "running": ds[2].ID} {
		_, err := s.ResendDelivery(ctx, caller, id, queueNow)
		wantCode(t, err, callevents.CodeMalformedRequest)
		if callevents.ErrorMessage(err) == "" {
			t.Fatalf("%s: no message", name)
		}
	}
	_, err := s.ResendDelivery(ctx, caller, "dlv_nosuchdeliverynosuchdeliv", queueNow)
	wantCode(t, err, callevents.CodeDeliveryNotFound)
	_, err = s.ResendDelivery(ctx, called, ds[0].ID, queueNow)
	wantCode(t, err, callevents.CodeDeliveryNotFound)

	resendAt := queueNow.Add(time.Hour)
	for _, d := range ds[:2] {
		before := delivery(t, s, caller, d.ID)
		got, err := s.ResendDelivery(ctx, caller, d.ID, resendAt.In(elsewhere))
		must(t, err)
		want := before
		want.State, want.NextAttemptAt, want.Finished = callevents.DeliveryPending, resendAt, time.Time{}
		sameDelivery(t, got, want)
		sameDelivery(t, delivery(t, s, caller, d.ID), want)
		// Again while it is pending: 400.
		_, err = s.ResendDelivery(ctx, caller, d.ID, resendAt)
		wantCode(t, err, callevents.CodeMalformedRequest)
	}
	// Claimed again, it counts on from its attempts.
	again := claim(t, s, "w1", 10, resendAt)
	if len(again) != 3 || again[0].ID != pending.ID || again[1].ID != ds[0].ID || again[1].Attempts != 2 || again[1].URL != ce.URL {
		t.Fatalf("claimed %+v after the resend", again)
	}
	record(t, s, "w1", outcome(again[1], callevents.DeliveryDelivered, 201, "", resendAt))
	if got := delivery(t, s, caller, ds[0].ID); len(got.History) != 2 || got.History[1].Attempt != 2 {
		t.Fatalf("history after the resend: %+v", got.History)
	}
	// A cancelled delivery is not resent.
	record(t, s, "w1", outcome(again[2], callevents.DeliveryCancelled, 410, "gone", resendAt))
	_, err = s.ResendDelivery(ctx, caller, again[2].ID, resendAt)
	wantCode(t, err, callevents.CodeMalformedRequest)
}

func testFindDeliveries(t *testing.T, s DeliveryStore) {
	a := addCallEvent(t, s, caller, callevents.DialOut, "https://a.example/")
	b := addCallEvent(t, s, caller, callevents.DialOut, "https://b.example/")
	addCallEvent(t, s, called, callevents.DialIn, "https://c.example/")
	for i := range 6 {
		accept(t, s, queueNow.Add(time.Duration(i)*time.Second), 3, dial(fmt.Sprintf("call-%d", i)))
	}
	all, total := deliveries(t, s, callevents.DeliveryFilter{Extension: caller})
	if total != 12 || len(all) != 12 {
		t.Fatalf("%d deliveries (total %d), want 12", len(all), total)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Created.After(all[i-1].Created) || (all[i].Created.Equal(all[i-1].Created) && all[i].CallEventID != a.ID) {
			t.Fatalf("not newest first: %d %+v after %+v", i, all[i], all[i-1])
		}
	}
	for _, p := range []struct{ offset, limit, from, to int }{{0, 5, 0, 5}, {5, 5, 5, 10}, {10, 5, 10, 12}, {12, 5, 12, 12}, {100, 5, 12, 12}, {3, 0, 3, 12}} {
		page, total := deliveries(t, s, callevents.DeliveryFilter{Extension: caller, Offset: p.offset, Limit: p.limit})
		if total != 12 || len(page) != p.to-p.from {
			t.Fatalf("offset %d limit %d: %d items, total %d", p.offset, p.limit, len(page), total)
		}
		for i := range page {
			if page[i].ID != all[p.from+i].ID {
				t.Fatalf("offset %d limit %d: item %d is %s, want %s", p.offset, p.limit, i, page[i].ID, all[p.from+i].ID)
			}
		}
	}
	// Make some of b's finished with a history.
	ds := claim(t, s, "w1", 12, queueNow.Add(time.Hour))
	for _, d := range ofCallEvent(ds, b.ID)[:2] {
		record(t, s, "w1", outcome(d, callevents.DeliveryDelivered, 200, "", queueNow.Add(time.Hour)))
	}
	for _, c := range []struct {
		name string
		f    callevents.DeliveryFilter
		want int
	}{
		{"call event", callevents.DeliveryFilter{Extension: caller, CallEventID: b.ID}, 6},
		{"call id", callevents.DeliveryFilter{Extension: caller, CallID: "call-3"}, 2},
		{"state", callevents.DeliveryFilter{Extension: caller, State: callevents.DeliveryDelivered}, 2},
		{"state paged", callevents.DeliveryFilter{Extension: caller, State: callevents.DeliveryRunning, Offset: 1, Limit: 3}, 6},
		{"all three", callevents.DeliveryFilter{Extension: caller, CallEventID: b.ID, CallID: "call-0", State: callevents.DeliveryDelivered}, 1},
		{"other extension", callevents.DeliveryFilter{Extension: called}, 6},
		{"call event of another extension", callevents.DeliveryFilter{Extension: called, CallEventID: b.ID}, 0},
		{"no deliveries", callevents.DeliveryFilter{Extension: "0005*999"}, 0},
	} {
		page, total := deliveries(t, s, c.f)
		if total != c.want {
			t.Fatalf("%s: total %d, want %d", c.name, total, c.want)
		}
		for _, d := range page {
			if (c.f.CallEventID != "" && d.CallEventID != c.f.CallEventID) || (c.f.CallID != "" && d.CallID != c.f.CallID) ||
				(c.f.State != "" && d.State != c.f.State) || d.Extension != c.f.Extension {
				t.Fatalf("%s: %+v does not match", c.name, d)
			}
			if d.State == callevents.DeliveryDelivered && (len(d.History) != 1 || d.History[0].StatusCode != 200) {
				t.Fatalf("%s: history %+v", c.name, d.History)
			}
			if d.State == callevents.DeliveryRunning && len(d.History) != 0 {
				t.Fatalf("%s: history %+v of a %s delivery", c.name, d.History, d.State)
			}
		}
	}
}

func testCleanFinished(t *testing.T, s DeliveryStore) {
	ctx := context.Background()
	ce := addCallEvent(t, s, caller, callevents.DialOut, "https://caller.example/out")
	// 2,500 finished early (more than two cleaning chunks): a few
	// delivered, with attempts, the rest cancelled by disabling their Call
	// Event.
	var acts []callevents.CallActivity
	for i := range 2500 {
		acts = append(acts, dial(fmt.Sprintf("old-%d", i)))
	}
	accept(t, s, queueNow, 2500, acts...)
	for _, d := range claim(t, s, "w1", 3, queueNow) {
		record(t, s, "w1", outcome(d, callevents.DeliveryDelivered, 200, "", queueNow))
	}
	_, err := s.UpdateCallEvent(ctx, caller, ce.Type, ce.ID, callevents.CallEventUpdate{Status: ptr(callevents.StatusDisabled)}, queueNow)
	must(t, err)
	_, err = s.UpdateCallEvent(ctx, caller, ce.Type, ce.ID, callevents.CallEventUpdate{Status: ptr(callevents.StatusEnabled)}, queueNow)
	must(t, err)
	// Later: three failed after the cut, one running, two pending.
	addCallEvent(t, s, called, callevents.DialIn, "https://called.example/in")
	later := queueNow.Add(time.Hour)
	accept(t, s, later, 6, dial("new-1"), dial("new-2"), dial("new-3"))
	for _, d := range claim(t, s, "w1", 3, later) {
		record(t, s, "w1", outcome(d, callevents.DeliveryFailed, 500, "http_status", later))
	}
	running := claim(t, s, "w1", 1, later)

	cut := queueNow.Add(time.Minute)
	n, err := s.CleanFinished(ctx, cut)
	must(t, err)
	if n != 2500 {
		t.Fatalf("CleanFinished deleted %d, want 2500", n)
	}
	if n, err := s.CleanFinished(ctx, cut); err != nil || n != 0 {
		t.Fatalf("CleanFinished again = %d, %v; want 0", n, err)
	}
	for _, ext := range []callevents.Extension{caller, called} {
		ds, total := deliveries(t, s, callevents.DeliveryFilter{Extension: ext})
		if total != 3 {
			t.Fatalf("%d deliveries of %s left, want the 3 new ones", total, ext)
		}
		for _, d := range ds {
			if d.CallID[:4] != "new-" {
				t.Fatalf("%s survived the cleaning", d.CallID)
			}
		}
	}
	wantState(t, s, running[0].Extension, running[0].ID, callevents.DeliveryRunning)

	// The activities accepted before the cut are forgotten: reported
	// again, they are queued again. The later ones are still known.
	accept(t, s, later, 2, dial("old-1"))
	accept(t, s, later, 0, dial("new-1"))
	// The deliveries finished later go with a later cut.
	n, err = s.CleanFinished(ctx, later.Add(time.Microsecond))
	must(t, err)
	if n != 3 {
		t.Fatalf("CleanFinished deleted %d, want the 3 failed ones", n)
	}
}

// testClaimConcurrent runs claimers side by side over about 2,000
// deliveries, three per order key (dial, answer, hangup of one call to one
// receiver): each delivery must be claimed exactly once, and never while an
// earlier one of its key is unfinished.
func testClaimConcurrent(t *testing.T, s DeliveryStore) {
	ctx := context.Background()
	const calls, workers = 334, 8
	// Each extension's Call Events send to a receiver of its own.
	for _, ext := range []callevents.Extension{caller, called} {
		for _, typ := range callevents.EventTypes() {
			addCallEvent(t, s, ext, typ, fmt.Sprintf("https://%s.example/%d", ext[5:], typ))
		}
	}
	phases := []func(string) callevents.CallActivity{dial, answer, func(id string) callevents.CallActivity { return hangup(id, "ANSWER") }}
	total := 0
	for _, phase := range phases {
		var acts []callevents.CallActivity
		for i := range calls {
			acts = append(acts, phase(fmt.Sprintf("call-%d", i)))
		}
		accept(t, s, queueNow, 2*calls, acts...)
		total += 2 * calls
	}
	// position is a delivery's place in its key: its call's phase.
	position := map[callevents.EventType]int{callevents.DialIn: 0, callevents.DialOut: 0, callevents.AnswerIn: 1, callevents.AnswerOut: 1, callevents.Hangup: 2}

	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		done    = map[string]int{} // per order key, how many are delivered
		left    atomic.Int64
	)
	left.Store(int64(total))
	start := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	fail := func(err error) { failed.CompareAndSwap(nil, &err) }
	for w := range workers {
		worker := fmt.Sprintf("worker-%d", w)
		wg.Go(func() {
			<-start
			for left.Load() > 0 && failed.Load() == nil {
				ds, err := s.ClaimDue(ctx, callevents.Claim{Worker: worker, N: 1 + w*5, Now: queueNow, Lease: time.Hour})
				if err != nil {
					fail(err)
					return
				}
				for _, d := range ds {
					mu.Lock()
					claimed[d.ID]++
					if got, want := done[d.OrderKey], position[d.Type]; got != want {
						fail(fmt.Errorf("%s claimed %s (place %d of %q) while %d of its key were delivered", worker, d.ID, want, d.OrderKey, got))
					}
					// Counted before it is recorded: once recorded, the next
					// of its key may be claimed at once.
					done[d.OrderKey]++
					mu.Unlock()
					if err := s.RecordAttempts(ctx, worker, []callevents.AttemptOutcome{outcome(d, callevents.DeliveryDelivered, 200, "", queueNow)}); err != nil {
						fail(err)
						return
					}
					left.Add(-1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(*err)
	}
	if len(claimed) != total {
		t.Fatalf("%d deliveries claimed, want %d", len(claimed), total)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Fatalf("delivery %s claimed %d times", id, n)
		}
	}
	for _, ext := range []callevents.Extension{caller, called} {
		if _, n := deliveries(t, s, callevents.DeliveryFilter{Extension: ext, State: callevents.DeliveryDelivered, Limit: 1}); n != total/2 {
			t.Fatalf("%d of %s's deliveries delivered, want %d", n, ext, total/2)
		}
	}
}

func testQueueStats(t *testing.T, s DeliveryStore) {
	qs, ok := s.(callevents.QueueStatsReader)
	if !ok {
		t.Skip("the store does not implement callevents.QueueStatsReader")
	}
	stats := func(now time.Time) callevents.QueueStats {
		t.Helper()
		st, err := qs.QueueStats(context.Background(), now)
		if err != nil {
			t.Fatalf("QueueStats: %v", err)
		}
		return st
	}
	if got := stats(queueNow); got != (callevents.QueueStats{}) {
		t.Fatalf("empty queue: %+v", got)
	}
	addCallEvent(t, s, caller, callevents.DialOut, "https://receiver.example/out")
	addCallEvent(t, s, called, callevents.DialIn, "https://receiver.example/in")
	accept(t, s, queueNow, 2, dial("q1"))
	accept(t, s, queueNow.Add(time.Minute), 2, dial("q2"))
	if got, want := stats(queueNow.Add(-time.Second)), (callevents.QueueStats{Pending: 4}); got != want {
		t.Fatalf("nothing due yet: %+v, want %+v", got, want)
	}
	if got, want := stats(queueNow.Add(90*time.Second)), (callevents.QueueStats{Pending: 4, OldestDue: 90 * time.Second}); got != want {
		t.Fatalf("due: %+v, want %+v", got, want)
	}
	ds := claim(t, s, "w1", 1, queueNow.Add(90*time.Second))
	if len(ds) != 1 {
		t.Fatalf("claimed %d, want 1", len(ds))
	}
	if got, want := stats(queueNow.Add(90*time.Second)), (callevents.QueueStats{Pending: 3, Running: 1, OldestDue: 90 * time.Second}); got != want {
		t.Fatalf("one running: %+v, want %+v", got, want)
	}
	record(t, s, "w1", outcome(ds[0], callevents.DeliveryDelivered, 200, "", queueNow.Add(90*time.Second)))
	if got := stats(queueNow.Add(90 * time.Second)); got.Pending != 3 || got.Running != 0 {
		t.Fatalf("delivered: %+v, want 3 pending and none running", got)
	}
}

// handoff is a Handoff that offers one claim and keeps what it was given.
type handoff struct {
	offer    callevents.Claim
	offers   int
	accepted [][]callevents.Delivery
}

func (h *handoff) OfferClaim() (callevents.Claim, bool) {
	h.offers++
	return h.offer, h.offer.N > 0
}

func (h *handoff) ClaimAccepted(c callevents.Claim, now time.Time, claimed []callevents.Delivery) {
	h.accepted = append(h.accepted, claimed)
}

// acceptHandingOff accepts acts offering to h and checks that it was
// handed, in one ClaimAccepted, exactly the deliveries the result counts as
// claimed; it returns them.
func acceptHandingOff(t *testing.T, s DeliveryStore, h *handoff, now time.Time, acts ...callevents.CallActivity) []callevents.Delivery {
	t.Helper()
	before := len(h.accepted)
	res, err := s.AcceptActivity(context.Background(), acts, now, h)
	if err != nil {
		t.Fatalf("AcceptActivity: %v", err)
	}
	if len(h.accepted) != before+1 {
		t.Fatalf("ClaimAccepted called %d times for one accept, want once", len(h.accepted)-before)
	}
	got := h.accepted[len(h.accepted)-1]
	if len(got) != res.Claimed {
		t.Fatalf("handed over %d deliveries, the result says %d claimed", len(got), res.Claimed)
	}
	return got
}

// A handoff (the dispatcher in the accepting process) gets, in the
// accepting transaction, what its offer has room for, leased to it as a
// claim would be; the rest stays pending for ClaimDue. A delivery with an
// unfinished earlier one of its order key, one beyond its origin's room,
// and one to a paused receiver are never handed over.
func testHandoffClaimsWhatFits(t *testing.T, s DeliveryStore) {
	hookA := addCallEvent(t, s, called, callevents.DialIn, "http://a.example/hook")
	addCallEvent(t, s, called, callevents.DialIn, "http://b.example/hook")
	addCallEvent(t, s, "0006*200", callevents.DialIn, "http://a.example/org6")
	// Answers go to a.example too: the same order key as its dials.
	addCallEvent(t, s, called, callevents.AnswerIn, "http://a.example/answered")
	h := &handoff{offer: callevents.Claim{Worker: "w1", N: 10, Lease: time.Minute,
		Room:   map[string]int{"http://b.example": 0},
		Paused: map[callevents.PausedReceiver]int{{Organization: "0006", Origin: "http://a.example"}: 1}}}

	// call-1 and call-2 each fan out to a.example, b.example (no room) and
	// org 0006's paused a.example: only a.example's of 0005 fit.
	org6 := func(a callevents.CallActivity) callevents.CallActivity {
		a.CalledExtension, a.CallID = "0006*200", a.CallID+"-org6"
		return a
	}
	got := acceptHandingOff(t, s, h, queueNow, dial("call-1"), dial("call-2"), org6(dial("call-1")))
	if len(got) != 2 {
		t.Fatalf("handed over %d deliveries, want 2 (a.example's; b.example has no room, org 0006's receiver is paused)", len(got))
	}
	for _, d := range got {
		if d.State != callevents.DeliveryRunning || d.Attempts != 1 || d.Origin != "http://a.example" || d.CallEventID != hookA.ID ||
			d.URL != hookA.URL || d.Method != hookA.Method || d.Secret != hookA.Secret || d.Sequence != 1 {
			t.Fatalf("handed over %+v, want running, attempt 1, with a.example's URL, method and secret, sequence 1", d)
		}
		if log := delivery(t, s, called, d.ID); log.State != callevents.DeliveryRunning || log.Attempts != 1 {
			t.Fatalf("the log has the handed over %s as %s with %d attempts, want running with 1", d.ID, log.State, log.Attempts)
		}
	}
	// What was handed over is leased: another worker's claim gets only
	// the rest (b.example's two and org 0006's one).
	rest := claim(t, s, "w2", 10, queueNow)
	if len(rest) != 3 {
		t.Fatalf("another worker claimed %d, want the 3 not handed over", len(rest))
	}
	for _, d := range rest {
		if slices.ContainsFunc(got, func(g callevents.Delivery) bool { return g.ID == d.ID }) {
			t.Fatalf("%s was handed over and claimed again", d.ID)
		}
	}

	// The answer of call-1 to a.example has an unfinished earlier delivery
	// (running, handed over above): it stays pending, behind it.
	h.offer.Room = nil
	h.offer.Paused = nil
	if got := acceptHandingOff(t, s, h, queueNow, answer("call-1")); len(got) != 0 || h.offers == 0 {
		t.Fatalf("handed over %d deliveries behind an unfinished earlier one of their key, want 0", len(got))
	}
	// Once the earlier ones are finished, the next of a key may be handed
	// over: call-2's to a.example, delivered, then answered.
	second := slices.IndexFunc(got, func(d callevents.Delivery) bool { return d.CallID == "call-2" })
	record(t, s, "w1", outcome(got[second], callevents.DeliveryDelivered, 200, "", queueNow))
	h.offer.Room = map[string]int{"http://b.example": 0}
	next := acceptHandingOff(t, s, h, queueNow, answer("call-2"))
	if len(next) != 1 || next[0].CallID != "call-2" || next[0].Origin != "http://a.example" || next[0].Sequence != 2 {
		t.Fatalf("after the earlier one was delivered: handed over %+v, want call-2's second to a.example", next)
	}
	h.offer.Room = nil

	// Of several deliveries of one key accepted together, only the first
	// is handed over; and never more than N.
	h.offer.Room = map[string]int{"http://b.example": 0}
	both := acceptHandingOff(t, s, h, queueNow, dial("call-3"), answer("call-3"))
	if len(both) != 1 || both[0].Type != callevents.DialIn {
		t.Fatalf("a dial and an answer of one call to one receiver: handed over %+v, want the dial alone", both)
	}
	h.offer.N = 1
	if two := acceptHandingOff(t, s, h, queueNow, dial("call-4"), dial("call-5")); len(two) != 1 {
		t.Fatalf("offer of 1: handed over %d", len(two))
	}
	h.offer.N = 0
	before := h.offers
	accept(t, s, queueNow, 2, dial("call-6"))
	if _, err := s.AcceptActivity(context.Background(), []callevents.CallActivity{dial("call-7")}, queueNow, h); err != nil || h.offers != before+1 {
		t.Fatalf("AcceptActivity with a handoff that takes nothing: %v, %d offers", err, h.offers-before)
	}
}
