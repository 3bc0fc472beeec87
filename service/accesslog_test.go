package service_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/callevents/callevents/service"
)

// Ensure that at debug level every answer is logged once, with the request
// id its client got in X-Request-Id, its edge, operation and code.
func TestAccessLogCarriesRequestID(t *testing.T) {
	b := setup(t, bundleOptions{debugLogs: true})
	for _, tc := range []struct {
		name, method, path, contentType, auth, body, want string
	}{
		{"soap", "POST", service.PathSOAP, "text/xml", "", envelope11(tokenHeader(b.tokens["admin"]), `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension></v1:GetPhoneCallEvents>`),
			"edge=soap operation=GetPhoneCallEvents code=0"},
		{"soap fault", "POST", service.PathSOAP, "text/xml", "", envelope11(tokenHeader(b.tokens["admin"]), `<v1:GetPhoneCallEvents><v1:extension>bad</v1:extension></v1:GetPhoneCallEvents>`),
			"edge=soap operation=GetPhoneCallEvents code=254"},
		{"intake", "POST", service.PathEvents, "application/json", b.bearer("pbx"), `{"callId":"a1","phase":"dial","callerExtension":"0003*210"}`,
			"edge=intake operation=events code=0"},
		{"rest", "GET", "/uapi/extensions/@me/0003*210/phoneCallEvents", "", b.bearer("admin"), "",
			`edge=rest operation="GET /uapi/extensions/{userId}/{extension}/phoneCallEvents" code=0`},
	} {
		req, _ := http.NewRequest(tc.method, b.srv.URL+tc.path, strings.NewReader(tc.body))
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		id := resp.Header.Get("X-Request-Id")
		var lines []string
		for _, line := range strings.Split(b.logs.String(), "\n") {
			if strings.Contains(line, "request_id="+id) && strings.Contains(line, `msg="service: request served"`) {
				lines = append(lines, line)
			}
		}
		if id == "" || len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
			t.Errorf("%s: request id %q, access log lines %q, want one with %q", tc.name, id, lines, tc.want)
		}
	}
}
