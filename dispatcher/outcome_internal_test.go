package dispatcher

import (
	"net/http"
	"testing"
	"time"

	"github.com/callevents/callevents"
)

// The outcome policy on its own: no store, no receiver, no goroutine.
func TestOutcomePolicy(t *testing.T) {
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	now := at.Add(2 * time.Second) // whole seconds, as an HTTP date is
	p := RetryPolicy{Schedule: []time.Duration{time.Minute, 10 * time.Minute}, Jitter: -1}
	for _, tc := range []struct {
		name     string
		attempts int
		res      result
		next     callevents.DeliveryState
		retryIn  time.Duration // when next is pending
		disables bool
	}{
		{"2xx", 1, result{status: 204}, callevents.DeliveryDelivered, 0, false},
		{"410", 1, result{status: 410, class: callevents.ErrorClassHTTPStatus}, callevents.DeliveryCancelled, 0, true},
		{"policy", 1, result{class: callevents.ErrorClassPolicy}, callevents.DeliveryFailed, 0, false},
		{"500 first", 1, result{status: 500, class: callevents.ErrorClassHTTPStatus}, callevents.DeliveryPending, time.Minute, false},
		{"500 second", 2, result{status: 500, class: callevents.ErrorClassHTTPStatus}, callevents.DeliveryPending, 10 * time.Minute, false},
		{"500 last", 3, result{status: 500, class: callevents.ErrorClassHTTPStatus}, callevents.DeliveryFailed, 0, false},
		{"timeout", 1, result{class: callevents.ErrorClassTimeout}, callevents.DeliveryPending, time.Minute, false},
		{"redirect", 1, result{status: 302, class: callevents.ErrorClassRedirect}, callevents.DeliveryPending, time.Minute, false},
		{"429 lengthens", 1, result{status: 429, class: callevents.ErrorClassHTTPStatus, retryAfter: "120"}, callevents.DeliveryPending, 2 * time.Minute, false},
		{"503 date", 1, result{status: 503, class: callevents.ErrorClassHTTPStatus, retryAfter: now.Add(30 * time.Minute).Format(http.TimeFormat)}, callevents.DeliveryPending, 30 * time.Minute, false},
		{"429 capped", 1, result{status: 429, class: callevents.ErrorClassHTTPStatus, retryAfter: "18000"}, callevents.DeliveryPending, MaxRetryAfter, false},
		{"503 never sooner", 2, result{status: 503, class: callevents.ErrorClassHTTPStatus, retryAfter: "1"}, callevents.DeliveryPending, 10 * time.Minute, false},
		{"429 malformed", 1, result{status: 429, class: callevents.ErrorClassHTTPStatus, retryAfter: "soon"}, callevents.DeliveryPending, time.Minute, false},
		{"500 ignores Retry-After", 1, result{status: 500, class: callevents.ErrorClassHTTPStatus, retryAfter: "600"}, callevents.DeliveryPending, time.Minute, false},
		{"429 last", 3, result{status: 429, class: callevents.ErrorClassHTTPStatus, retryAfter: "60"}, callevents.DeliveryFailed, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.res.latency = 25 * time.Millisecond
			del := callevents.Delivery{ID: "dlv_1", Attempts: tc.attempts}
			o := outcome(p, del, tc.res, at, now)
			if o.Next != tc.next || o.DisableCallEvent != tc.disables {
				t.Fatalf("next %s, disable %v; want %s, %v", o.Next, o.DisableCallEvent, tc.next, tc.disables)
			}
			var want time.Time
			if tc.next == callevents.DeliveryPending {
				want = now.Add(tc.retryIn)
			}
			if !o.NextAttemptAt.Equal(want) {
				t.Errorf("next attempt at %s, want %s", o.NextAttemptAt, want)
			}
			wantAttempt := callevents.DeliveryAttempt{Attempt: tc.attempts, At: at, StatusCode: tc.res.status, ErrorClass: string(tc.res.class), Latency: 25 * time.Millisecond}
			if o.DeliveryID != "dlv_1" || o.Attempt != wantAttempt {
				t.Errorf("recorded %s %+v, want dlv_1 %+v", o.DeliveryID, o.Attempt, wantAttempt)
			}
		})
	}
}

func TestRetryPolicyDelay(t *testing.T) {
	p := RetryPolicy{Schedule: []time.Duration{time.Second, time.Minute}}
	for _, tc := range []struct {
		attempts int
		want     time.Duration
		ok       bool
	}{
		{0, time.Second, true}, // counted as the first
		{1, time.Second, true},
		{2, time.Minute, true},
		{3, 0, false},
	} {
		if got, ok := p.Delay(tc.attempts); got != tc.want || ok != tc.ok {
			t.Errorf("Delay(%d) = %s, %v; want %s, %v", tc.attempts, got, ok, tc.want, tc.ok)
		}
	}
	if n := p.MaxAttempts(); n != 3 {
		t.Errorf("MaxAttempts() = %d, want 3", n)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{"99999999999999999", time.Duration(1<<63 - 1), true},
		{"-5", 0, false},
		{"soon", 0, false},
		{now.Add(time.Hour).Format(http.TimeFormat), time.Hour, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	} {
		if got, ok := parseRetryAfter(tc.header, now); got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}
