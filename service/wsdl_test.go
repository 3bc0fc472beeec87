package service_test

import (
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/callevents/callevents/service"
	"github.com/callevents/callevents/wsdl"
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

// Ensure every operation's input message declares userCredentials as its
// own part, which each binding's header names and its body leaves out
// (SPEC.md §4): generators that see only explicit headers (wsimport,
// .NET) otherwise give the methods no credentials parameter.
func TestWSDLExplicitHeaders(t *testing.T) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(wsdl.PhoneCallEvents); err != nil {
		t.Fatal(err)
	}
	messages := map[string]map[string]string{} // message → part → element
	for _, m := range doc.FindElements("/definitions/message") {
		parts := map[string]string{}
		for _, p := range m.SelectElements("part") {
			parts[p.SelectAttrValue("name", "")] = p.SelectAttrValue("element", "")
		}
		messages[m.SelectAttrValue("name", "")] = parts
	}
	inputs := map[string]string{} // operation → its input message
	for _, op := range doc.FindElements("/definitions/portType/operation") {
		inputs[op.SelectAttrValue("name", "")] = strings.TrimPrefix(op.FindElement("input").SelectAttrValue("message", ""), "tns:")
	}
	if len(inputs) != 8 {
		t.Errorf("%d operations, want 8", len(inputs))
	}
	for op, in := range inputs {
		want := map[string]string{"parameters": "tns:" + op, "userCredentials": "tns:userCredentials"}
		if got := messages[in]; !maps.Equal(got, want) {
			t.Errorf("%s: input message %s has parts %v, want %v", op, in, got, want)
		}
	}
	bindings := doc.FindElements("/definitions/binding")
	if len(bindings) != 2 {
		t.Fatalf("%d bindings, want 2 (SOAP 1.1 and 1.2)", len(bindings))
	}
	for _, b := range bindings {
		ops := b.SelectElements("operation")
		if len(ops) != len(inputs) {
			t.Errorf("binding %s has %d operations, want %d", b.SelectAttrValue("name", ""), len(ops), len(inputs))
		}
		for _, op := range ops {
			name := op.SelectAttrValue("name", "")
			where := b.SelectAttrValue("name", "") + " " + name
			input := op.SelectElement("input")
			body, header := input.SelectElement("body"), input.SelectElement("header")
			if body == nil || header == nil {
				t.Errorf("%s: input without body or header", where)
				continue
			}
			if got := body.SelectAttrValue("parts", ""); got != "parameters" {
				t.Errorf("%s: body parts=%q, want parameters", where, got)
			}
			if got, want := header.SelectAttrValue("message", ""), "tns:"+inputs[name]; got != want {
				t.Errorf("%s: header message %q, want %q (the input message itself)", where, got, want)
			}
			if got := header.SelectAttrValue("part", ""); got != "userCredentials" {
				t.Errorf("%s: header part %q, want userCredentials", where, got)
			}
		}
	}
}

// Ensure no element name is both in an operation's request and in its
// response (SPEC.md §4): a wrapper-style generator would make two
// parameters of one name (wsimport: `duplicate parameter name "id"`).
func TestWSDLNoRequestResponseNameClash(t *testing.T) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(wsdl.PhoneCallEvents); err != nil {
		t.Fatal(err)
	}
	children := func(element string) []string {
		el := doc.FindElement("/definitions/types/schema/element[@name='" + element + "']")
		if el == nil {
			t.Fatalf("no element %s in the schema", element)
		}
		var names []string
		for _, c := range el.FindElements("complexType/sequence/element") {
			names = append(names, c.SelectAttrValue("name", ""))
		}
		return names
	}
	ops := doc.FindElements("/definitions/portType/operation")
	if len(ops) == 0 {
		t.Fatal("no operations")
	}
	for _, op := range ops {
		name := op.SelectAttrValue("name", "")
		req, resp := children(name), children(name+"Response")
		if len(req) == 0 || len(resp) == 0 {
			t.Errorf("%s: request %v, response %v: want children in both", name, req, resp)
		}
		for _, n := range req {
			if slices.Contains(resp, n) {
				t.Errorf("%s: %q is both in the request and in the response", name, n)
			}
		}
	}
}
