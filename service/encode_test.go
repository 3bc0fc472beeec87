package service

import (
	"bytes"
	"encoding/xml"
	"testing"
	"time"

	"github.com/hooklift/gowsdl/soap"

	"github.com/callevents/callevents/gen"
)

// Ensure the direct writer produces exactly the bytes encoding/xml produces
// for the same gen values, including characters that need escaping,
// invalid UTF-8, empty and absent values, and sub-second times.
func TestEncodeResponse(t *testing.T) {
	i := func(v int32) *int32 { return &v }
	s := func(v string) *string { return &v }
	b := func(v bool) *bool { return &v }
	at := time.Date(2026, 11, 28, 12, 34, 56, 0, time.UTC)
	for name, resp := range map[string]*gen.GetPhoneCallEventsResponse{
		"empty":     {TotalResults: i(0)},
		"nil-total": {},
		"items": {TotalResults: i(42), PhoneCallEvent: []*gen.PhoneCallEvent{
			{Id: "NqeyDRqo4FtabmFj8gNWq3hsiGNYyq", Extension: "0003*210", Type_: i(0), Method: i(1), Url: "https://crm.example.com/h?a=1&b=<2>", Status: i(0), Note: s(""), HasSecret: b(false), Modified: soap.CreateXsdDateTime(at, true)},
			{Id: "x", Extension: "0003*211", Type_: i(4), Method: i(0), Url: "http://a/\"'", Status: i(1), Note: s("tab\there\nnew\r line & <é✓> ]]> \x00 \xff\xfe"), HasSecret: b(true), Modified: soap.CreateXsdDateTime(at.Add(123456789), true)},
			nil,
			{Id: "", Extension: "", Url: "", Modified: soap.XSDDateTime{}},
			{Type_: i(-2147483648), Note: nil, HasSecret: nil},
		}},
	} {
		var want bytes.Buffer
		if err := xml.NewEncoder(&want).Encode(resp); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := encodeResponse(&got, resp); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%s:\n got  %s\n want %s", name, got.String(), want.String())
		}
	}
}
