package service

import (
	"net/http"
	"net/netip"
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

// origin is "scheme://host" of the URL the caller used to reach r, for the
// absolute URLs the server writes (the WSDL's soap:address, REST links).
// It is the request's own Host, with https when it came over TLS; only
// when the TCP peer is one of Limits.TrustedProxies does a forwarding
// header replace them: RFC 7239 Forwarded (its proto and host) first,
// else X-Forwarded-Proto and X-Forwarded-Host. From anyone else the
// headers are ignored, so no caller can make the server name another host.
func (s *Server) origin(r *http.Request) string {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if s.guards.proxies.peerTrusted(r) {
		fwd := forwardedElement(r, s.guards.proxies)
		if p := forwardedProto(fwd["proto"], lastListValue(r.Header.Values("X-Forwarded-Proto"))); p != "" {
			scheme = p
		}
		if h := forwardedHost(fwd["host"], lastListValue(r.Header.Values("X-Forwarded-Host"))); h != "" {
			host = h
		}
	}
	return scheme + "://" + host
}

// forwardedProto is the first of values that is http or https, in lower
// case; "" if none is.
func forwardedProto(values ...string) string {
	for _, v := range values {
		if v = strings.ToLower(v); v == "http" || v == "https" {
			return v
		}
	}
	return ""
}

// forwardedHost is the first of values that is a plain host[:port] (a
// name, an IPv4 address or a bracketed IPv6 one, letters, digits and
// "-._:[]" only, at most 255 bytes); "" if none is.
func forwardedHost(values ...string) string {
	for _, v := range values {
		if v != "" && len(v) <= 255 && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:[]") == "" {
			return v
		}
	}
	return ""
}

// lastListValue is the last entry of a comma-separated header, trimmed:
// the one the nearest proxy (the trusted peer) wrote. A proxy that appends
// rather than replaces leaves whatever its caller sent in front of it.
func lastListValue(values []string) string {
	if len(values) == 0 {
		return ""
	}
	list := values[len(values)-1]
	return strings.TrimSpace(list[strings.LastIndexByte(list, ',')+1:])
}

// forwardedElement is the element of r's Forwarded header (RFC 7239) that
// the outermost trusted proxy added: each proxy appends one, describing
// the request it received, so walking back from the last one past those
// whose for= is itself a trusted proxy reaches the one that describes the
// caller's request. Its parameter names are lower case; nil without the
// header.
func forwardedElement(r *http.Request, proxies trustedProxies) map[string]string {
	elems := parseForwarded(strings.Join(r.Header.Values("Forwarded"), ","))
	for i := len(elems) - 1; i >= 0; i-- {
		addr, ok := forwardedNode(elems[i]["for"])
		if i == 0 || !ok || !proxies.contains(addr) {
			return elems[i]
		}
	}
	return nil
}

// forwardedNode reads a for= node: an IPv4 address or a bracketed IPv6 one,
// with or without a port; false for "unknown", an obfuscated "_name" or
// anything else.
func forwardedNode(node string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(node); err == nil {
		return ap.Addr().Unmap(), true
	}
	addr, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(node, "["), "]"))
	return addr.Unmap(), err == nil
}

// parseForwarded splits a Forwarded header value into its elements
// (comma-separated), each a map of its parameters (pair=value, separated
// by semicolons), values unquoted. It never fails: a broken pair is
// skipped, and quoted commas and semicolons stay in their value.
func parseForwarded(v string) []map[string]string {
	var elems []map[string]string
	elem := map[string]string{}
	var pair strings.Builder
	flush := func() {
		k, val, ok := strings.Cut(pair.String(), "=")
		if k = strings.ToLower(strings.TrimSpace(k)); ok && k != "" {
			elem[k] = strings.TrimSpace(val)
		}
		pair.Reset()
	}
	quoted := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quoted && c == '\\' && i+1 < len(v):
			i++
			pair.WriteByte(v[i])
		case c == '"':
			quoted = !quoted
		case !quoted && c == ';':
			flush()
		case !quoted && c == ',':
			flush()
			elems = append(elems, elem)
			elem = map[string]string{}
		default:
			pair.WriteByte(c)
		}
	}
	flush()
	return append(elems, elem)
}
