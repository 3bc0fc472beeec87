package service

import (
	"net/http"
	"strings"

	"github.com/beevik/etree"

	"github.com/callevents/callevents/wsdl"
)

const wsdlNamespace = wsdl.Namespace

const (
	nsWSDLSOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
	nsWSDLSOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
)

// wsdlDocument is the embedded WSDL, parsed once.
type wsdlDocument struct{ doc *etree.Document }

func mustParseWSDL() *wsdlDocument {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(wsdl.PhoneCallEvents); err != nil {
		panic("service: embedded WSDL does not parse: " + err.Error())
	}
	return &wsdlDocument{doc: doc}
}

// serveWSDL serves the WSDL with every soap:address pointing at the scheme,
// host and path this request came in on, so a client on any port or behind
// a proxy calls back the right place.
func (s *Server) serveWSDL(w http.ResponseWriter, r *http.Request) {
	doc := s.wsdl.doc.Copy()
	location := requestScheme(r) + "://" + requestHost(r) + r.URL.Path
	for _, a := range doc.FindElements("//service/port/address") {
		if u := a.NamespaceURI(); u == nsWSDLSOAP11 || u == nsWSDLSOAP12 {
			a.CreateAttr("location", location)
		}
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	doc.WriteTo(w)
}

func requestScheme(r *http.Request) string {
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		return p
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func requestHost(r *http.Request) string {
	if h := r.Header.Get("X-Forwarded-Host"); h != "" && !strings.ContainsAny(h, "/ \"<>") {
		return strings.TrimSpace(strings.Split(h, ",")[0])
	}
	return r.Host
}
