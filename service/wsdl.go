package service

import (
	"net/http"

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
// host and path this request came in on (Server.origin), so a client on any
// port or behind a trusted proxy calls back the right place.
func (s *Server) serveWSDL(w http.ResponseWriter, r *http.Request) {
	doc := s.wsdl.doc.Copy()
	location := s.origin(r) + r.URL.Path
	for _, a := range doc.FindElements("//service/port/address") {
		if u := a.NamespaceURI(); u == nsWSDLSOAP11 || u == nsWSDLSOAP12 {
			a.CreateAttr("location", location)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/xml; charset=utf-8")
	// The document names the host it was asked for, so no shared cache
	// (a CDN, a corporate proxy) may keep one caller's copy for another:
	// private. The caller's own cache may keep it five minutes, since WSDL
	// tools (zeep, SoapUI, wsimport) fetch it again and again and it only
	// changes with a release. Vary names every input of the address, for
	// the caches that key on it anyway; the scheme of a direct request is
	// in the URL the cache keys on.
	h.Set("Cache-Control", "private, max-age=300")
	h.Set("Vary", "Host, X-Forwarded-Host, X-Forwarded-Proto, Forwarded")
	doc.WriteTo(w)
}
