package service_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/callevents/callevents/service"
)

// Ensure every endpoint that reads a body refuses one past its limit with
// a clear error, and stores nothing: SOAP, the REST facade, the intake
// (MaxBodyBytes, 1 MiB by default) and the token endpoint (64 KiB). Field
// lengths, item counts and AMI message sizes have their own tests
// (TestFaultTable, TestIntakeValidation, TestGarbageSkipped).
func TestBodySizeLimits(t *testing.T) {
	b := setup(t, bundleOptions{})
	big := strings.Repeat("x", service.MaxBodyBytesDefault)
	before := b.snapshot(t)
	here := http.DefaultClient

	soap := b.send(t, here, "POST", service.PathSOAP, "text/xml", "", envelope11(tokenHeader(b.tokens["admin"]),
		`<v1:AddPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>1</v1:type><v1:url>http://example.com/</v1:url><v1:note>`+big+`</v1:note></v1:AddPhoneCallEvent>`))
	if f, ok := parseFault(t, soap.body); soap.status != 500 || !ok || f.code != "400" || !strings.Contains(f.message, "larger than 1048576 bytes") {
		t.Errorf("SOAP: %d %.300s", soap.status, soap.body)
	}
	rest := b.send(t, here, "POST", "/uapi/extensions/@me/0003*210/phoneCallEvents/1", "application/json", b.bearer("admin"),
		`{"url":"http://example.com/","note":"`+big+`"}`)
	if rest.status != 400 || jsonErrorCode(t, rest.body) != "invalid_request" || !strings.Contains(rest.body, "larger than 1048576 bytes") {
		t.Errorf("REST: %d %.300s", rest.status, rest.body)
	}
	intake := b.send(t, here, "POST", service.PathEvents, "application/json", b.bearer("pbx"),
		`{"callId":"c","phase":"dial","callerExtension":"0003*210","callerIdName":"`+big+`"}`)
	if intake.status != 400 || jsonErrorCode(t, intake.body) != "invalid_request" || !strings.Contains(intake.body, "larger than 1048576 bytes") {
		t.Errorf("intake: %d %.300s", intake.status, intake.body)
	}
	id, secret, _ := strings.Cut(b.secret["admin"], ":")
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "padding": {strings.Repeat("p", 70<<10)}}
	token := b.send(t, here, "POST", service.PathToken, "application/x-www-form-urlencoded", "", form.Encode())
	if token.status != 400 || !strings.Contains(token.body, `"invalid_request"`) || strings.Contains(token.body, "access_token") {
		t.Errorf("token endpoint: %d %.300s", token.status, token.body)
	}

	if after := b.snapshot(t); after != before {
		t.Errorf("an oversized request changed the Call Events")
	}
	if ds := b.deliveriesOf(t, "0003*210"); len(ds) != 0 {
		t.Errorf("an oversized intake queued %d deliveries", len(ds))
	}
}
