package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/service"
)

// intakeReply is a decoded intake response.
type intakeReply struct {
	status int
	header http.Header
	raw    string
	// queued, accepted and duplicates are the 202's counts, nil when absent.
	queued, accepted, duplicates *int
	err                          struct {
		Code      string  `json:"code"`
		Field     *string `json:"field"`
		Message   string  `json:"message"`
		RequestID string  `json:"requestId"`
	}
}

// postEvents sends body to the intake with "Authorization: <auth>" (none
// when auth is "") and decodes the answer, which must be JSON.
func (b *testBundle) postEvents(t *testing.T, auth, body string) intakeReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+service.PathEvents, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return doIntake(t, req)
}

func doIntake(t *testing.T, req *http.Request) intakeReply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := intakeReply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("HTTP %d with Content-Type %q, want JSON:\n%s", resp.StatusCode, ct, raw)
	}
	var body struct {
		Queued     *int            `json:"queued"`
		Accepted   *int            `json:"accepted"`
		Duplicates *int            `json:"duplicates"`
		Error      json.RawMessage `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(r.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("HTTP %d: the body is not the documented JSON: %v\n%s", resp.StatusCode, err, raw)
	}
	r.queued, r.accepted, r.duplicates = body.Queued, body.Accepted, body.Duplicates
	if resp.StatusCode == http.StatusAccepted {
		// All three, in the documented order, as numbers.
		if body.Queued == nil || body.Accepted == nil || body.Duplicates == nil ||
			r.raw != fmt.Sprintf("{\"queued\":%d,\"accepted\":%d,\"duplicates\":%d}\n", *body.Queued, *body.Accepted, *body.Duplicates) {
			t.Fatalf("202 %q, want {\"queued\":N,\"accepted\":A,\"duplicates\":D}", raw)
		}
	}
	if body.Error != nil {
		dec := json.NewDecoder(strings.NewReader(string(body.Error)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r.err); err != nil {
			t.Fatalf("error object: %v\n%s", err, raw)
		}
		if r.err.RequestID == "" || r.err.RequestID != resp.Header.Get("X-Request-Id") {
			t.Errorf("requestId %q, X-Request-Id %q: want the same, set", r.err.RequestID, resp.Header.Get("X-Request-Id"))
		}
		if r.err.Message == "" {
			t.Errorf("error without a message: %s", raw)
		}
	}
	return r
}

// counts is a 202's answer as "queued/accepted/duplicates", or the status
// and body of any other answer.
func (r intakeReply) counts() string {
	if r.status != http.StatusAccepted || r.queued == nil {
		return fmt.Sprintf("HTTP %d %s", r.status, r.raw)
	}
	return fmt.Sprintf("%d/%d/%d", *r.queued, *r.accepted, *r.duplicates)
}

func (b *testBundle) bearer(scope string) string { return "Bearer " + b.tokens[scope] }

// mustSetStatus sets the status of a Call Event over SOAP.
func (b *testBundle) mustSetStatus(t *testing.T, ext string, typ int, id string, status int) {
	t.Helper()
	code, body := b.call(t, "admin", fmt.Sprintf(`<v1:SetPhoneCallEventStatus><v1:extension>%s</v1:extension><v1:type>%d</v1:type><v1:id>%s</v1:id><v1:status>%d</v1:status></v1:SetPhoneCallEventStatus>`, ext, typ, id, status))
	if code != http.StatusOK {
		t.Fatalf("set status: HTTP %d\n%s", code, body)
	}
}

// deliveriesOf returns the deliveries of ext from the store, newest first.
func (b *testBundle) deliveriesOf(t *testing.T, ext string) []callevents.Delivery {
	t.Helper()
	items, total, err := b.db.FindDeliveries(context.Background(), callevents.DeliveryFilter{Extension: callevents.Extension(ext)})
	if err != nil {
		t.Fatal(err)
	}
	if total != len(items) {
		t.Fatalf("FindDeliveries without paging: %d items, total %d", len(items), total)
	}
	return items
}

// deliverySummary renders deliveries as sorted "extension type callId
// callEventId state" lines, to compare.
func deliverySummary(ds []callevents.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%s %s %s %s %s", d.Extension, d.Type, d.CallID, d.CallEventID, d.State)
	}
	sort.Strings(out)
	return out
}

// Ensure call activity fans out to the enabled Call Events of the caller
// and the called extension, an object or an array, from a pbx or an admin
// client; that a report is queued once; and that the parameters are those
// of SPEC §6.
func TestIntakeQueuesDeliveries(t *testing.T) {
	b := setup(t, bundleOptions{})
	dialOut := b.mustAdd(t, "0003*210", int(callevents.DialOut))
	dialIn := b.mustAdd(t, "0003*211", int(callevents.DialIn))
	disabled := b.mustAdd(t, "0003*211", int(callevents.DialIn))
	b.mustSetStatus(t, "0003*211", int(callevents.DialIn), disabled, 0)
	hangupCaller := b.mustAdd(t, "0003*210", int(callevents.Hangup))
	hangupCalled := b.mustAdd(t, "0003*211", int(callevents.Hangup))
	b.mustAdd(t, "0003*212", int(callevents.DialIn)) // not in the call

	dial := `{"callId":"call-1","phase":"dial","callerExtension":"0003*210","callerIdNum":"210","callerIdName":"Ann Smith",
		"calledNumber":"211","calledExtension":"0003*211","calledDid":"","callApiId":"api-9","time":"` + time.Now().UTC().Add(-time.Minute).Format(time.RFC3339) + `"}`
	// queued/accepted/duplicates
	if r := b.postEvents(t, b.bearer("pbx"), dial); r.counts() != "2/1/0" {
		t.Fatalf("dial: %s, want 202 queued 2, accepted 1", r.counts())
	}
	// The same report again: a duplicate, nothing more.
	if r := b.postEvents(t, b.bearer("pbx"), dial); r.counts() != "0/0/1" {
		t.Errorf("duplicate dial: %s, want 202 queued 0, duplicates 1", r.counts())
	}
	// An array from an admin client: answer (no Call Events: accepted,
	// nothing queued) and hangup (both).
	if r := b.postEvents(t, b.bearer("admin"), `[
		{"callId":"call-1","phase":"answer","callerExtension":"0003*210","calledExtension":"0003*211"},
		{"callId":"call-1","phase":"hangup","callerExtension":"0003*210","calledExtension":"0003*211","status":"BUSY"}]`); r.counts() != "2/2/0" {
		t.Fatalf("answer+hangup: %s, want 202 queued 2, accepted 2", r.counts())
	}
	// A call from outside the organization to 0003*210 only: hangup, status
	// absent; beside it the dial again, and the hangup twice: one accepted.
	if r := b.postEvents(t, "bearer "+b.tokens["pbx"], `[{"callId":"call-2","phase":"hangup","callerIdNum":"+40744000000","calledExtension":"0003*210"},
		`+dial+`,{"callId":"call-2","phase":"hangup","calledExtension":"0003*210","callerIdName":"again"}]`); r.counts() != "1/1/2" {
		t.Fatalf("call-2 hangup: %s, want 202 queued 1, accepted 1, duplicates 2", r.counts())
	}
	// Accepted with nothing queued, not a duplicate: no enabled Call Event
	// of 0003*212 is an Answer-In.
	if r := b.postEvents(t, b.bearer("pbx"), `{"callId":"call-3","phase":"answer","calledExtension":"0003*212"}`); r.counts() != "0/1/0" {
		t.Errorf("answer on 0003*212: %s, want 202 queued 0, accepted 1", r.counts())
	}

	got := append(deliverySummary(b.deliveriesOf(t, "0003*210")), deliverySummary(b.deliveriesOf(t, "0003*211"))...)
	want := []string{
		"0003*210 Dial-Out call-1 " + dialOut + " pending",
		"0003*210 Hangup call-1 " + hangupCaller + " pending",
		"0003*210 Hangup call-2 " + hangupCaller + " pending",
		"0003*211 Dial-In call-1 " + dialIn + " pending",
		"0003*211 Hangup call-1 " + hangupCalled + " pending",
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("deliveries:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(b.deliveriesOf(t, "0003*212")); n != 0 {
		t.Errorf("%d deliveries for an extension that is not in the call", n)
	}
	for _, d := range b.deliveriesOf(t, "0003*211") {
		if d.Type != callevents.DialIn {
			continue
		}
		want := "CallID=call-1&CallerIDNum=210&CallerIDName=Ann+Smith&CalledDID=&CalledExtension=0003%2A211&CallStatus=CALLING&CallFlow=IN&CallerExtension=0003%2A210&CalledNumber=211&CallAPIID=api-9"
		if d.Payload != want {
			t.Errorf("Dial-In payload\n got  %s\n want %s", d.Payload, want)
		}
		if d.Attempts != 0 || d.Created.IsZero() {
			t.Errorf("new delivery: attempts %d, created %v", d.Attempts, d.Created)
		}
	}
	for _, d := range b.deliveriesOf(t, "0003*210") {
		if d.CallID == "call-2" && !strings.Contains(d.Payload, "CallStatus=UNKNOWN&CallFlow=IN&") {
			t.Errorf("hangup without status: payload %s", d.Payload)
		}
		if d.CallID == "call-1" && d.Type == callevents.Hangup && !strings.Contains(d.Payload, "CallStatus=BUSY&CallFlow=OUT&") {
			t.Errorf("hangup BUSY on the caller: payload %s", d.Payload)
		}
	}
}

// Ensure every invalid request is a 400 naming the field, with the code of
// SPEC §4 as a string, and stores nothing — not even the valid items of an
// array.
func TestIntakeValidation(t *testing.T) {
	b := setup(t, bundleOptions{})
	b.mustAdd(t, "0003*210", int(callevents.DialOut))
	b.mustAdd(t, "0003*211", int(callevents.DialIn))
	valid := `{"callId":"ok-1","phase":"dial","callerExtension":"0003*210","calledExtension":"0003*211"}`
	long := strings.Repeat("x", callevents.MaxActivityFieldLength+1)
	for _, tc := range []struct {
		name, body, code, field string
	}{
		{"missing-call-id", `{"phase":"dial","callerExtension":"0003*210"}`, "missing_parameter", "callId"},
		{"blank-call-id", `{"callId":"  ","phase":"dial","callerExtension":"0003*210"}`, "missing_parameter", "callId"},
		{"missing-phase", `{"callId":"c","callerExtension":"0003*210"}`, "missing_parameter", "phase"},
		{"phase", `{"callId":"c","phase":"ring","callerExtension":"0003*210"}`, "invalid_request", "phase"},
		{"no-extension", `{"callId":"c","phase":"dial","callerIdNum":"210"}`, "missing_parameter", "callerExtension"},
		{"caller-extension", `{"callId":"c","phase":"dial","callerExtension":"210"}`, "extension_invalid", "callerExtension"},
		{"called-extension", `{"callId":"c","phase":"dial","callerExtension":"0003*210","calledExtension":"0003-211"}`, "extension_invalid", "calledExtension"},
		{"status-on-dial", `{"callId":"c","phase":"dial","callerExtension":"0003*210","status":"BUSY"}`, "invalid_request", "status"},
		{"status", `{"callId":"c","phase":"hangup","callerExtension":"0003*210","status":"HUNG"}`, "invalid_request", "status"},
		{"caller-name-long", `{"callId":"c","phase":"dial","callerExtension":"0003*210","callerIdName":"` + long + `"}`, "invalid_request", "callerIdName"},
		{"array-second-invalid", `[` + valid + `,{"callId":"c","phase":"dial"}]`, "missing_parameter", "[1].callerExtension"},
		{"array-second-unknown-field", `[` + valid + `,{"callId":"c","phase":"dial","calledExtention":"0003*211"}]`, "invalid_request", "[1].calledExtention"},
		{"empty-array", `[]`, "missing_parameter", "callId"},
		{"unknown-field", `{"callId":"c","phase":"dial","callerExtension":"0003*210","calledExtention":"0003*211"}`, "invalid_request", "calledExtention"},
		{"wrong-type", `{"callId":42,"phase":"dial","callerExtension":"0003*210"}`, "invalid_request", "callId"},
		{"wrong-type-array", `{"callId":"c","phase":["dial"],"callerExtension":"0003*210"}`, "invalid_request", "phase"},
		{"time", `{"callId":"c","phase":"dial","callerExtension":"0003*210","time":"yesterday"}`, "invalid_request", "time"},
		{"time-far", `{"callId":"c","phase":"dial","callerExtension":"0003*210","time":"2000-01-01T00:00:00Z"}`, "invalid_request", "time"},
		{"time-year-1", `{"callId":"c","phase":"dial","callerExtension":"0003*210","time":"0001-01-01T00:00:00Z"}`, "invalid_request", "time"},
		{"array-second-time-far", `[` + valid + `,{"callId":"c","phase":"dial","callerExtension":"0003*210","time":"2999-01-01T00:00:00Z"}]`, "invalid_request", "[1].time"},
		{"call-id-not-utf8", `{"callId":"c` + "\xff" + `","phase":"dial","callerExtension":"0003*210"}`, "invalid_request", "callId"},
		{"array-second-name-not-utf8", `[` + valid + `,{"callId":"c","phase":"dial","callerExtension":"0003*210","callerIdName":"Ann ` + "\xc3" + `"}]`, "invalid_request", "[1].callerIdName"},
		{"call-id-lone-surrogate", `{"callId":"c\udc00","phase":"dial","callerExtension":"0003*210"}`, "invalid_request", "callId"},
		{"not-json", `callId=c&phase=dial`, "invalid_request", ""},
		{"truncated", `{"callId":"c","phase":"dial"`, "invalid_request", ""},
		{"empty", ``, "invalid_request", ""},
		{"two-values", valid + valid, "invalid_request", ""},
		{"too-large", `{"callId":"c","phase":"dial","callerExtension":"0003*210","callerIdName":"` + strings.Repeat("x", service.MaxBodyBytesDefault) + `"}`, "invalid_request", ""},
		{"too-many", "[" + strings.Repeat(valid+",", callevents.MaxActivitiesPerRequest) + valid + "]", "invalid_request", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.postEvents(t, b.bearer("pbx"), tc.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("HTTP %d, want 400:\n%s", r.status, truncate(r.raw, 300))
			}
			field := ""
			if r.err.Field != nil {
				field = *r.err.Field
				if field == "" {
					t.Errorf(`"field":"" sent; it should be omitted when there is none`)
				}
			}
			if r.err.Code != tc.code || field != tc.field {
				t.Errorf("error %s field %q (%s), want %s field %q", r.err.Code, field, r.err.Message, tc.code, tc.field)
			}
			if r.queued != nil || r.accepted != nil || r.duplicates != nil {
				t.Errorf("an error with counts: %s", r.raw)
			}
			for _, ext := range []string{"0003*210", "0003*211"} {
				if n := len(b.deliveriesOf(t, ext)); n != 0 {
					t.Errorf("%d deliveries of %s stored by a failed request", n, ext)
				}
			}
		})
	}
	// Nothing was remembered either: the valid report is still new.
	if r := b.postEvents(t, b.bearer("pbx"), valid); r.status != http.StatusAccepted || r.queued == nil || *r.queued != 2 || *r.duplicates != 0 {
		t.Errorf("valid after failures: %s, want 202 queued 2, no duplicates", r.counts())
	}
}

// Ensure every string of the intake must be text: a raw byte that is not
// UTF-8, or an escape of half a surrogate pair, is a 400 naming the field.
// encoding/json alone would read both as U+FFFD, so that call ids that
// differ ("c\xff", "c\xfe") would dedupe as one call. Escapes of whole
// characters, U+FFFD itself included, are text.
func TestIntakeTextMustBeUTF8(t *testing.T) {
	b := setup(t, bundleOptions{})
	b.mustAdd(t, "0003*210", int(callevents.Hangup))
	fields := [][2]string{
		{"callId", "c1"}, {"phase", "hangup"}, {"callerExtension", "0003*210"}, {"callerIdNum", "210"},
		{"callerIdName", "Ann"}, {"calledNumber", "211"}, {"calledExtension", "0003*211"}, {"calledDid", "+40215550100"},
		{"status", "BUSY"}, {"callApiId", "api-1"}, {"time", time.Now().UTC().Format(time.RFC3339)},
	}
	// object renders fields as a JSON object, the value of field bad
	// (when set) followed by suffix, written raw.
	object := func(bad, suffix string) string {
		var parts []string
		for _, f := range fields {
			v := f[1]
			if f[0] == bad {
				v += suffix
			}
			parts = append(parts, `"`+f[0]+`":"`+v+`"`)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	for _, f := range fields {
		for _, bad := range []string{"\xff", "\xc3", "\xed\xa0\x80", `\ud800`, `\udfff`, `\ud800x`, `\ud800\u0041`, `\udc00\ud800`} {
			for _, tc := range []struct{ body, field string }{
				{object(f[0], bad), f[0]},
				{"[" + object("", "") + "," + object(f[0], bad) + "]", "[1]." + f[0]},
			} {
				r := b.postEvents(t, b.bearer("pbx"), tc.body)
				field := ""
				if r.err.Field != nil {
					field = *r.err.Field
				}
				if r.status != http.StatusBadRequest || r.err.Code != "invalid_request" || field != tc.field {
					t.Errorf("%s with %q: HTTP %d %s field %q (%s), want 400 invalid_request field %q", f[0], bad, r.status, r.err.Code, field, r.err.Message, tc.field)
				}
			}
		}
	}
	if n := len(b.deliveriesOf(t, "0003*210")); n != 0 {
		t.Fatalf("%d deliveries stored by refused requests", n)
	}
	// Whole characters, escaped or not, are text.
	fields[4][1] = `\ud83d\udcde \ufffd \u00e9 ` + "\uFFFD☎"
	if r := b.postEvents(t, b.bearer("pbx"), object("", "")); r.status != http.StatusAccepted || r.queued == nil || *r.queued != 1 {
		t.Fatalf("escaped characters: HTTP %d %s, want 202 {\"queued\":1}", r.status, r.raw)
	}
	ds := b.deliveriesOf(t, "0003*210")
	if want := "CallerIDName=" + url.QueryEscape("📞 \uFFFD é \uFFFD☎") + "&"; len(ds) != 1 || !strings.Contains(ds[0].Payload, want) {
		t.Errorf("deliveries %+v, want one with %s", ds, want)
	}
}

// Ensure the intake judges a reported time by the ActivityService's clock:
// within a day of it either way is accepted, further is a 400 naming time.
func TestIntakeTime(t *testing.T) {
	b := setup(t, bundleOptions{})
	b.mustAdd(t, "0003*210", int(callevents.DialOut))
	now := time.Date(2031, 7, 1, 12, 0, 0, 0, time.UTC) // far from the wall clock
	b.activities.Now = func() time.Time { return now }
	report := func(n int, at time.Time) string {
		return fmt.Sprintf(`{"callId":"t%d","phase":"dial","callerExtension":"0003*210","time":%q}`, n, at.Format(time.RFC3339Nano))
	}
	for i, tc := range []struct {
		at   time.Time
		want int
	}{
		{now, http.StatusAccepted},
		{now.Add(-callevents.MaxActivityTimeSkew), http.StatusAccepted},
		{now.Add(callevents.MaxActivityTimeSkew).In(time.FixedZone("UTC+2", 7200)), http.StatusAccepted},
		{now.Add(-callevents.MaxActivityTimeSkew - time.Second), http.StatusBadRequest},
		{now.Add(callevents.MaxActivityTimeSkew + time.Millisecond), http.StatusBadRequest},
		{time.Now(), http.StatusBadRequest}, // the wall clock is not the service's
	} {
		r := b.postEvents(t, b.bearer("pbx"), report(i, tc.at))
		if r.status != tc.want {
			t.Errorf("time %s with now %s: HTTP %d %s, want %d", tc.at.Format(time.RFC3339Nano), now.Format(time.RFC3339), r.status, r.raw, tc.want)
			continue
		}
		if r.status == http.StatusBadRequest && (r.err.Code != "invalid_request" || r.err.Field == nil || *r.err.Field != "time") {
			t.Errorf("time %s: %s, want invalid_request naming time", tc.at.Format(time.RFC3339Nano), r.raw)
		}
	}
	if n := len(b.deliveriesOf(t, "0003*210")); n != 3 {
		t.Errorf("%d deliveries, want 3 (the accepted times)", n)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Ensure the intake wants a Bearer token of a pbx or admin client: 401
// unauthorized without one, with a wrong one or an expired one, 403
// forbidden for other scopes; and only POST.
func TestIntakeAuth(t *testing.T) {
	b := setup(t, bundleOptions{})
	b.mustAdd(t, "0003*210", int(callevents.DialOut))
	body := `{"callId":"c","phase":"dial","callerExtension":"0003*210"}`
	idSecret := strings.SplitN(b.secret["pbx"], ":", 2)
	for _, tc := range []struct {
		name, auth string
		status     int
		code       string
	}{
		{"none", "", 401, "unauthorized"},
		{"unknown-token", "Bearer not-a-token", 401, "unauthorized"},
		{"empty-bearer", "Bearer ", 401, "unauthorized"},
		{"basic", "Basic " + basic(idSecret[0], idSecret[1]), 401, "unauthorized"},
		{"token-without-scheme", b.tokens["pbx"], 401, "unauthorized"},
		{"expired", "Bearer " + b.expiredToken(t), 401, "unauthorized"},
		{"org-scope", b.bearer("org:0003"), 403, "forbidden"},
		{"ext-scope", b.bearer("ext:0003*210"), 403, "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.postEvents(t, tc.auth, body)
			if r.status != tc.status || r.err.Code != tc.code {
				t.Errorf("HTTP %d %s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	// An out-of-scope client learns nothing from validation: 403 for a bad body too.
	if r := b.postEvents(t, b.bearer("org:0003"), `{"bogus":1}`); r.status != 403 {
		t.Errorf("org scope, bad body: HTTP %d %s, want 403", r.status, r.raw)
	}
	if n := len(b.deliveriesOf(t, "0003*210")); n != 0 {
		t.Errorf("%d deliveries stored by refused requests", n)
	}
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+service.PathEvents, nil)
	req.Header.Set("Authorization", b.bearer("pbx"))
	if r := doIntake(t, req); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" || r.err.Code != "method_not_allowed" {
		t.Errorf("GET: HTTP %d Allow %q %s", r.status, r.header.Get("Allow"), r.raw)
	}
}

func basic(user, password string) string {
	req, _ := http.NewRequest("GET", "http://x/", nil)
	req.SetBasicAuth(user, password)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// Ensure a store failure is a 500 internal_error that reveals nothing and
// is logged once with the request id.
func TestIntakeInternalError(t *testing.T) {
	b := setup(t, bundleOptions{})
	body := `{"callId":"c","phase":"dial","callerExtension":"0003*210"}`
	if r := b.postEvents(t, b.bearer("pbx"), body); r.status != http.StatusAccepted { // the token is now cached
		t.Fatalf("HTTP %d %s", r.status, r.raw)
	}
	b.db.Close()
	r := b.postEvents(t, b.bearer("pbx"), `{"callId":"c2","phase":"dial","callerExtension":"0003*210"}`)
	if r.status != http.StatusInternalServerError || r.err.Code != "internal_error" || r.err.Field != nil {
		t.Fatalf("HTTP %d %s, want 500 internal_error", r.status, r.raw)
	}
	for _, leak := range []string{"sql", "SQL", "INSERT", "database is closed", ".go:", "/"} {
		if strings.Contains(r.err.Message, leak) {
			t.Errorf("message %q leaks %q", r.err.Message, leak)
		}
	}
	logs := b.logs.String()
	if strings.Count(logs, "service: internal error") != 1 || !strings.Contains(logs, "request_id="+r.err.RequestID) {
		t.Errorf("want the internal error logged once with request id %s:\n%s", r.err.RequestID, logs)
	}
}

// Ensure a panic in the intake is a 500 internal_error, logged with the
// request id, and an unconfigured intake says so.
func TestIntakePanicAndNotConfigured(t *testing.T) {
	b := setup(t, bundleOptions{queued: func(int) { panic("boom") }})
	b.mustAdd(t, "0003*210", int(callevents.DialOut))
	r := b.postEvents(t, b.bearer("pbx"), `{"callId":"c","phase":"dial","callerExtension":"0003*210"}`)
	if r.status != http.StatusInternalServerError || r.err.Code != "internal_error" || strings.Contains(r.raw, "boom") {
		t.Errorf("panic: HTTP %d %s", r.status, r.raw)
	}
	if logs := b.logs.String(); !strings.Contains(logs, "service: panic") || !strings.Contains(logs, "request_id="+r.err.RequestID) {
		t.Errorf("panic not logged with its request id:\n%s", logs)
	}

	b = setup(t, bundleOptions{noDeliveries: true})
	r = b.postEvents(t, b.bearer("pbx"), `{"callId":"c","phase":"dial","callerExtension":"0003*210"}`)
	if r.status != http.StatusInternalServerError || r.err.Code != "internal_error" || !strings.Contains(r.err.Message, "not available") {
		t.Errorf("not configured: HTTP %d %s", r.status, r.raw)
	}
}
