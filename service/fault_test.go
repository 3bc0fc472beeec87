package service_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/service"
)

const billionLaughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v1="urn:callevents:phonecallevents:1">
<soapenv:Body><v1:AddPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>0</v1:type>
<v1:url>http://127.0.0.1:9/h</v1:url><v1:note>&lol9;</v1:note></v1:AddPhoneCallEvent></soapenv:Body></soapenv:Envelope>`

// Ensure every fault code of SPEC §4 is returned for its cause, as a SOAP
// 1.1 fault with the right faultcode, and that a failed request changes
// nothing: the Call Events of 0003*210 and 0004*100 stay exactly as they were.
func TestFaults(t *testing.T) {
	b := setup(t, bundleOptions{maxPerExtension: 3})
	keep := b.mustAdd(t, "0003*210", 0)
	other := b.mustAdd(t, "0004*100", 2)
	b.mustAdd(t, "0005*100", 0)
	b.mustAdd(t, "0005*100", 0)
	b.mustAdd(t, "0005*100", 0)
	expired := b.expiredToken(t)
	add := func(fields string) string { return `<v1:AddPhoneCallEvent>` + fields + `</v1:AddPhoneCallEvent>` }
	edit := func(fields string) string {
		return `<v1:EditPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>0</v1:type><v1:id>` + keep + `</v1:id>` + fields + `</v1:EditPhoneCallEvent>`
	}
	const ext, typ, url = `<v1:extension>0003*210</v1:extension>`, `<v1:type>0</v1:type>`, `<v1:url>http://127.0.0.1:9/h</v1:url>`

	for _, tc := range []struct {
		name      string
		header    string // "" = admin token
		body      string // a full envelope when it starts with "<?xml" or "<!", else the body element
		code      string
		faultCode string
	}{
		{"no-credentials", "-", add(ext + typ + url), "100", "Client"},
		{"unknown-token", tokenHeader("nope"), add(ext + typ + url), "100", "Client"},
		{"wrong-password", `<v1:userCredentials><v1:username>x</v1:username><v1:password>y</v1:password></v1:userCredentials>`, add(ext + typ + url), "100", "Client"},
		{"expired-token", tokenHeader(expired), add(ext + typ + url), "102", "Client"},
		{"out-of-scope-edit", "org:0003", `<v1:EditPhoneCallEvent><v1:extension>0004*100</v1:extension><v1:type>2</v1:type><v1:id>` + other + `</v1:id><v1:url>http://127.0.0.1:9/x</v1:url></v1:EditPhoneCallEvent>`, "103", "Client"},
		{"out-of-scope-delete", "org:0003", `<v1:DelPhoneCallEvent><v1:extension>0004*100</v1:extension></v1:DelPhoneCallEvent>`, "103", "Client"},
		{"out-of-scope-get", "ext:0003*210", `<v1:GetPhoneCallEvents><v1:extension>0003*211</v1:extension></v1:GetPhoneCallEvents>`, "103", "Client"},
		{"pbx-scope", "pbx", add(ext + typ + url), "103", "Client"},
		{"missing-extension", "", add(typ + url), "117", "Client"},
		{"missing-type", "", add(ext + url), "117", "Client"},
		{"missing-url", "", add(ext + typ), "117", "Client"},
		{"missing-id", "", `<v1:EditPhoneCallEvent>` + ext + typ + `</v1:EditPhoneCallEvent>`, "117", "Client"},
		{"missing-status", "", `<v1:SetPhoneCallEventStatus>` + ext + typ + `<v1:id>` + keep + `</v1:id></v1:SetPhoneCallEventStatus>`, "117", "Client"},
		{"extension-invalid", "", add(`<v1:extension>210</v1:extension>` + typ + url), "254", "Client"},
		{"not-found-edit", "", `<v1:EditPhoneCallEvent>` + ext + typ + `<v1:id>doesnotexist</v1:id><v1:note>x</v1:note></v1:EditPhoneCallEvent>`, "255", "Client"},
		{"not-found-wrong-type", "", `<v1:SetPhoneCallEventStatus>` + ext + `<v1:type>1</v1:type><v1:id>` + keep + `</v1:id><v1:status>0</v1:status></v1:SetPhoneCallEventStatus>`, "255", "Client"},
		{"not-found-delete", "", `<v1:DelPhoneCallEvent>` + ext + `<v1:id>doesnotexist</v1:id></v1:DelPhoneCallEvent>`, "255", "Client"},
		{"not-found-get-id", "", `<v1:GetPhoneCallEvents>` + ext + `<v1:id>doesnotexist</v1:id></v1:GetPhoneCallEvents>`, "255", "Client"},
		{"type-range", "", add(ext + `<v1:type>5</v1:type>` + url), "301", "Client"},
		{"type-text", "", add(ext + `<v1:type>Hangup</v1:type>` + url), "301", "Client"},
		{"method", "", add(ext + typ + url + `<v1:method>2</v1:method>`), "302", "Client"},
		{"method-text", "", edit(`<v1:method>POST</v1:method>`), "302", "Client"},
		{"url-scheme", "", add(ext + typ + `<v1:url>ftp://example.com/x</v1:url>`), "303", "Client"},
		{"url-relative", "", edit(`<v1:url>/hook</v1:url>`), "303", "Client"},
		{"url-fragment", "", add(ext + typ + `<v1:url>http://example.com/x#frag</v1:url>`), "303", "Client"},
		{"url-long", "", add(ext + typ + `<v1:url>http://example.com/` + strings.Repeat("a", 2048) + `</v1:url>`), "303", "Client"},
		{"status", "", add(ext + typ + url + `<v1:status>2</v1:status>`), "304", "Client"},
		{"note", "", edit(`<v1:note>` + strings.Repeat("n", 1025) + `</v1:note>`), "305", "Client"},
		{"secret-short", "", add(ext + typ + url + `<v1:secret>short</v1:secret>`), "306", "Client"},
		{"secret-non-ascii", "", edit(`<v1:secret>ééééééééééééééééé</v1:secret>`), "306", "Client"},
		{"paging-count", "", `<v1:GetPhoneCallEvents>` + ext + `<v1:count>5001</v1:count></v1:GetPhoneCallEvents>`, "307", "Client"},
		{"paging-start", "", `<v1:GetPhoneCallEvents>` + ext + `<v1:startIndex>-1</v1:startIndex></v1:GetPhoneCallEvents>`, "307", "Client"},
		{"paging-text", "", `<v1:GetPhoneCallEvents>` + ext + `<v1:count>many</v1:count></v1:GetPhoneCallEvents>`, "307", "Client"},
		{"limit", "", add(`<v1:extension>0005*100</v1:extension>` + typ + url), "308", "Client"},
		// The delivery log (SPEC §8).
		{"deliveries-out-of-scope", "org:0003", `<v1:GetPhoneCallEventDeliveries><v1:extension>0004*100</v1:extension></v1:GetPhoneCallEventDeliveries>`, "103", "Client"},
		{"deliveries-pbx-scope", "pbx", `<v1:GetPhoneCallEventDeliveries>` + ext + `</v1:GetPhoneCallEventDeliveries>`, "103", "Client"},
		{"resend-out-of-scope", "ext:0003*210", `<v1:ResendPhoneCallEventDelivery><v1:extension>0003*211</v1:extension><v1:id>dlv_x</v1:id></v1:ResendPhoneCallEventDelivery>`, "103", "Client"},
		{"test-out-of-scope", "org:0003", `<v1:TestPhoneCallEvent><v1:extension>0004*100</v1:extension><v1:type>2</v1:type><v1:id>` + other + `</v1:id></v1:TestPhoneCallEvent>`, "103", "Client"},
		{"deliveries-missing-extension", "", `<v1:GetPhoneCallEventDeliveries><v1:state>failed</v1:state></v1:GetPhoneCallEventDeliveries>`, "117", "Client"},
		{"resend-missing-id", "", `<v1:ResendPhoneCallEventDelivery>` + ext + `</v1:ResendPhoneCallEventDelivery>`, "117", "Client"},
		{"test-missing-type", "", `<v1:TestPhoneCallEvent>` + ext + `<v1:id>` + keep + `</v1:id></v1:TestPhoneCallEvent>`, "117", "Client"},
		{"test-missing-id", "", `<v1:TestPhoneCallEvent>` + ext + typ + `</v1:TestPhoneCallEvent>`, "117", "Client"},
		{"deliveries-extension-invalid", "", `<v1:GetPhoneCallEventDeliveries><v1:extension>0003-210</v1:extension></v1:GetPhoneCallEventDeliveries>`, "254", "Client"},
		{"resend-extension-invalid", "", `<v1:ResendPhoneCallEventDelivery><v1:extension>x</v1:extension><v1:id>dlv_x</v1:id></v1:ResendPhoneCallEventDelivery>`, "254", "Client"},
		{"test-extension-invalid", "", `<v1:TestPhoneCallEvent><v1:extension>210</v1:extension>` + typ + `<v1:id>` + keep + `</v1:id></v1:TestPhoneCallEvent>`, "254", "Client"},
		{"test-not-found", "", `<v1:TestPhoneCallEvent>` + ext + typ + `<v1:id>doesnotexist</v1:id></v1:TestPhoneCallEvent>`, "255", "Client"},
		{"test-wrong-type", "", `<v1:TestPhoneCallEvent>` + ext + `<v1:type>1</v1:type><v1:id>` + keep + `</v1:id></v1:TestPhoneCallEvent>`, "255", "Client"},
		{"test-other-extension", "", `<v1:TestPhoneCallEvent><v1:extension>0003*211</v1:extension>` + typ + `<v1:id>` + keep + `</v1:id></v1:TestPhoneCallEvent>`, "255", "Client"},
		{"test-type-range", "", `<v1:TestPhoneCallEvent>` + ext + `<v1:type>7</v1:type><v1:id>` + keep + `</v1:id></v1:TestPhoneCallEvent>`, "301", "Client"},
		{"test-type-text", "", `<v1:TestPhoneCallEvent>` + ext + `<v1:type>Dial-In</v1:type><v1:id>` + keep + `</v1:id></v1:TestPhoneCallEvent>`, "301", "Client"},
		{"resend-not-found", "", `<v1:ResendPhoneCallEventDelivery>` + ext + `<v1:id>dlv_doesnotexist</v1:id></v1:ResendPhoneCallEventDelivery>`, "256", "Client"},
		{"deliveries-paging-count", "", `<v1:GetPhoneCallEventDeliveries>` + ext + `<v1:count>5001</v1:count></v1:GetPhoneCallEventDeliveries>`, "307", "Client"},
		{"deliveries-paging-zero", "", `<v1:GetPhoneCallEventDeliveries>` + ext + `<v1:count>0</v1:count></v1:GetPhoneCallEventDeliveries>`, "307", "Client"},
		{"deliveries-paging-start", "", `<v1:GetPhoneCallEventDeliveries>` + ext + `<v1:startIndex>-1</v1:startIndex></v1:GetPhoneCallEventDeliveries>`, "307", "Client"},
		{"deliveries-paging-text", "", `<v1:GetPhoneCallEventDeliveries>` + ext + `<v1:startIndex>first</v1:startIndex></v1:GetPhoneCallEventDeliveries>`, "307", "Client"},
		{"deliveries-state", "", `<v1:GetPhoneCallEventDeliveries>` + ext + `<v1:state>lost</v1:state></v1:GetPhoneCallEventDeliveries>`, "400", "Client"},
		{"not-xml", "", "<!this is not xml", "400", "Client"},
		{"unclosed", "", `<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><v1:AddPhoneCallEvent xmlns:v1="urn:callevents:phonecallevents:1">`, "400", "Client"},
		{"not-an-envelope", "", `<?xml version="1.0"?><AddPhoneCallEvent xmlns="urn:callevents:phonecallevents:1"/>`, "400", "Client"},
		{"wrong-envelope-namespace", "", `<?xml version="1.0"?><e:Envelope xmlns:e="urn:not-soap"><e:Body/></e:Envelope>`, "400", "VersionMismatch"},
		{"wrong-operation-namespace", "", `<AddPhoneCallEvent xmlns="urn:callevents:phonecallevents:2"><extension>0003*210</extension><type>0</type><url>http://127.0.0.1:9/h</url></AddPhoneCallEvent>`, "400", "Client"},
		{"unknown-operation", "", `<v1:DropAllTables/>`, "400", "Client"},
		{"empty-body", "", ``, "400", "Client"},
		{"billion-laughs", "", billionLaughs, "400", "Client"},
		{"too-large", "", add(ext + typ + url + `<v1:note>` + strings.Repeat("x", 2<<20) + `</v1:note>`), "400", "Client"},
		{"must-understand", `<wsse:Security xmlns:wsse="urn:x" soapenv:mustUnderstand="1"/>`, add(ext + typ + url), "400", "MustUnderstand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := tokenHeader(b.tokens["admin"])
			switch {
			case tc.header == "-":
				header = ""
			case strings.HasPrefix(tc.header, "<"):
				header = tc.header
			case tc.header != "":
				header = tokenHeader(b.tokens[tc.header])
			}
			doc := tc.body
			if !strings.HasPrefix(doc, "<?xml") && !strings.HasPrefix(doc, "<!") {
				doc = envelope11(header, doc)
			}
			before := b.snapshot(t)
			status, body := b.post(t, service.PathSOAP, "text/xml; charset=utf-8", doc)
			f, ok := parseFault(t, body)
			if !ok {
				t.Fatalf("no fault (HTTP %d):\n%s", status, body)
			}
			if status != http.StatusInternalServerError {
				t.Errorf("HTTP %d, want 500 for a SOAP 1.1 fault", status)
			}
			if f.code != tc.code || f.faultCode != tc.faultCode {
				t.Errorf("fault %s/%s (%s), want %s/%s", f.faultCode, f.code, f.reason, tc.faultCode, tc.code)
			}
			if f.reason == "" || f.message != f.reason {
				t.Errorf("faultstring %q and serviceFault message %q should be the same public text", f.reason, f.message)
			}
			if after := b.snapshot(t); after != before {
				t.Errorf("the failed request changed the store:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// snapshot renders every Call Event of the test extensions, to compare.
func (b *testBundle) snapshot(t *testing.T) string {
	t.Helper()
	var sb strings.Builder
	for _, ext := range []string{"0003*210", "0003*211", "0004*100", "0005*100"} {
		items, _, err := b.db.FindCallEvents(context.Background(), callevents.CallEventFilter{Extension: callevents.Extension(ext)})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range items {
			sb.WriteString(strings.Join([]string{c.ID, string(c.Extension), c.URL, c.Note, c.Secret, c.Modified.String()}, "|"))
			sb.WriteString(";")
		}
	}
	return sb.String()
}

func (b *testBundle) expiredToken(t *testing.T) string {
	t.Helper()
	idSecret := strings.SplitN(b.secret["admin"], ":", 2)
	past := &callevents.Authenticator{Store: b.db, TokenTTL: time.Minute, Now: func() time.Time { return time.Now().Add(-time.Hour) }}
	token, _, err := past.IssueToken(context.Background(), idSecret[0], idSecret[1])
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// Ensure an internal failure is a Server fault with code 151/152 whose text
// reveals nothing, logged once with the request id.
func TestInternalErrorIsNotLeaked(t *testing.T) {
	b := setup(t, bundleOptions{})
	token := b.tokens["admin"]
	// Authenticate once so that the token is known, then break the database.
	b.db.Close()
	for _, tc := range []struct{ body, code string }{
		{`<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension></v1:GetPhoneCallEvents>`, "151"},
	} {
		status, body := b.post(t, service.PathSOAP, "text/xml", envelope11(tokenHeader(token), tc.body))
		f, ok := parseFault(t, body)
		if !ok || status != 500 || f.faultCode != "Server" || f.code != tc.code {
			t.Errorf("HTTP %d fault %+v, want Server/%s\n%s", status, f, tc.code, body)
		}
		for _, leak := range []string{"sql", "SQL", "SELECT", "database is closed", ".go:", "/"} {
			if strings.Contains(f.reason, leak) {
				t.Errorf("fault text %q leaks %q", f.reason, leak)
			}
		}
	}
	logs := b.logs.String()
	if strings.Count(logs, "service: internal error") != 1 || !strings.Contains(logs, "request_id=") {
		t.Errorf("want the internal error logged once with a request id:\n%s", logs)
	}
}

// Ensure a panic becomes a Server fault and is logged with a request id.
func TestPanicBecomesServerFault(t *testing.T) {
	b := setup(t, bundleOptions{checkTarget: func(context.Context, string) error { panic("boom") }})
	status, body := b.call(t, "admin", `<v1:AddPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>0</v1:type><v1:url>http://127.0.0.1:9/h</v1:url></v1:AddPhoneCallEvent>`)
	f, ok := parseFault(t, body)
	if !ok || status != 500 || f.faultCode != "Server" {
		t.Fatalf("HTTP %d fault %+v\n%s", status, f, body)
	}
	if strings.Contains(body, "boom") || strings.Contains(body, "goroutine") {
		t.Errorf("the panic leaked into the fault:\n%s", body)
	}
	logs := b.logs.String()
	if !strings.Contains(logs, "service: panic") || !strings.Contains(logs, "boom") || !strings.Contains(logs, "request_id=") {
		t.Errorf("panic not logged with a request id:\n%s", logs)
	}
	if n := b.count(t, "0003*210"); n != 0 {
		t.Errorf("%d stored after a panic", n)
	}
}
