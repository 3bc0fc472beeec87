package service

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/callevents/callevents"
)

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// serveSOAP serves the PhoneCallEvents endpoint: the WSDL for GET ?wsdl, an
// operation for POST. It dispatches on the body element's qualified name;
// SOAPAction and Content-Type are not trusted.
func (s *Server) serveSOAP(w http.ResponseWriter, r *http.Request) {
	r, id := withRequestID(w, r, "soap", "unknown")
	v12 := false
	defer s.recoverPanic(r, id, func() {
		s.writeFault(w, r, v12, callevents.Errorf(callevents.CodeRetrieveFailed, "Internal error. Quote request id %s.", id), callevents.CodeRetrieveFailed)
	})
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if hasWSDLQuery(r) {
			setOperation(r, "wsdl")
			s.served(r, 0)
			s.serveWSDL(w, r)
			return
		}
		s.served(r, callevents.CodeMalformedRequest)
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "PhoneCallEvents SOAP endpoint: POST a SOAP 1.1 or 1.2 envelope, or GET ?wsdl for the WSDL.", http.StatusMethodNotAllowed)
		return
	case http.MethodPost:
	default:
		s.served(r, callevents.CodeMalformedRequest)
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	raw, err := io.ReadAll(io.LimitReader(r.Body, s.maxBody+1))
	if err != nil {
		s.writeFault(w, r, false, malformed(false, "Malformed request: the body could not be read."), callevents.CodeMalformedRequest)
		return
	}
	if int64(len(raw)) > s.maxBody {
		s.writeFault(w, r, false, malformed(false, "Malformed request: the body is larger than %d bytes.", s.maxBody), callevents.CodeMalformedRequest)
		return
	}
	req, err := decodeRequest(raw)
	if err != nil {
		s.writeFault(w, r, false, err, callevents.CodeMalformedRequest)
		return
	}
	v12 = req.v12
	op, ok := operations[req.op.Name.Local]
	if !ok || req.op.Name.Space != wsdlNamespace {
		s.writeFault(w, r, v12, malformed(v12, "Malformed request: unknown operation {%s}%s.", truncateText(req.op.Name.Space, 80), truncateText(req.op.Name.Local, 80)), callevents.CodeMalformedRequest)
		return
	}
	setOperation(r, req.op.Name.Local) // only known names: the label set stays bounded
	in, decodeErr := op.decode(req)
	var envErr *envelopeError
	if errors.As(decodeErr, &envErr) {
		s.writeFault(w, r, v12, decodeErr, callevents.CodeMalformedRequest)
		return
	}
	principal, err := s.authenticate(w, r, req.credentials)
	if err != nil {
		s.writeFault(w, r, v12, err, callevents.CodeRetrieveFailed)
		return
	}
	if decodeErr != nil { // a field error, reported once the caller is known
		s.writeFault(w, r, v12, decodeErr, op.fallback)
		return
	}
	resp, err := op.call(s, r.Context(), principal, in)
	if err != nil {
		s.writeFault(w, r, v12, err, op.fallback)
		return
	}
	buf := bufferPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufferPool.Put(buf)
	if err := marshalResponse(buf, v12, resp); err != nil {
		s.writeFault(w, r, v12, err, op.fallback)
		return
	}
	if v12 {
		w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	s.served(r, 0)
	w.Write(buf.Bytes())
}

// hasWSDLQuery reports a "wsdl" query key in any case (?wsdl, ?WSDL).
func hasWSDLQuery(r *http.Request) bool {
	for key := range r.URL.Query() {
		if strings.EqualFold(key, "wsdl") {
			return true
		}
	}
	return false
}
