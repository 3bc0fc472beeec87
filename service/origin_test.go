package service_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/callevents/callevents/service"
)

// wsdlLocations fetches the WSDL with the given request headers and returns
// its soap:address locations and the response headers.
func (b *testBundle) wsdlLocations(t *testing.T, header http.Header) ([]string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", b.srv.URL+service.PathSOAP+"?wsdl", nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("?wsdl: HTTP %d", resp.StatusCode)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range doc.FindElements("//service/port/address") {
		out = append(out, a.SelectAttrValue("location", ""))
	}
	if len(out) != 2 {
		t.Fatalf("%d addresses, want 2 (SOAP 1.1 and 1.2)", len(out))
	}
	return out, resp.Header
}

// restLinks lists the extension's Call Events over REST with the given
// request headers and returns the page's links.self and the first entry's.
func (b *testBundle) restLinks(t *testing.T, header http.Header) (page, entry string) {
	t.Helper()
	req, _ := http.NewRequest("GET", b.srv.URL+uapiBase, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", b.bearer("admin"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Entry []struct {
			Links struct{ Self string } `json:"links"`
		} `json:"entry"`
		Links struct{ Self string } `json:"links"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 || len(got.Entry) == 0 {
		t.Fatalf("REST list: HTTP %d, %d entries, %v", resp.StatusCode, len(got.Entry), err)
	}
	return got.Links.Self, got.Entry[0].Links.Self
}

// forgedHeaders are the forwarding headers a caller could send to make the
// server name another host, in each of the three forms.
var forgedHeaders = []http.Header{
	{"X-Forwarded-Host": {"evil.example.net"}, "X-Forwarded-Proto": {"https"}},
	{"Forwarded": {`for=198.51.100.7;host=evil.example.net;proto=https`}},
	{"X-Forwarded-Host": {"evil.example.net"}},
}

// Ensure forwarding headers from a caller that is not a trusted proxy are
// ignored: the WSDL's soap:address and the REST links name the host the
// request came in on, over the scheme it came in on, whether no proxy is
// trusted or the caller is not one of them.
func TestForwardedHeadersUntrusted(t *testing.T) {
	for _, limits := range []service.Limits{
		{},
		{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
	} {
		b := setup(t, bundleOptions{limits: limits})
		b.mustAdd(t, "0003*210", 1)
		for _, h := range forgedHeaders {
			locations, _ := b.wsdlLocations(t, h)
			for _, got := range locations {
				if want := b.srv.URL + service.PathSOAP; got != want {
					t.Errorf("trusting %v, headers %v: soap:address %q, want %q", limits.TrustedProxies, h, got, want)
				}
			}
			page, entry := b.restLinks(t, h)
			if !strings.HasPrefix(page, b.srv.URL+"/uapi/") || !strings.HasPrefix(entry, b.srv.URL+"/uapi/") {
				t.Errorf("trusting %v, headers %v: REST links %q and %q, want them under %s", limits.TrustedProxies, h, page, entry, b.srv.URL)
			}
		}
	}
}

// Ensure that when the peer is a trusted proxy, the host and scheme it
// forwards name the server in the WSDL and the REST links: Forwarded
// (RFC 7239) first, from the element the outermost trusted proxy added,
// else X-Forwarded-Host/-Proto, their last value; a value that is not a
// plain host or scheme is ignored.
func TestForwardedTrustedProxy(t *testing.T) {
	b := setup(t, bundleOptions{limits: service.Limits{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	b.mustAdd(t, "0003*210", 1)
	direct := strings.TrimPrefix(b.srv.URL, "http://")
	for _, tc := range []struct {
		name   string
		header http.Header
		want   string
	}{
		{"x-forwarded", http.Header{"X-Forwarded-Host": {"pbx.example.com"}, "X-Forwarded-Proto": {"https"}}, "https://pbx.example.com"},
		{"x-forwarded-port", http.Header{"X-Forwarded-Host": {"pbx.example.com:8443"}, "X-Forwarded-Proto": {"HTTPS"}}, "https://pbx.example.com:8443"},
		{"x-forwarded-appended", http.Header{"X-Forwarded-Host": {"evil.example.net, pbx.example.com"}}, "http://pbx.example.com"},
		{"x-forwarded-proto-only", http.Header{"X-Forwarded-Proto": {"https"}}, "https://" + direct},
		{"forwarded", http.Header{"Forwarded": {`for=198.51.100.7;proto=https;host=pbx.example.com`}}, "https://pbx.example.com"},
		{"forwarded-quoted", http.Header{"Forwarded": {`for="[2001:db8::7]:4711";Host="[2001:db8::1]:8443";Proto=https`}}, "https://[2001:db8::1]:8443"},
		{"forwarded-over-x-forwarded", http.Header{"Forwarded": {`host=pbx.example.com;proto=https`}, "X-Forwarded-Host": {"other.example.com"}}, "https://pbx.example.com"},
		// The caller sent its own element first; the proxy appended the true one.
		{"forwarded-forged-first", http.Header{"Forwarded": {`for=192.0.2.1;host=evil.example.net;proto=http, for=198.51.100.7;host=pbx.example.com;proto=https`}}, "https://pbx.example.com"},
		// Two trusted proxies: the outer one's element describes the caller.
		{"forwarded-chain", http.Header{"Forwarded": {`for=198.51.100.7;host=pbx.example.com;proto=https`, `for=127.0.0.9;host=backend.internal:8080;proto=http`}}, "https://pbx.example.com"},
		{"not-a-host", http.Header{"X-Forwarded-Host": {"evil.example.net/soap?"}, "X-Forwarded-Proto": {"javascript"}}, "http://" + direct},
		{"forwarded-not-a-host", http.Header{"Forwarded": {`host="evil.example.net/x\"<"`}}, "http://" + direct},
	} {
		t.Run(tc.name, func(t *testing.T) {
			locations, _ := b.wsdlLocations(t, tc.header)
			for _, got := range locations {
				if got != tc.want+service.PathSOAP {
					t.Errorf("soap:address %q, want %q", got, tc.want+service.PathSOAP)
				}
			}
			page, entry := b.restLinks(t, tc.header)
			if !strings.HasPrefix(page, tc.want+"/uapi/") || !strings.HasPrefix(entry, tc.want+"/uapi/") {
				t.Errorf("REST links %q and %q, want them under %s", page, entry, tc.want)
			}
		})
	}
}

// Ensure the WSDL answer keeps out of shared caches and names every header
// its soap:address depends on, so no cache hands one host's copy to another.
func TestWSDLCacheHeaders(t *testing.T) {
	b := setup(t, bundleOptions{})
	_, h := b.wsdlLocations(t, nil)
	if got := h.Get("Cache-Control"); got != "private, max-age=300" {
		t.Errorf("Cache-Control %q, want private, max-age=300", got)
	}
	vary := map[string]bool{}
	for _, v := range h.Values("Vary") {
		for _, name := range strings.Split(v, ",") {
			vary[http.CanonicalHeaderKey(strings.TrimSpace(name))] = true
		}
	}
	for _, name := range []string{"Host", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
		if !vary[name] {
			t.Errorf("Vary %q lacks %s", h.Values("Vary"), name)
		}
	}
}
