package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/callevents/callevents"
)

type requestIDKey struct{}

// requestInfo is what the answer to a request depends on besides the
// error: its id, the edge and operation it is counted under, the code of
// an uncoded error, and for SOAP the envelope's version. The handler
// refines operation, fallback and soap12 as it learns them
// (setOperation, setSOAP12); the wire format's error writer reads them.
type requestInfo struct {
	id, edge, operation string
	// fallback is the code of an uncoded (internal) error: 151 for reads,
	// 152 for writes.
	fallback callevents.Code
	// soap12: the request is a SOAP 1.2 envelope, so its faults are too.
	soap12 bool
	start  time.Time
}

// withRequestID gives every request an id, echoed in X-Request-Id, so a
// client can quote it and an operator can find the one log line about it,
// and the requestInfo of e.
func withRequestID(w http.ResponseWriter, r *http.Request, e endpoint) (*http.Request, *requestInfo) {
	var b [8]byte
	rand.Read(b[:])
	info := &requestInfo{id: hex.EncodeToString(b[:]), edge: e.edge, operation: e.operation, fallback: e.fallback, start: time.Now()}
	w.Header().Set("X-Request-Id", info.id)
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, info)), info
}

// infoOf is r's requestInfo; a request that has none (a handler called
// on its own) reads as an unnamed one whose uncoded errors are 151.
func infoOf(r *http.Request) *requestInfo {
	if info, ok := r.Context().Value(requestIDKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{fallback: callevents.CodeRetrieveFailed}
}

func requestID(ctx context.Context) string {
	if info, ok := ctx.Value(requestIDKey{}).(*requestInfo); ok {
		return info.id
	}
	return ""
}

// setOperation names the operation r's answer is counted under, and the
// code of its uncoded errors (the operation's fallback).
func setOperation(r *http.Request, operation string, fallback callevents.Code) {
	info := infoOf(r)
	info.operation, info.fallback = operation, fallback
}

// setSOAP12 records that r is a SOAP 1.2 envelope: its faults are 1.2 too.
func setSOAP12(r *http.Request) { infoOf(r).soap12 = true }

// errorCode is the code of err for r: its own, or r's fallback.
func errorCode(r *http.Request, err error) callevents.Code {
	return callevents.ErrorCode(err, infoOf(r).fallback)
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

// readBody reads r's body, up to max bytes: more is refused (400), as is
// a body that cannot be read.
func readBody(r *http.Request, max int64) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, callevents.Errorf(callevents.CodeMalformedRequest, "The body could not be read.")
	}
	if int64(len(raw)) > max {
		return nil, callevents.Errorf(callevents.CodeMalformedRequest, "The body is larger than %d bytes.", max)
	}
	return raw, nil
}
