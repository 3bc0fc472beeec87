package service_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/callevents/callevents"
)

// nilField is a field sent as xsi:nil="true", its prefix declared on it.
func nilField(name string) string {
	return `<v1:` + name + ` xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"/>`
}

// emptyField is a field sent empty.
func emptyField(name string) string { return `<v1:` + name + `/>` }

// storedEvent is what a Call Event holds, but its id and time.
type storedEvent struct {
	typ, method, status int
	url, note, secret   string
}

func (e storedEvent) with(change func(*storedEvent)) storedEvent {
	change(&e)
	return e
}

// storedEvents returns the Call Events of ext, sorted.
func (b *testBundle) storedEvents(t *testing.T, ext string) []storedEvent {
	t.Helper()
	items, _, err := b.db.FindCallEvents(context.Background(), callevents.CallEventFilter{Extension: callevents.Extension(ext)})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]storedEvent, len(items))
	for i, c := range items {
		out[i] = storedEvent{int(c.Type), int(c.Method), int(c.Status), c.URL, c.Note, c.Secret}
	}
	slices.SortFunc(out, func(a, b storedEvent) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return out
}

// Ensure every optional element of every SOAP operation sent as xsi:nil is
// absent, and sent empty is refused with its code when it is a number
// (changing nothing), while an empty note clears the note and an empty
// secret removes the secret (SPEC.md §4). Required elements sent nil are
// missing (117). Each case runs on an extension of its own holding a
// Dial-In (POST, enabled, a note and a secret) and a Hangup (GET,
// disabled) Call Event, and checks the fault code and the Call Events
// after it.
func TestNilAndEmptyFields(t *testing.T) {
	b := setup(t, bundleOptions{})
	dialIn := storedEvent{0, 1, 1, "http://127.0.0.1:9/dial-in", "keep me", "0123456789abcdef-secret"}
	hangup := storedEvent{2, 0, 0, "http://127.0.0.1:9/hangup", "", ""}
	added := storedEvent{1, 0, 1, "http://127.0.0.1:9/new", "", ""} // Add's defaults: GET, enabled
	unchanged := []storedEvent{dialIn, hangup}
	noNote := func(e *storedEvent) { e.note = "" }
	noSecret := func(e *storedEvent) { e.secret = "" }

	add := func(fields string) string {
		return `<v1:AddPhoneCallEvent><v1:extension>{ext}</v1:extension>` + fields + `</v1:AddPhoneCallEvent>`
	}
	addNew := func(field string) string {
		return add(`<v1:type>1</v1:type><v1:url>http://127.0.0.1:9/new</v1:url>` + field)
	}
	get := func(fields string) string {
		return `<v1:GetPhoneCallEvents><v1:extension>{ext}</v1:extension>` + fields + `</v1:GetPhoneCallEvents>`
	}
	edit := func(fields string) string {
		return `<v1:EditPhoneCallEvent><v1:extension>{ext}</v1:extension>` + fields + `</v1:EditPhoneCallEvent>`
	}
	editDialIn := func(field string) string { return edit(`<v1:type>0</v1:type><v1:id>{id}</v1:id>` + field) }
	set := func(fields string) string {
		return `<v1:SetPhoneCallEventStatus><v1:extension>{ext}</v1:extension>` + fields + `</v1:SetPhoneCallEventStatus>`
	}
	del := func(fields string) string {
		return `<v1:DelPhoneCallEvent><v1:extension>{ext}</v1:extension>` + fields + `</v1:DelPhoneCallEvent>`
	}

	type eventCase struct {
		name string
		body string        // the operation element; {ext} and {id} (the Dial-In's) are filled in
		code string        // the fault code, "" for success
		want []storedEvent // the Call Events after it; nil: unchanged
		// found is, for GetPhoneCallEvents, the totalResults and the number
		// of Call Events returned.
		found [2]int
	}
	cases := []eventCase{
		{name: "add-method-nil", body: addNew(nilField("method")), want: []storedEvent{dialIn, added, hangup}},
		{name: "add-method-empty", body: addNew(emptyField("method")), code: "302"},
		{name: "add-status-nil", body: addNew(nilField("status")), want: []storedEvent{dialIn, added, hangup}},
		{name: "add-status-empty", body: addNew(emptyField("status")), code: "304"},
		{name: "add-note-nil", body: addNew(nilField("note")), want: []storedEvent{dialIn, added, hangup}},
		{name: "add-note-empty", body: addNew(emptyField("note")), want: []storedEvent{dialIn, added, hangup}},
		{name: "add-secret-nil", body: addNew(nilField("secret")), want: []storedEvent{dialIn, added, hangup}},
		{name: "add-secret-empty", body: addNew(emptyField("secret")), want: []storedEvent{dialIn, added, hangup}},
		{name: "add-type-nil", body: add(nilField("type") + `<v1:url>http://127.0.0.1:9/new</v1:url>`), code: "117"},
		{name: "add-type-empty", body: add(emptyField("type") + `<v1:url>http://127.0.0.1:9/new</v1:url>`), code: "301"},
		{name: "add-url-nil", body: add(`<v1:type>1</v1:type>` + nilField("url")), code: "117"},
		{name: "add-url-empty", body: add(`<v1:type>1</v1:type>` + emptyField("url")), code: "117"},

		{name: "get-type-nil", body: get(nilField("type")), found: [2]int{2, 2}},
		{name: "get-type-empty", body: get(emptyField("type")), code: "301"},
		{name: "get-id-nil", body: get(nilField("id")), found: [2]int{2, 2}},
		{name: "get-id-empty", body: get(emptyField("id")), found: [2]int{2, 2}},
		{name: "get-startIndex-nil", body: get(nilField("startIndex") + `<v1:count>1</v1:count>`), found: [2]int{2, 1}},
		{name: "get-startIndex-empty", body: get(emptyField("startIndex")), code: "307"},
		{name: "get-count-nil", body: get(nilField("count")), found: [2]int{2, 2}},
		{name: "get-count-empty", body: get(emptyField("count")), code: "307"},

		{name: "edit-url-nil", body: editDialIn(nilField("url") + `<v1:note>new note</v1:note>`), want: []storedEvent{dialIn.with(func(e *storedEvent) { e.note = "new note" }), hangup}},
		{name: "edit-url-empty", body: editDialIn(emptyField("url")), code: "117"},
		{name: "edit-method-nil", body: editDialIn(nilField("method")), want: unchanged},
		{name: "edit-method-empty", body: editDialIn(emptyField("method")), code: "302"},
		{name: "edit-status-nil", body: editDialIn(nilField("status")), want: unchanged},
		{name: "edit-status-empty", body: editDialIn(emptyField("status")), code: "304"},
		{name: "edit-note-nil", body: editDialIn(nilField("note")), want: unchanged},
		{name: "edit-note-empty", body: editDialIn(emptyField("note")), want: []storedEvent{dialIn.with(noNote), hangup}},
		{name: "edit-secret-nil", body: editDialIn(nilField("secret")), want: unchanged},
		{name: "edit-secret-empty", body: editDialIn(emptyField("secret")), want: []storedEvent{dialIn.with(noSecret), hangup}},
		{
			name: "edit-only-the-elements-with-values",
			body: editDialIn(`<v1:url>http://127.0.0.1:9/moved</v1:url>` + nilField("method") + nilField("status") + nilField("note") + nilField("secret")),
			want: []storedEvent{dialIn.with(func(e *storedEvent) { e.url = "http://127.0.0.1:9/moved" }), hangup},
		},
		{name: "edit-empty-note-and-secret-only", body: editDialIn(emptyField("note") + emptyField("secret")), want: []storedEvent{dialIn.with(noNote).with(noSecret), hangup}},
		{name: "edit-empty-number-changes-nothing", body: editDialIn(emptyField("note") + emptyField("secret") + emptyField("status")), code: "304"},
		// The ways clients write nil: .NET's i: prefix, xs:boolean 1, an
		// undeclared xsi prefix; and xsi:nil="false", which is a value.
		{name: "edit-nil-dotnet-prefix", body: editDialIn(`<v1:status xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true"/><v1:note xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true"></v1:note>`), want: unchanged},
		{name: "edit-nil-one", body: editDialIn(`<v1:method xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="1"/>`), want: unchanged},
		{name: "edit-nil-undeclared-prefix", body: editDialIn(`<v1:secret xsi:nil="true"/>`), want: unchanged},
		{name: "edit-nil-false", body: editDialIn(`<v1:status xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="false">0</v1:status>`), want: []storedEvent{dialIn.with(func(e *storedEvent) { e.status = 0 }), hangup}},
		{name: "edit-type-nil", body: edit(nilField("type") + `<v1:id>{id}</v1:id><v1:note>x</v1:note>`), code: "117"},
		{name: "edit-type-empty", body: edit(emptyField("type") + `<v1:id>{id}</v1:id><v1:note>x</v1:note>`), code: "301"},
		{name: "edit-id-nil", body: edit(`<v1:type>0</v1:type>` + nilField("id") + `<v1:note>x</v1:note>`), code: "117"},
		{name: "edit-id-empty", body: edit(`<v1:type>0</v1:type>` + emptyField("id") + `<v1:note>x</v1:note>`), code: "117"},

		{name: "set-status-nil", body: set(`<v1:type>0</v1:type><v1:id>{id}</v1:id>` + nilField("status")), code: "117"},
		{name: "set-status-empty", body: set(`<v1:type>0</v1:type><v1:id>{id}</v1:id>` + emptyField("status")), code: "304"},
		{name: "set-type-nil", body: set(nilField("type") + `<v1:id>{id}</v1:id><v1:status>0</v1:status>`), code: "117"},
		{name: "set-type-empty", body: set(emptyField("type") + `<v1:id>{id}</v1:id><v1:status>0</v1:status>`), code: "301"},
		{name: "set-id-nil", body: set(`<v1:type>0</v1:type>` + nilField("id") + `<v1:status>0</v1:status>`), code: "117"},
		{name: "set-id-empty", body: set(`<v1:type>0</v1:type>` + emptyField("id") + `<v1:status>0</v1:status>`), code: "117"},

		// DelPhoneCallEvent without a type deletes all of the extension.
		{name: "del-type-nil", body: del(nilField("type")), want: []storedEvent{}},
		{name: "del-type-empty", body: del(emptyField("type")), code: "301"},
		{name: "del-id-nil", body: del(`<v1:type>2</v1:type>` + nilField("id")), want: []storedEvent{dialIn}},
		// An empty id is refused, not read as absent (all of the type).
		{name: "del-id-empty", body: del(`<v1:type>2</v1:type>` + emptyField("id")), code: "117"},
	}
	// The extension, required everywhere, is missing when nil or empty.
	for op, fields := range map[string]string{
		"AddPhoneCallEvent": `<v1:type>1</v1:type><v1:url>http://127.0.0.1:9/new</v1:url>`, "GetPhoneCallEvents": ``,
		"EditPhoneCallEvent": `<v1:type>0</v1:type><v1:id>{id}</v1:id><v1:note>x</v1:note>`, "DelPhoneCallEvent": ``,
		"SetPhoneCallEventStatus": `<v1:type>0</v1:type><v1:id>{id}</v1:id><v1:status>0</v1:status>`,
	} {
		for kind, field := range map[string]string{"nil": nilField("extension"), "empty": emptyField("extension")} {
			cases = append(cases, eventCase{name: op + "-extension-" + kind, body: `<v1:` + op + `>` + field + fields + `</v1:` + op + `>`, code: "117"})
		}
	}

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ext := fmt.Sprintf("0007*%03d", i)
			id := b.mustAddEvent(t, ext, dialIn)
			b.mustAddEvent(t, ext, hangup)
			body := strings.NewReplacer("{ext}", ext, "{id}", id).Replace(tc.body)
			status, resp := b.call(t, "admin", body)
			f, isFault := parseFault(t, resp)
			switch {
			case tc.code != "" && (!isFault || f.code != tc.code || f.faultCode != "Client"):
				t.Errorf("HTTP %d fault %+v, want Client/%s\n%s", status, f, tc.code, resp)
			case tc.code == "" && isFault:
				t.Errorf("HTTP %d fault %+v, want success", status, f)
			case tc.found != [2]int{}:
				el := bodyElement(t, resp)
				if got := [2]int{atoi(t, el.FindElement("totalResults").Text()), len(el.FindElements("phoneCallEvent"))}; got != tc.found {
					t.Errorf("found (totalResults, returned) %v, want %v", got, tc.found)
				}
			}
			want := tc.want
			if want == nil {
				want = unchanged
			}
			if got := b.storedEvents(t, ext); !slices.Equal(got, want) {
				t.Errorf("Call Events after it:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// Ensure the optional elements of the delivery operations sent as xsi:nil
// are absent and, when numbers, refused when empty; their required
// elements are missing when nil or empty. Nothing changes either way.
func TestNilAndEmptyDeliveryFields(t *testing.T) {
	b := setup(t, bundleOptions{})
	l := b.makeDeliveryLog(t)
	const all = 4 // deliveries of 0003*210 in the log
	deliveries := func(fields string) string {
		return `<v1:GetPhoneCallEventDeliveries><v1:extension>0003*210</v1:extension>` + fields + `</v1:GetPhoneCallEventDeliveries>`
	}
	resend := func(fields string) string {
		return `<v1:ResendPhoneCallEventDelivery>` + fields + `</v1:ResendPhoneCallEventDelivery>`
	}
	test := func(fields string) string { return `<v1:TestPhoneCallEvent>` + fields + `</v1:TestPhoneCallEvent>` }
	const ext = `<v1:extension>0003*210</v1:extension>`
	dialOut := `<v1:type>1</v1:type><v1:id>` + l.dialOut + `</v1:id>`
	for _, tc := range []struct {
		name, body string
		code       string // "" for success
		found      int    // totalResults of a success
	}{
		{"deliveries-phoneCallEventId-nil", deliveries(nilField("phoneCallEventId")), "", all},
		{"deliveries-phoneCallEventId-empty", deliveries(emptyField("phoneCallEventId")), "", all},
		{"deliveries-callId-nil", deliveries(nilField("callId")), "", all},
		{"deliveries-callId-empty", deliveries(emptyField("callId")), "", all},
		{"deliveries-state-nil", deliveries(nilField("state")), "", all},
		{"deliveries-state-empty", deliveries(emptyField("state")), "", all},
		{"deliveries-startIndex-nil", deliveries(nilField("startIndex")), "", all},
		{"deliveries-startIndex-empty", deliveries(emptyField("startIndex")), "307", 0},
		{"deliveries-count-nil", deliveries(nilField("count")), "", all},
		{"deliveries-count-empty", deliveries(emptyField("count")), "307", 0},
		{"deliveries-extension-nil", `<v1:GetPhoneCallEventDeliveries>` + nilField("extension") + `</v1:GetPhoneCallEventDeliveries>`, "117", 0},
		{"deliveries-extension-empty", `<v1:GetPhoneCallEventDeliveries>` + emptyField("extension") + `</v1:GetPhoneCallEventDeliveries>`, "117", 0},
		{"resend-id-nil", resend(ext + nilField("id")), "117", 0},
		{"resend-id-empty", resend(ext + emptyField("id")), "117", 0},
		{"resend-extension-nil", resend(nilField("extension") + `<v1:id>` + l.failed + `</v1:id>`), "117", 0},
		{"resend-extension-empty", resend(emptyField("extension") + `<v1:id>` + l.failed + `</v1:id>`), "117", 0},
		{"test-type-nil", test(ext + nilField("type") + `<v1:id>` + l.dialOut + `</v1:id>`), "117", 0},
		{"test-type-empty", test(ext + emptyField("type") + `<v1:id>` + l.dialOut + `</v1:id>`), "301", 0},
		{"test-id-nil", test(ext + `<v1:type>1</v1:type>` + nilField("id")), "117", 0},
		{"test-id-empty", test(ext + `<v1:type>1</v1:type>` + emptyField("id")), "117", 0},
		{"test-extension-nil", test(nilField("extension") + dialOut), "117", 0},
		{"test-extension-empty", test(emptyField("extension") + dialOut), "117", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, events := deliveryStates(b.deliveriesOf(t, "0003*210")), b.storedEvents(t, "0003*210")
			status, resp := b.call(t, "admin", tc.body)
			f, isFault := parseFault(t, resp)
			switch {
			case tc.code != "" && (!isFault || f.code != tc.code || f.faultCode != "Client"):
				t.Errorf("HTTP %d fault %+v, want Client/%s\n%s", status, f, tc.code, resp)
			case tc.code == "" && isFault:
				t.Errorf("HTTP %d fault %+v, want success", status, f)
			case tc.code == "":
				if got := atoi(t, bodyElement(t, resp).FindElement("totalResults").Text()); got != tc.found {
					t.Errorf("totalResults %d, want %d", got, tc.found)
				}
			}
			if after := deliveryStates(b.deliveriesOf(t, "0003*210")); after != before {
				t.Errorf("the deliveries changed:\nbefore %s\nafter  %s", before, after)
			}
			if got := b.storedEvents(t, "0003*210"); !slices.Equal(got, events) {
				t.Errorf("the Call Events changed: %+v, were %+v", got, events)
			}
		})
	}
}

// deliveryStates renders the id, state, attempts and next attempt of
// each delivery, to compare.
func deliveryStates(ds []callevents.Delivery) string {
	var sb strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&sb, "%s %s %d %s;", d.ID, d.State, d.Attempts, d.NextAttemptAt)
	}
	return sb.String()
}

// mustAddEvent adds e to ext through SOAP and returns its id.
func (b *testBundle) mustAddEvent(t *testing.T, ext string, e storedEvent) string {
	t.Helper()
	fields := fmt.Sprintf(`<v1:extension>%s</v1:extension><v1:type>%d</v1:type><v1:url>%s</v1:url><v1:method>%d</v1:method><v1:status>%d</v1:status>`, ext, e.typ, e.url, e.method, e.status)
	if e.note != "" {
		fields += `<v1:note>` + e.note + `</v1:note>`
	}
	if e.secret != "" {
		fields += `<v1:secret>` + e.secret + `</v1:secret>`
	}
	status, body := b.call(t, "admin", `<v1:AddPhoneCallEvent>`+fields+`</v1:AddPhoneCallEvent>`)
	if status != 200 {
		t.Fatalf("add: HTTP %d\n%s", status, body)
	}
	return bodyElement(t, body).FindElement("phoneCallEvent/id").Text()
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}
