package callevents_test

import (
	"testing"
	"time"

	"github.com/callevents/callevents"
)

func TestCallActivityValidate(t *testing.T) {
	ok := callevents.CallActivity{CallID: "c1", Phase: callevents.PhaseHangup, CallerExtension: "0003*210", CalledExtension: "0003*211", Status: "BUSY"}
	for name, tc := range map[string]struct {
		change func(*callevents.CallActivity)
		code   callevents.Code
		field  string
	}{
		"ok":                {func(*callevents.CallActivity) {}, 0, ""},
		"no-call-id":        {func(a *callevents.CallActivity) { a.CallID = " " }, callevents.CodeMissingParameter, "callId"},
		"no-phase":          {func(a *callevents.CallActivity) { a.Phase = "" }, callevents.CodeMissingParameter, "phase"},
		"bad-phase":         {func(a *callevents.CallActivity) { a.Phase = "ring" }, callevents.CodeMalformedRequest, "phase"},
		"no-extension":      {func(a *callevents.CallActivity) { a.CallerExtension, a.CalledExtension = "", "" }, callevents.CodeMissingParameter, "callerExtension"},
		"bad-called":        {func(a *callevents.CallActivity) { a.CalledExtension = "211" }, callevents.CodeExtensionInvalid, "calledExtension"},
		"bad-status":        {func(a *callevents.CallActivity) { a.Status = "GONE" }, callevents.CodeMalformedRequest, "status"},
		"status-not-hangup": {func(a *callevents.CallActivity) { a.Phase = callevents.PhaseDial }, callevents.CodeMalformedRequest, "status"},
		"long-name":         {func(a *callevents.CallActivity) { a.CallerIDName = string(make([]byte, 257)) }, callevents.CodeMalformedRequest, "callerIdName"},
	} {
		a := ok
		tc.change(&a)
		err := a.Validate()
		if code := callevents.ErrorCode(err, 0); code != tc.code || callevents.ErrorField(err) != tc.field {
			t.Errorf("%s: code %d field %q, want %d %q", name, code, callevents.ErrorField(err), tc.code, tc.field)
		}
	}
}

// Ensure a reported time is refused when more than a day from now, either
// way, with the 400 of an invalid field; absent (zero) is now.
func TestCallActivityValidateTime(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	for name, tc := range map[string]struct {
		at   time.Time
		code callevents.Code
	}{
		"absent":          {time.Time{}, 0},
		"now":             {now, 0},
		"a-day-ago":       {now.Add(-callevents.MaxActivityTimeSkew), 0},
		"in-a-day":        {now.Add(callevents.MaxActivityTimeSkew), 0},
		"other-zone":      {now.Add(23 * time.Hour).In(time.FixedZone("UTC-10", -10*3600)), 0},
		"over-a-day-ago":  {now.Add(-callevents.MaxActivityTimeSkew - time.Second), callevents.CodeMalformedRequest},
		"over-a-day-away": {now.Add(callevents.MaxActivityTimeSkew + time.Second), callevents.CodeMalformedRequest},
		"epoch":           {time.Unix(0, 0), callevents.CodeMalformedRequest},
	} {
		a := callevents.CallActivity{CallID: "c1", Phase: callevents.PhaseDial, CallerExtension: "0003*210", Time: tc.at}
		err := a.ValidateTime(now)
		wantField := ""
		if tc.code != 0 {
			wantField = "time"
		}
		if code := callevents.ErrorCode(err, 0); code != tc.code || callevents.ErrorField(err) != wantField {
			t.Errorf("%s: code %d field %q (%v), want %d %q", name, code, callevents.ErrorField(err), err, tc.code, wantField)
		}
	}
}

