package service

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/callevents/callevents"
)

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// soapEndpoint is the PhoneCallEvents endpoint: until the operation is
// known, an uncoded error (and a panic) is 151.
var soapEndpoint = endpoint{edge: "soap", operation: "unknown", fallback: callevents.CodeRetrieveFailed, writeError: (*Server).writeFault}

// serveSOAP serves the PhoneCallEvents endpoint (handleSOAP).
func (s *Server) serveSOAP(w http.ResponseWriter, r *http.Request) {
	s.serve(w, r, soapEndpoint, s.handleSOAP)
}

// handleSOAP serves the WSDL for GET ?wsdl and an operation for POST. It
// dispatches on the body element's qualified name; SOAPAction and
// Content-Type are not trusted.
func (s *Server) handleSOAP(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if hasWSDLQuery(r) {
			setOperation(r, "wsdl", callevents.CodeRetrieveFailed)
			s.serveWSDL(w, r)
			return nil
		}
		return methodNotAllowed(w, "GET, POST", "", "PhoneCallEvents SOAP endpoint: POST a SOAP 1.1 or 1.2 envelope, or GET ?wsdl for the WSDL.")
	case http.MethodPost:
	default:
		return methodNotAllowed(w, "GET, POST", "", "method not allowed")
	}

	raw, err := readBody(r, s.maxBody)
	if err != nil {
		// In the words of every malformed envelope: "Malformed request: the body …".
		msg := callevents.ErrorMessage(err)
		return malformed(false, "Malformed request: %s", strings.ToLower(msg[:1])+msg[1:])
	}
	// The whole document is checked (limits, one operation) and the header
	// read; the operation itself is decoded only for a known caller.
	var req *request
	err = s.decoding(r.Context(), func() (err error) {
		req, err = decodeRequest(raw)
		return err
	})
	if err != nil {
		return err
	}
	if req.v12 {
		setSOAP12(r)
	}
	op, ok := operations[req.op.Name.Local]
	if !ok || req.op.Name.Space != wsdlNamespace {
		return malformed(req.v12, "Malformed request: unknown operation {%s}%s.", callevents.Truncate(req.op.Name.Space, 80), callevents.Truncate(req.op.Name.Local, 80))
	}
	setOperation(r, req.op.Name.Local, op.fallback) // only known names: the label set stays bounded
	principal, err := s.authenticate(r, req.credentials)
	if err != nil {
		// Nothing read from the header: say which header would have been
		// (a rate limit still says what it is).
		var limited *httpError
		if req.credentials == (callevents.Credentials{}) && !errors.As(err, &limited) {
			err = req.missingCredentials()
		}
		return err
	}
	var in any
	err = s.decoding(r.Context(), func() (err error) {
		in, err = op.decode(req)
		return err
	})
	if err != nil { // a field error, or a malformed operation element (400)
		return err
	}
	resp, err := op.call(s, r.Context(), principal, in)
	if err != nil {
		return err
	}
	buf := bufferPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufferPool.Put(buf)
	if err := marshalResponse(buf, req.v12, resp); err != nil {
		return err
	}
	if req.v12 {
		w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
	return nil
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

// operation handles one body element. decode reads the request into its
// gen type once the client is authenticated (decodeRequest has already
// refused a malformed document with a 400); call runs it. fallback is the
// code of an uncoded (internal) error: 151 for reads, 152 for writes.
type operation struct {
	fallback callevents.Code
	decode   func(req *request) (any, error)
	call     func(s *Server, ctx context.Context, p callevents.Principal, in any) (any, error)
}

// newOperation binds a handler taking the gen request type T.
func newOperation[T any](fallback callevents.Code, handle func(*Server, context.Context, callevents.Principal, *T) (any, error)) operation {
	return operation{
		fallback: fallback,
		decode: func(req *request) (any, error) {
			in := new(T)
			return in, decodeOperation(req, in)
		},
		call: func(s *Server, ctx context.Context, p callevents.Principal, in any) (any, error) {
			return handle(s, ctx, p, in.(*T))
		},
	}
}

// operations are the SOAP operations by body element, each with the
// code of its uncoded errors: the one table of both.
var operations = map[string]operation{
	"AddPhoneCallEvent":       newOperation(callevents.CodeUpdateFailed, (*Server).addPhoneCallEvent),
	"GetPhoneCallEvents":      newOperation(callevents.CodeRetrieveFailed, (*Server).getPhoneCallEvents),
	"EditPhoneCallEvent":      newOperation(callevents.CodeUpdateFailed, (*Server).editPhoneCallEvent),
	"SetPhoneCallEventStatus": newOperation(callevents.CodeUpdateFailed, (*Server).setPhoneCallEventStatus),
	"DelPhoneCallEvent":       newOperation(callevents.CodeUpdateFailed, (*Server).delPhoneCallEvent),
	// The delivery log (SPEC.md §8), in delivery.go.
	"GetPhoneCallEventDeliveries":  newOperation(callevents.CodeRetrieveFailed, (*Server).getPhoneCallEventDeliveries),
	"ResendPhoneCallEventDelivery": newOperation(callevents.CodeUpdateFailed, (*Server).resendPhoneCallEventDelivery),
	"TestPhoneCallEvent":           newOperation(callevents.CodeRetrieveFailed, (*Server).testPhoneCallEvent),
}

// decodeOperation decodes the body element into v through a fieldReader:
// a field sent as xsi:nil is absent, and a number field that is empty or
// not an xs:int is refused with its field's code. decodeRequest has
// already checked the whole document.
func decodeOperation(req *request, v any) error {
	fields := &fieldReader{d: req.dec, op: req.op}
	if err := xml.NewTokenDecoder(fields).Decode(v); err != nil {
		return malformed(req.v12, "Malformed request: %s is not well-formed (%s).", req.op.Name.Local, xmlErrorText(err))
	}
	return fields.err
}

// marshalResponse writes resp inside a SOAP envelope of the request's version.
func marshalResponse(buf *bytes.Buffer, v12 bool, resp any) error {
	ns := nsSOAP11
	if v12 {
		ns = nsSOAP12
	}
	buf.WriteString(xml.Header)
	buf.WriteString(`<soap:Envelope xmlns:soap="` + ns + `"><soap:Body>`)
	if err := encodeResponse(buf, resp); err != nil {
		return err
	}
	buf.WriteString(`</soap:Body></soap:Envelope>`)
	return nil
}
