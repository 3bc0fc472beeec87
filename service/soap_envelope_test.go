package service_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/callevents/callevents/service"
)

// Ensure a Body holds exactly one operation and an envelope is all there
// is: two operations in a Body, two Bodies, or an element or text after
// the Envelope are a 400 fault "Malformed request" and run nothing (the
// first operation, a delete, used to run). Whitespace, comments and
// processing instructions after the Envelope are still accepted.
func TestOneOperationPerBody(t *testing.T) {
	b := setup(t, bundleOptions{})
	const ns = `xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v1="urn:callevents:phonecallevents:1"`
	header := `<soapenv:Header>` + tokenHeader(b.tokens["admin"]) + `</soapenv:Header>`
	del := `<v1:DelPhoneCallEvent><v1:extension>0003*210</v1:extension></v1:DelPhoneCallEvent>`
	add := `<v1:AddPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>1</v1:type><v1:url>http://127.0.0.1:9/new</v1:url></v1:AddPhoneCallEvent>`
	envelope := `<soapenv:Envelope ` + ns + `>` + header + `<soapenv:Body>` + del + `</soapenv:Body></soapenv:Envelope>`
	env12 := `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:v1="urn:callevents:phonecallevents:1"><env:Header>` +
		tokenHeader(b.tokens["admin"]) + `</env:Header><env:Body>` + del + add + `</env:Body></env:Envelope>`
	for _, tc := range []struct {
		name, doc string
		v12       bool
	}{
		{"two-operations", `<soapenv:Envelope ` + ns + `>` + header + `<soapenv:Body>` + del + add + `</soapenv:Body></soapenv:Envelope>`, false},
		{"two-operations-with-text-between", `<soapenv:Envelope ` + ns + `>` + header + `<soapenv:Body>` + del + "\n  <!-- next -->\n  " + add + `</soapenv:Body></soapenv:Envelope>`, false},
		{"two-operations-soap12", env12, true},
		{"two-bodies", `<soapenv:Envelope ` + ns + `>` + header + `<soapenv:Body>` + del + `</soapenv:Body><soapenv:Body>` + add + `</soapenv:Body></soapenv:Envelope>`, false},
		{"header-after-body", `<soapenv:Envelope ` + ns + `><soapenv:Body>` + del + `</soapenv:Body>` + header + `</soapenv:Envelope>`, false},
		{"second-envelope", envelope + envelope, false},
		{"element-after-envelope", envelope + "\n<extra/>", false},
		{"text-after-envelope", envelope + "\ntrailing garbage\n", false},
		{"cdata-after-envelope", envelope + "<![CDATA[x]]>", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.storedEvents(t, "0003*210")
			if len(before) == 0 {
				b.mustAdd(t, "0003*210", 0)
				before = b.storedEvents(t, "0003*210")
			}
			contentType := "text/xml; charset=utf-8"
			if tc.v12 {
				contentType = "application/soap+xml; charset=utf-8"
			}
			status, body := b.post(t, service.PathSOAP, contentType, tc.doc)
			f, ok := parseFault(t, body)
			wantStatus, wantFault := http.StatusInternalServerError, "Client"
			if tc.v12 {
				wantStatus, wantFault = http.StatusBadRequest, "Sender"
			}
			if !ok || status != wantStatus || f.code != "400" || f.faultCode != wantFault || !strings.HasPrefix(f.message, "Malformed request") {
				t.Errorf("HTTP %d fault %+v, want %d %s/400 Malformed request\n%s", status, f, wantStatus, wantFault, body)
			}
			if after := b.storedEvents(t, "0003*210"); !slices.Equal(after, before) {
				t.Errorf("the refused request changed the Call Events: %+v, were %+v", after, before)
			}
		})
	}

	// What may follow an envelope: whitespace, comments, processing instructions.
	b.mustAdd(t, "0003*210", 2)
	status, body := b.post(t, service.PathSOAP, "text/xml", envelope+"\n\t <!-- sent by a test -->\r\n<?pi x?>\n")
	if _, isFault := parseFault(t, body); status != 200 || isFault {
		t.Errorf("an envelope followed by whitespace and a comment: HTTP %d\n%s", status, body)
	}
	if n := b.count(t, "0003*210"); n != 0 {
		t.Errorf("the delete left %d Call Events", n)
	}
}
