package service

import (
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents"
)

// Ensure the intake reads every field of an object or array, and refuses
// unknown fields, wrong types, bad times and malformed JSON naming the field.
func TestDecodeActivities(t *testing.T) {
	got, err := decodeActivities([]byte(` {"callId":"c1","phase":"hangup","callerExtension":"0003*210","callerIdNum":"210",
		"callerIdName":"Ann","calledNumber":"0040744","calledExtension":"0003*211","calledDid":"0213",
		"status":"BUSY","callApiId":"api-1","time":"2026-01-02T15:04:05.5+02:00"} `))
	if err != nil {
		t.Fatal(err)
	}
	want := callevents.CallActivity{
		CallID: "c1", Phase: callevents.PhaseHangup, CallerExtension: "0003*210", CallerIDNum: "210",
		CallerIDName: "Ann", CalledNumber: "0040744", CalledExtension: "0003*211", CalledDID: "0213",
		Status: "BUSY", CallAPIID: "api-1", Time: time.Date(2026, 1, 2, 13, 4, 5, 5e8, time.UTC),
	}
	if len(got) != 1 || got[0] != want {
		t.Errorf("object:\n got  %+v\n want %+v", got, want)
	}
	got, err = decodeActivities([]byte(`[{"callId":"a","phase":"dial","callerExtension":"0003*210","callerIdName":null},{"callId":"b"}]`))
	if err != nil || len(got) != 2 || got[0].CallID != "a" || got[1].CallID != "b" || got[0].CallerIDName != "" {
		t.Errorf("array: %+v %v", got, err)
	}

	for _, tc := range []struct{ name, body, field, message string }{
		{"empty", "  ", "", "empty"},
		{"not-json", `{"callId":`, "", "not valid JSON"},
		{"trailing", `{"callId":"a"} {}`, "", "after its JSON value"},
		{"scalar", `"dial"`, "", "not a JSON object"},
		{"null", `null`, "", "not a JSON object"},
		{"typo", `{"callId":"a","calledExtention":"0003*210"}`, "calledExtention", "Unknown field"},
		{"case", `{"CallId":"a"}`, "CallId", "Unknown field"},
		{"number", `{"callId":5}`, "callId", "must be a JSON string"},
		{"object-value", `{"callId":"a","phase":{"x":1}}`, "phase", "must be a JSON string"},
		{"bool", `{"callId":"a","status":true}`, "status", "must be a JSON string"},
		{"time-format", `{"callId":"a","time":"2026-01-02 15:04:05"}`, "time", "RFC 3339"},
		{"time-number", `{"callId":"a","time":1700000000}`, "time", "must be a JSON string"},
		{"array-item-not-object", `[{"callId":"a"},7]`, "[1]", "must be a JSON object"},
		{"lone-array-item-not-object", `[7]`, "[0]", "must be a JSON object"},
		{"array-field", `[{"callId":"a"},{"callId":"b","calledExtention":"x"}]`, "[1].calledExtention", "Unknown field"},
		{"lone-array-field", `[{"callId":1}]`, "callId", "must be a JSON string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeActivities([]byte(tc.body))
			if err == nil {
				t.Fatal("accepted")
			}
			if code := callevents.ErrorCode(err, 0); code != callevents.CodeMalformedRequest {
				t.Errorf("code %d, want 400", code)
			}
			if f := callevents.ErrorField(err); f != tc.field {
				t.Errorf("field %q, want %q", f, tc.field)
			}
			if m := callevents.ErrorMessage(err); !strings.Contains(m, tc.message) {
				t.Errorf("message %q, want it to contain %q", m, tc.message)
			}
		})
	}
	many := "[" + strings.Repeat(`{"callId":"a"},`, callevents.MaxActivitiesPerRequest) + `{"callId":"a"}]`
	if _, err := decodeActivities([]byte(many)); callevents.ErrorCode(err, 0) != callevents.CodeMalformedRequest {
		t.Errorf("%d activities: %v", callevents.MaxActivitiesPerRequest+1, err)
	}
}
