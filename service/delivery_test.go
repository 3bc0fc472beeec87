package service_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// deliveryLog is a small delivery history made through the real store: a
// failed, a delivered, a retrying (pending after one attempt) and a new
// delivery of 0003*210, each of its own call.
type deliveryLog struct {
	dialOut, hangup                        string // Call Event ids
	failed, delivered, retrying, untouched string // delivery ids
}

func (b *testBundle) makeDeliveryLog(t *testing.T) deliveryLog {
	t.Helper()
	ctx := context.Background()
	var l deliveryLog
	l.dialOut = b.mustAdd(t, "0003*210", int(callevents.DialOut))
	l.hangup = b.mustAdd(t, "0003*210", int(callevents.Hangup))
	r := b.postEvents(t, b.bearer("pbx"), `[
		{"callId":"call-A","phase":"dial","callerExtension":"0003*210","calledNumber":"0040744000001"},
		{"callId":"call-B","phase":"dial","callerExtension":"0003*210","calledNumber":"0040744000002"},
		{"callId":"call-C","phase":"hangup","callerExtension":"0003*210","status":"NOANSWER"}]`)
	if r.status != http.StatusAccepted || r.queued == nil || *r.queued != 3 {
		t.Fatalf("intake: HTTP %d %s", r.status, r.raw)
	}
	now := time.Now().UTC()
	claimed, err := b.db.ClaimDue(ctx, callevents.Claim{Worker: "test-worker", N: 10, Now: now, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 3 {
		t.Fatalf("claimed %d deliveries, want 3", len(claimed))
	}
	for _, d := range claimed {
		o := callevents.AttemptOutcome{DeliveryID: d.ID, Attempt: callevents.DeliveryAttempt{Attempt: d.Attempts, At: now}}
		switch d.CallID {
		case "call-A":
			l.failed = d.ID
			o.Next = callevents.DeliveryFailed
			o.Attempt.StatusCode, o.Attempt.ErrorClass, o.Attempt.Latency = 500, "http_status", 12*time.Millisecond
		case "call-B":
			l.delivered = d.ID
			o.Next = callevents.DeliveryDelivered
			o.Attempt.StatusCode, o.Attempt.Latency = 204, 0 // a zero latency must still be sent
		case "call-C":
			l.retrying = d.ID
			o.Next = callevents.DeliveryPending
			o.NextAttemptAt = now.Add(5 * time.Second)
			o.Attempt.ErrorClass, o.Attempt.Latency = "timeout", 10*time.Second
		}
		if err := b.db.RecordAttempts(ctx, "test-worker", []callevents.AttemptOutcome{o}); err != nil {
			t.Fatal(err)
		}
	}
	r = b.postEvents(t, b.bearer("pbx"), `{"callId":"call-D","phase":"dial","callerExtension":"0003*210"}`)
	if r.status != http.StatusAccepted || r.queued == nil || *r.queued != 1 {
		t.Fatalf("intake: HTTP %d %s", r.status, r.raw)
	}
	for _, d := range b.deliveriesOf(t, "0003*210") {
		if d.CallID == "call-D" {
			l.untouched = d.ID
		}
	}
	return l
}

// deliveryByID returns the delivery elements of a response, by id.
func deliveriesByID(t *testing.T, el *etree.Element) map[string]*etree.Element {
	t.Helper()
	out := map[string]*etree.Element{}
	for _, d := range el.SelectElements("delivery") {
		out[d.FindElement("id").Text()] = d
	}
	return out
}

func text(el *etree.Element, path string) string {
	if c := el.FindElement(path); c != nil {
		return c.Text()
	}
	return "<absent>"
}

// Ensure GetPhoneCallEventDeliveries lists the delivery log with every
// attempt, filters and pages it, and that every response — zero attempts,
// zero latency, absent optional values — validates against our schema.
func TestGetPhoneCallEventDeliveries(t *testing.T) {
	b := setup(t, bundleOptions{})
	v := newSchemaValidator(t)
	l := b.makeDeliveryLog(t)
	get := func(scope, fields string) *etree.Element {
		t.Helper()
		status, body := b.call(t, scope, `<v1:GetPhoneCallEventDeliveries><v1:extension>0003*210</v1:extension>`+fields+`</v1:GetPhoneCallEventDeliveries>`)
		if status != http.StatusOK {
			t.Fatalf("get %s: HTTP %d\n%s", fields, status, body)
		}
		el := bodyElement(t, body)
		if el.Tag != "GetPhoneCallEventDeliveriesResponse" {
			t.Fatalf("response element %s", el.Tag)
		}
		v.validate(t, el)
		return el
	}

	all := get("admin", "")
	if got := text(all, "totalResults"); got != "4" {
		t.Errorf("totalResults %s, want 4", got)
	}
	byID := deliveriesByID(t, all)
	if len(byID) != 4 {
		t.Fatalf("%d deliveries listed, want 4", len(byID))
	}
	for _, tc := range []struct {
		id       string
		want     map[string]string
		attempts []map[string]string
	}{
		{l.failed, map[string]string{
			"phoneCallEventId": l.dialOut, "extension": "0003*210", "type": "1", "callId": "call-A", "sequence": "1", "state": "failed",
			"attempts": "1", "nextAttempt": "<absent>", "lastStatus": "500", "lastError": "http_status",
		}, []map[string]string{{"attempt": "1", "httpStatus": "500", "error": "http_status", "latencyMs": "12"}}},
		{l.delivered, map[string]string{
			"phoneCallEventId": l.dialOut, "callId": "call-B", "sequence": "1", "state": "delivered", "attempts": "1",
			"nextAttempt": "<absent>", "lastStatus": "204", "lastError": "<absent>",
		}, []map[string]string{{"attempt": "1", "httpStatus": "204", "error": "<absent>", "latencyMs": "0"}}},
		{l.retrying, map[string]string{
			"phoneCallEventId": l.hangup, "type": "2", "callId": "call-C", "sequence": "1", "state": "pending", "attempts": "1",
			"finished": "<absent>", "lastStatus": "<absent>", "lastError": "timeout",
		}, []map[string]string{{"attempt": "1", "httpStatus": "<absent>", "error": "timeout", "latencyMs": "10000"}}},
		{l.untouched, map[string]string{
			"callId": "call-D", "sequence": "1", "state": "pending", "attempts": "0", "finished": "<absent>",
			"lastStatus": "<absent>", "lastError": "<absent>",
		}, nil},
	} {
		d := byID[tc.id]
		if d == nil {
			t.Errorf("delivery %s not listed", tc.id)
			continue
		}
		for path, want := range tc.want {
			if got := text(d, path); got != want {
				t.Errorf("%s %s = %q, want %q", tc.want["callId"], path, got, want)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, text(d, "created")); err != nil {
			t.Errorf("%s created: %v", tc.want["callId"], err)
		}
		state := tc.want["state"]
		if _, err := time.Parse(time.RFC3339Nano, text(d, "nextAttempt")); (err == nil) != (state == "pending") {
			t.Errorf("%s (%s): nextAttempt %q", tc.want["callId"], state, text(d, "nextAttempt"))
		}
		if _, err := time.Parse(time.RFC3339Nano, text(d, "finished")); (err == nil) != (state == "delivered" || state == "failed") {
			t.Errorf("%s (%s): finished %q", tc.want["callId"], state, text(d, "finished"))
		}
		attempts := d.SelectElements("attempt")
		if len(attempts) != len(tc.attempts) {
			t.Errorf("%s: %d attempt elements, want %d", tc.want["callId"], len(attempts), len(tc.attempts))
			continue
		}
		for i, want := range tc.attempts {
			for path, w := range want {
				if got := text(attempts[i], path); got != w {
					t.Errorf("%s attempt %d %s = %q, want %q", tc.want["callId"], i, path, got, w)
				}
			}
			if _, err := time.Parse(time.RFC3339Nano, text(attempts[i], "at")); err != nil {
				t.Errorf("%s attempt %d at: %v", tc.want["callId"], i, err)
			}
		}
	}
	// Neither the payload nor the receiver's URL is part of a delivery.
	_, raw := b.call(t, "admin", `<v1:GetPhoneCallEventDeliveries><v1:extension>0003*210</v1:extension></v1:GetPhoneCallEventDeliveries>`)
	for _, leak := range []string{"CalledNumber", "0040744000001", "127.0.0.1"} {
		if strings.Contains(raw, leak) {
			t.Errorf("the response carries %q", leak)
		}
	}

	// Filters, alone and together, and paging.
	for _, tc := range []struct {
		name, fields string
		total        string
		ids          []string
	}{
		{"state", `<v1:state>failed</v1:state>`, "1", []string{l.failed}},
		{"state-pending", `<v1:state>pending</v1:state>`, "2", []string{l.retrying, l.untouched}},
		{"call-id", `<v1:callId>call-B</v1:callId>`, "1", []string{l.delivered}},
		{"call-event", `<v1:phoneCallEventId>` + l.hangup + `</v1:phoneCallEventId>`, "1", []string{l.retrying}},
		{"call-event-and-state", `<v1:phoneCallEventId>` + l.dialOut + `</v1:phoneCallEventId><v1:state>delivered</v1:state>`, "1", []string{l.delivered}},
		{"nothing", `<v1:callId>no-such-call</v1:callId>`, "0", nil},
		{"unknown-call-event", `<v1:phoneCallEventId>gone</v1:phoneCallEventId>`, "0", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			el := get("admin", tc.fields)
			if got := text(el, "totalResults"); got != tc.total {
				t.Errorf("totalResults %s, want %s", got, tc.total)
			}
			got := deliveriesByID(t, el)
			if len(got) != len(tc.ids) {
				t.Errorf("%d listed, want %d", len(got), len(tc.ids))
			}
			for _, id := range tc.ids {
				if got[id] == nil {
					t.Errorf("%s not listed", id)
				}
			}
		})
	}
	seen := map[string]bool{}
	for _, page := range []struct{ start, count, n int }{{0, 3, 3}, {3, 3, 1}, {4, 3, 0}} {
		el := get("org:0003", fmt.Sprintf(`<v1:startIndex>%d</v1:startIndex><v1:count>%d</v1:count>`, page.start, page.count))
		if got := text(el, "totalResults"); got != "4" {
			t.Errorf("page %d: totalResults %s", page.start, got)
		}
		ds := el.SelectElements("delivery")
		if len(ds) != page.n {
			t.Errorf("page at %d: %d items, want %d", page.start, len(ds), page.n)
		}
		for _, d := range ds {
			seen[text(d, "id")] = true
		}
	}
	if len(seen) != 4 {
		t.Errorf("paging saw %d distinct deliveries, want 4", len(seen))
	}
	// An ext-scoped client sees its own extension; an empty one validates.
	if got := text(get("ext:0003*210", ""), "totalResults"); got != "4" {
		t.Errorf("ext scope: totalResults %s", got)
	}
	status, body := b.call(t, "admin", `<v1:GetPhoneCallEventDeliveries><v1:extension>0003*999</v1:extension></v1:GetPhoneCallEventDeliveries>`)
	empty := bodyElement(t, body)
	v.validate(t, empty)
	if status != 200 || text(empty, "totalResults") != "0" {
		t.Errorf("empty: HTTP %d\n%s", status, body)
	}

	// sequence is the delivery's place in its order key (extension,
	// receiver origin, call), as the store assigned it: the Hangup of
	// call-D follows its Dial-Out to the same receiver.
	r := b.postEvents(t, b.bearer("pbx"), `{"callId":"call-D","phase":"hangup","callerExtension":"0003*210","status":"ANSWER"}`)
	if r.status != http.StatusAccepted || r.queued == nil || *r.queued != 1 {
		t.Fatalf("intake: HTTP %d %s", r.status, r.raw)
	}
	stored := map[string]int{}
	for _, d := range b.deliveriesOf(t, "0003*210") {
		stored[d.ID] = d.Sequence
	}
	callD := deliveriesByID(t, get("admin", `<v1:callId>call-D</v1:callId>`))
	if len(callD) != 2 || callD[l.untouched] == nil {
		t.Fatalf("call-D: %d deliveries listed, want the Dial-Out %s and its Hangup", len(callD), l.untouched)
	}
	for id, d := range callD {
		want := map[string]string{l.dialOut: "1", l.hangup: "2"}[text(d, "phoneCallEventId")]
		if got := text(d, "sequence"); got != want || got != fmt.Sprint(stored[id]) {
			t.Errorf("call-D %s (Call Event %s): sequence %q, want %q (stored %d)", id, text(d, "phoneCallEventId"), got, want, stored[id])
		}
	}
}

// Ensure ResendPhoneCallEventDelivery queues a failed or delivered delivery
// again, due now, keeping its id and history, and refuses one that is
// still pending.
func TestResendPhoneCallEventDelivery(t *testing.T) {
	var queued int
	var mu sync.Mutex
	b := setup(t, bundleOptions{queued: func(n int) { mu.Lock(); queued += n; mu.Unlock() }})
	v := newSchemaValidator(t)
	l := b.makeDeliveryLog(t)
	mu.Lock()
	queued = 0
	mu.Unlock()
	resend := func(scope, id string) (int, string) {
		return b.call(t, scope, `<v1:ResendPhoneCallEventDelivery><v1:extension>0003*210</v1:extension><v1:id>`+id+`</v1:id></v1:ResendPhoneCallEventDelivery>`)
	}
	for _, id := range []string{l.failed, l.delivered} {
		status, body := resend("ext:0003*210", id)
		if status != http.StatusOK {
			t.Fatalf("resend %s: HTTP %d\n%s", id, status, body)
		}
		el := bodyElement(t, body)
		v.validate(t, el)
		if el.Tag != "ResendPhoneCallEventDeliveryResponse" || text(el, "result") != "success" {
			t.Errorf("resend: %s", body)
		}
		for path, want := range map[string]string{"delivery/id": id, "delivery/sequence": "1", "delivery/state": "pending", "delivery/extension": "0003*210", "delivery/finished": "<absent>"} {
			if got := text(el, path); got != want {
				t.Errorf("resend %s: %s = %q, want %q", id, path, got, want)
			}
		}
		if text(el, "delivery/attempts") == "<absent>" || len(el.FindElements("delivery/attempt")) != 1 {
			t.Errorf("resend %s: attempts %s and %d attempt elements, want the history of 1 attempt", id, text(el, "delivery/attempts"), len(el.FindElements("delivery/attempt")))
		}
		next, err := time.Parse(time.RFC3339Nano, text(el, "delivery/nextAttempt"))
		if err != nil || next.After(time.Now().Add(time.Second)) {
			t.Errorf("resend %s: nextAttempt %q, want due now", id, text(el, "delivery/nextAttempt"))
		}
	}
	mu.Lock()
	if queued != 2 {
		t.Errorf("Queued called for %d deliveries, want 2", queued)
	}
	mu.Unlock()
	// The history survives the resend.
	_, body := b.call(t, "admin", `<v1:GetPhoneCallEventDeliveries><v1:extension>0003*210</v1:extension><v1:callId>call-A</v1:callId></v1:GetPhoneCallEventDeliveries>`)
	if d := bodyElement(t, body).FindElement("delivery"); d == nil || text(d, "state") != "pending" || len(d.SelectElements("attempt")) != 1 || text(d, "attempt/httpStatus") != "500" {
		t.Errorf("after resend:\n%s", body)
	}
	// Pending or running deliveries are not resendable: 400.
	for _, id := range []string{l.failed, l.untouched} {
		status, body := resend("admin", id)
		f, ok := parseFault(t, body)
		if !ok || status != 500 || f.faultCode != "Client" || f.code != "400" {
			t.Errorf("resend pending %s: HTTP %d %+v\n%s", id, status, f, body)
		}
	}
}

// Ensure TestPhoneCallEvent sends one request to the Call Event now and
// reports what the receiver answered, or why there was no answer, without
// queueing anything.
func TestTestPhoneCallEvent(t *testing.T) {
	b := setup(t, bundleOptions{})
	v := newSchemaValidator(t)
	receiver := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if strings.HasSuffix(r.URL.Path, "/broken") {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	add := func(typ int, url string, method int) string {
		t.Helper()
		status, body := b.call(t, "admin", fmt.Sprintf(`<v1:AddPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>%d</v1:type><v1:url>%s</v1:url><v1:method>%d</v1:method></v1:AddPhoneCallEvent>`, typ, url, method))
		if status != 200 {
			t.Fatalf("add: HTTP %d\n%s", status, body)
		}
		return bodyElement(t, body).FindElement("phoneCallEvent/id").Text()
	}
	ok := add(0, receiver.URL+"/ok", 1)
	broken := add(2, receiver.URL+"/broken", 0)
	unreachable := add(3, closedURL+"/x", 0)
	private := add(4, "http://10.255.255.1/x", 0) // refused by the dispatcher's outbound policy

	test := func(scope string, typ int, id string) *etree.Element {
		t.Helper()
		status, body := b.call(t, scope, fmt.Sprintf(`<v1:TestPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>%d</v1:type><v1:id>%s</v1:id></v1:TestPhoneCallEvent>`, typ, id))
		if status != 200 {
			t.Fatalf("test: HTTP %d\n%s", status, body)
		}
		el := bodyElement(t, body)
		v.validate(t, el)
		if el.Tag != "TestPhoneCallEventResponse" || text(el, "result") != "success" {
			t.Errorf("test: %s", body)
		}
		return el
	}
	el := test("ext:0003*210", 0, ok)
	for path, want := range map[string]string{"delivered": "true", "httpStatus": "204", "error": "<absent>"} {
		if got := text(el, path); got != want {
			t.Errorf("ok: %s = %q, want %q", path, got, want)
		}
	}
	if text(el, "latencyMs") == "<absent>" {
		t.Error("ok: no latencyMs")
	}
	if seen := receiver.Hits(); len(seen) != 1 || seen[0].Method != http.MethodPost || seen[0].Path != "/ok" ||
		seen[0].Header.Get("X-CallEvents-Event") != "Dial-In" || seen[0].Header.Get("X-CallEvents-Test") != "true" {
		t.Errorf("the receiver saw %d requests; first %+v", len(seen), seen)
	}

	el = test("admin", 2, broken)
	for path, want := range map[string]string{"delivered": "false", "httpStatus": "503"} {
		if got := text(el, path); got != want {
			t.Errorf("broken: %s = %q, want %q", path, got, want)
		}
	}
	el = test("admin", 3, unreachable)
	if text(el, "delivered") != "false" || text(el, "httpStatus") != "<absent>" || text(el, "error") == "<absent>" || text(el, "error") == "" {
		t.Errorf("unreachable: delivered %s httpStatus %s error %s", text(el, "delivered"), text(el, "httpStatus"), text(el, "error"))
	}
	el = test("admin", 4, private)
	if text(el, "delivered") != "false" || text(el, "httpStatus") != "<absent>" || text(el, "error") != "policy" {
		t.Errorf("private target: delivered %s httpStatus %s error %s", text(el, "delivered"), text(el, "httpStatus"), text(el, "error"))
	}
	if n := len(b.deliveriesOf(t, "0003*210")); n != 0 {
		t.Errorf("a test queued %d deliveries", n)
	}
}

// Ensure the delivery operations answer a clear Server fault, logged,
// when the server has no delivery service.
func TestDeliveryOperationsNotConfigured(t *testing.T) {
	b := setup(t, bundleOptions{noDeliveries: true})
	for _, op := range []string{
		`<v1:GetPhoneCallEventDeliveries><v1:extension>0003*210</v1:extension></v1:GetPhoneCallEventDeliveries>`,
		`<v1:ResendPhoneCallEventDelivery><v1:extension>0003*210</v1:extension><v1:id>dlv_x</v1:id></v1:ResendPhoneCallEventDelivery>`,
		`<v1:TestPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>0</v1:type><v1:id>x</v1:id></v1:TestPhoneCallEvent>`,
	} {
		status, body := b.call(t, "admin", op)
		f, ok := parseFault(t, body)
		if !ok || status != 500 || f.faultCode != "Server" || f.code != "151" || !strings.Contains(f.reason, "not available") {
			t.Errorf("HTTP %d %+v\n%s", status, f, body)
		}
	}
	if n := strings.Count(b.logs.String(), "service: internal error"); n != 3 {
		t.Errorf("%d internal errors logged, want 3", n)
	}
}
