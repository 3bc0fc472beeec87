package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
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
	// The whole document is checked (limits, one operation) and the header
	// read; the operation itself is decoded only for a known caller.
	var req *request
	err = s.decoding(r.Context(), func() (err error) {
		req, err = decodeRequest(raw)
		return err
	})
	if err != nil {
		s.writeFault(w, r, false, err, callevents.CodeMalformedRequest)
		return
	}
	v12 = req.v12
	op, ok := operations[req.op.Name.Local]
	if !ok || req.op.Name.Space != wsdlNamespace {
		s.writeFault(w, r, v12, malformed(v12, "Malformed request: unknown operation {%s}%s.", callevents.Truncate(req.op.Name.Space, 80), callevents.Truncate(req.op.Name.Local, 80)), callevents.CodeMalformedRequest)
		return
	}
	setOperation(r, req.op.Name.Local) // only known names: the label set stays bounded
	principal, err := s.authenticate(w, r, req.credentials)
	if err != nil {
		// Nothing read from the header: say which header would have been.
		var limited *rateLimitedError
		if req.credentials == (callevents.Credentials{}) && !errors.As(err, &limited) {
			err = req.missingCredentials()
		}
		s.writeFault(w, r, v12, err, callevents.CodeRetrieveFailed)
		return
	}
	var in any
	err = s.decoding(r.Context(), func() (err error) {
		in, err = op.decode(req)
		return err
	})
	if err != nil { // a field error, or a malformed operation element (400)
		s.writeFault(w, r, v12, err, op.fallback)
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

// SOAPDecodesPerCPU bounds how many SOAP requests are decoded at once:
// SOAPDecodesPerCPU × GOMAXPROCS (as it is when New is called), and at
// least 4. A request beyond that waits for its turn as long as its client
// does (its request context); one whose client gives up first gets fault
// 151 "The service is busy; try again later.". With MaxSOAPDepth and
// MaxSOAPElements this bounds the memory that decoding takes at once.
const SOAPDecodesPerCPU = 2

// decodeSlots returns the channel of decode turns for New: its capacity
// is the bound of SOAPDecodesPerCPU.
func decodeSlots() chan struct{} {
	return make(chan struct{}, max(4, SOAPDecodesPerCPU*runtime.GOMAXPROCS(0)))
}

// decoding runs decode in one of the Server's decode turns, once one is
// free or ctx is done. A Server not made by New has no bound.
func (s *Server) decoding(ctx context.Context, decode func() error) error {
	if s.decodeSlots != nil {
		select {
		case s.decodeSlots <- struct{}{}:
			defer func() { <-s.decodeSlots }()
		case <-ctx.Done():
			return &callevents.Error{Code: callevents.CodeRetrieveFailed, Message: "The service is busy; try again later.", Err: fmt.Errorf("service: waiting for a SOAP decode turn: %w", ctx.Err())}
		}
	}
	return decode()
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