// Ensure the fan-out of SPEC §7 and the ten parameters of §6, in order.
func TestExtensionEvents(t *testing.T) {
	a := callevents.CallActivity{CallID: "1795869401.0", Phase: callevents.PhaseDial, CallerExtension: "0003*210", CallerIDNum: "210",
		CallerIDName: "Alice Ng", CalledExtension: "0003*211", CalledNumber: "211", CalledDID: "+40 21 555 0100"}
	evs := a.ExtensionEvents()
	if len(evs) != 2 || evs[0].Extension != "0003*210" || evs[0].Type != callevents.DialOut || evs[1].Extension != "0003*211" || evs[1].Type != callevents.DialIn {
		t.Fatalf("dial fan-out: %+v", evs)
	}
	want := "CallID=1795869401.0&CallerIDNum=210&CallerIDName=Alice+Ng&CalledDID=%2B40+21+555+0100&CalledExtension=0003%2A211&CallStatus=CALLING&CallFlow=OUT&CallerExtension=0003%2A210&CalledNumber=211&CallAPIID="
	if got := evs[0].Params.Encode(); got != want {
		t.Errorf("payload\n got  %s\n want %s", got, want)
	}
	if evs[1].Params.CallFlow != "IN" {
		t.Errorf("called side CallFlow %q", evs[1].Params.CallFlow)
	}
	a.Phase = callevents.PhaseAnswer
	evs = a.ExtensionEvents()
	if evs[0].Type != callevents.AnswerOut || evs[1].Type != callevents.AnswerIn || evs[0].Params.CallStatus != "ANSWER" {
		t.Errorf("answer fan-out: %+v", evs)
	}
	a.Phase, a.CallerExtension = callevents.PhaseHangup, ""
	evs = a.ExtensionEvents()
	if len(evs) != 1 || evs[0].Type != callevents.Hangup || evs[0].Params.CallStatus != "UNKNOWN" {
		t.Errorf("hangup without status: %+v", evs)
	}
}

func TestOrderKey(t *testing.T) {
	const ext = callevents.Extension("0003*210")
	if a, b := callevents.OrderKey(ext, "https://CRM.example.com:8443/in?x=1", "c1"), callevents.OrderKey(ext, "https://crm.example.com:8443/hangup", "c1"); a != b {
		t.Errorf("one extension, one receiver, one call: %q != %q", a, b)
	}
	if got, want := callevents.OrderKey(ext, "https://CRM.example.com:8443/in?x=1", "c1"), "0003*210 https://crm.example.com:8443 c1"; got != want {
		t.Errorf("OrderKey = %q, want %q", got, want)
	}
	if a, b := callevents.OrderKey(ext, "https://crm.example.com/in", "c1"), callevents.OrderKey(ext, "https://crm.example.com/in", "c2"); a == b {
		t.Error("two calls share an order key")
	}
	if a, b := callevents.OrderKey(ext, "https://crm.example.com/in", "c1"), callevents.OrderKey(ext, "https://log.example.com/in", "c1"); a == b {
		t.Error("two receivers share an order key")
	}
	// Two organizations' extensions on one call and one CRM host: one's
	// failing receiver must not hold back the other's.
	if a, b := callevents.OrderKey("0003*301", "https://crm.example.com/a", "c1"), callevents.OrderKey("0004*301", "https://crm.example.com/b", "c1"); a == b {
		t.Error("two extensions share an order key")
	}
}

func TestClaimRoomFor(t *testing.T) {
	c := callevents.Claim{N: 10, Room: map[string]int{"http://busy": 0, "http://half": 3}, DefaultRoom: 5}
	for origin, want := range map[string]int{"http://busy": 0, "http://half": 3, "http://other": 5} {
		if got := c.RoomFor(origin); got != want {
			t.Errorf("RoomFor(%q) = %d, want %d", origin, got, want)
		}
	}
	if got := (callevents.Claim{N: 7}).RoomFor("http://any"); got != 7 {
		t.Errorf("no DefaultRoom: RoomFor = %d, want N (7)", got)
	}
	c.Paused = map[callevents.PausedReceiver]int{{Organization: "0003", Origin: "http://busy"}: 1}
	if room, paused := c.PausedRoom("0003", "http://busy"); !paused || room != 1 {
		t.Errorf("PausedRoom(0003, busy) = %d, %v; want 1, true", room, paused)
	}
	if _, paused := c.PausedRoom("0004", "http://busy"); paused {
		t.Error("another organization's deliveries to the same origin are paused")
	}
}
