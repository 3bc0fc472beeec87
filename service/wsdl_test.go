package service_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/callevents/callevents/service"
)

// Ensure the WSDL is served at ?wsdl in any case, with soap:address pointing
// at the scheme, host and path the request came in on (behind a proxy:
// TestForwardedTrustedProxy).
func TestWSDL(t *testing.T) {
	b := setup(t, bundleOptions{})
	for _, tc := range []struct{ path, want string }{
		{service.PathSOAP + "?wsdl", b.srv.URL + service.PathSOAP},
		{service.PathSOAP + "?WSDL", b.srv.URL + service.PathSOAP},
		{service.PathSOAPLegacy + "?Wsdl", b.srv.URL + service.PathSOAPLegacy},
	} {
		req, _ := http.NewRequest("GET", b.srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml") {
			t.Fatalf("%s: HTTP %d %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(body); err != nil {
			t.Fatal(err)
		}
		addrs := doc.FindElements("//service/port/address")
		if len(addrs) != 2 {
			t.Fatalf("%d addresses, want 2 (SOAP 1.1 and 1.2)", len(addrs))
		}
		for _, a := range addrs {
			if got := a.SelectAttrValue("location", ""); got != tc.want {
				t.Errorf("%s: location %q, want %q", tc.path, got, tc.want)
			}
		}
	}
	resp, err := http.Get(b.srv.URL + service.PathSOAP)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET without ?wsdl: HTTP %d, want 405", resp.StatusCode)
	}
}
