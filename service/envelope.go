package service

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/wsdl"
)

// Envelope namespaces of SOAP 1.1 and 1.2.
const (
	nsSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	nsSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
	// ns4PSAHeader prefixes the VoipNow SystemAPI header namespaces
	// (http://4psa.com/HeaderData.xsd/3.5.0 and the like), accepted so that
	// VoipNow client code works unchanged.
	ns4PSAHeader = "http://4psa.com/HeaderData"
)

// request is a decoded SOAP request up to the body's operation element,
// which the operation decodes itself into its gen type.
type request struct {
	v12         bool
	credentials callevents.Credentials
	// ignoredCredentials is the namespace of a userCredentials header not
	// read for its namespace, named by missingCredentials.
	ignoredCredentials string
	op                 xml.StartElement
	dec                *xml.Decoder
}

// credentialsNamespace reports whether a userCredentials header in ns is
// read: ours; VoipNow's (any http://4psa.com/HeaderData… one), so its
// client code works unchanged; or none, which SOAP::Lite and strong-soap
// send unless told otherwise (SPEC.md §4).
func credentialsNamespace(ns string) bool {
	return ns == wsdl.Namespace || ns == "" || strings.HasPrefix(ns, ns4PSAHeader)
}

// missingCredentials is fault 100 for a request that carried no
// credentials the server read: it says which element, in which
// namespace, would have been read.
func (req *request) missingCredentials() error {
	msg := "Missing credentials: send a userCredentials header (namespace " + wsdl.Namespace + ") with accessToken, or username and password."
	if req.ignoredCredentials != "" {
		msg += fmt.Sprintf(" The userCredentials header in namespace %q was not read.", callevents.Truncate(req.ignoredCredentials, 80))
	}
	return callevents.Errorf(callevents.CodeAuthInvalid, "%s", msg)
}

// credentialsHeader matches userCredentials children in any namespace:
// PHP's SoapHeader with an object sends them unqualified. Items is the form
// PHP gives an array header outside the WSDL's namespace (an Apache map:
// <item><key>username</key><value>…</value></item>).
type credentialsHeader struct {
	AccessToken string `xml:"accessToken"`
	Username    string `xml:"username"`
	Password    string `xml:"password"`
	Items       []struct {
		Key   string `xml:"key"`
		Value string `xml:"value"`
	} `xml:"item"`
}

func (h credentialsHeader) credentials() callevents.Credentials {
	for _, item := range h.Items {
		switch strings.TrimSpace(item.Key) {
		case "accessToken":
			h.AccessToken = item.Value
		case "username":
			h.Username = item.Value
		case "password":
			h.Password = item.Value
		}
	}
	return callevents.Credentials{AccessToken: strings.TrimSpace(h.AccessToken), Username: strings.TrimSpace(h.Username), Password: h.Password}
}

// envelopeError is a malformed request: code 400, a Client/Sender fault
// (or VersionMismatch / MustUnderstand as SOAP requires).
type envelopeError struct {
	faultCode string // "" (Client/Sender), "VersionMismatch" or "MustUnderstand"
	v12       bool
	message   string
}

func (e *envelopeError) Error() string { return e.message }

// Unwrap is the coded error writeFault shows: 400 and the message.
func (e *envelopeError) Unwrap() error {
	return &callevents.Error{Code: callevents.CodeMalformedRequest, Message: e.message}
}

func malformed(v12 bool, format string, args ...any) error {
	return &envelopeError{v12: v12, message: callevents.Errorf(callevents.CodeMalformedRequest, format, args...).Message}
}

// Limits on the shape of a SOAP request, checked by scanEnvelope before
// any of it is decoded and before its caller is authenticated. With the
// body limit (MaxBodyBytesDefault) they bound what an unauthenticated
// request costs: a 1 MiB envelope of 145,000 nested elements took 25 MB to
// decode before them.
const (
	// MaxSOAPDepth is how deep the elements of a SOAP request may nest,
	// the Envelope counting as 1. An operation's fields are at depth 4
	// (Envelope, Body, operation, field); the rest is room for other
	// tools' headers. A deeper request is refused with fault 400
	// "Malformed request: elements are nested more than 64 deep."
	MaxSOAPDepth = 64
	// MaxSOAPElements is how many elements a SOAP request may hold, the
	// Envelope included. An operation needs a dozen; the rest is room for
	// other tools' headers. A request with more is refused with fault 400
	// "Malformed request: the request has more than 10000 elements."
	MaxSOAPElements = 10000
)

// scanEnvelope reads the whole document once, token by token, before any
// of it is decoded: it must be well-formed XML without a DOCTYPE, within
// MaxSOAPDepth and MaxSOAPElements, and one SOAP 1.1 or 1.2 Envelope
// holding an optional Header and then one Body of exactly one operation
// element, followed by nothing but whitespace, comments and processing
// instructions. It keeps only counters, and encoding/xml's stack of open
// elements is at most MaxSOAPDepth deep, so a hostile document is refused
// for the cost of reading it.
func scanEnvelope(raw []byte) error {
	d := xml.NewDecoder(bytes.NewReader(raw))
	var (
		v12             bool
		envNS           string
		depth, elements int
		sawBody, inBody bool // inBody: the open element at depth 2 is the Body
		operations      int
		closed          bool // the Envelope has ended
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return malformed(v12, "Malformed request: not well-formed XML (%s).", xmlErrorText(err))
		}
		switch t := tok.(type) {
		case xml.Directive:
			return malformed(v12, "Malformed request: DOCTYPE and entity declarations are not accepted.")
		case xml.CharData:
			if closed && len(bytes.Trim(t, " \t\r\n")) > 0 {
				return malformed(v12, "Malformed request: there is text after the SOAP envelope.")
			}
		case xml.EndElement:
			depth--
			switch depth {
			case 0:
				closed = true
			case 1:
				inBody = false
			}
		case xml.StartElement:
			if closed {
				return malformed(v12, "Malformed request: there is an element after the SOAP envelope; send one envelope per request.")
			}
			depth++
			elements++
			if depth > MaxSOAPDepth {
				return malformed(v12, "Malformed request: elements are nested more than %d deep.", MaxSOAPDepth)
			}
			if elements > MaxSOAPElements {
				return malformed(v12, "Malformed request: the request has more than %d elements.", MaxSOAPElements)
			}
			switch {
			case depth == 1:
				switch {
				case t.Name.Local != "Envelope":
					return malformed(false, "Malformed request: the document is not a SOAP envelope.")
				case t.Name.Space == nsSOAP12:
					v12 = true
				case t.Name.Space != nsSOAP11:
					return &envelopeError{faultCode: "VersionMismatch", message: "Malformed request: the envelope namespace is neither SOAP 1.1 nor SOAP 1.2."}
				}
				envNS = t.Name.Space
			case depth == 2:
				switch {
				case t.Name.Space == envNS && t.Name.Local == "Header" && !sawBody:
				case t.Name.Space == envNS && t.Name.Local == "Body" && !sawBody:
					sawBody, inBody = true, true
				case t.Name.Space == envNS && t.Name.Local == "Body":
					return malformed(v12, "Malformed request: the SOAP envelope has more than one Body.")
				default:
					return malformed(v12, "Malformed request: unexpected element %s in the envelope.", callevents.Truncate(t.Name.Local, 80))
				}
			case depth == 3 && inBody:
				if operations++; operations > 1 {
					return malformed(v12, "Malformed request: the SOAP body holds more than one operation element; send one per request.")
				}
			}
		}
	}
	switch {
	case !closed:
		return malformed(v12, "Malformed request: the SOAP envelope or its body is incomplete.")
	case !sawBody:
		return malformed(v12, "Malformed request: the SOAP envelope has no Body.")
	case operations == 0:
		return malformed(v12, "Malformed request: the SOAP body has no operation element.")
	}
	return nil
}

// decodeRequest checks the whole document with scanEnvelope, then reads
// the envelope and its header, and stops at the operation element: the
// caller authenticates before the operation is decoded. A DOCTYPE (and
// with it every entity declaration) is refused before anything is
// decoded, which defeats entity expansion.
func decodeRequest(raw []byte) (*request, error) {
	if err := scanEnvelope(raw); err != nil {
		return nil, err
	}
	d := xml.NewDecoder(bytes.NewReader(raw))
	req := &request{dec: d}
	env, err := nextElement(d, req)
	if err != nil {
		return nil, err
	}
	switch {
	case env.Name.Local != "Envelope":
		return nil, malformed(false, "Malformed request: the document is not a SOAP envelope.")
	case env.Name.Space == nsSOAP12:
		req.v12 = true
	case env.Name.Space != nsSOAP11:
		return nil, &envelopeError{faultCode: "VersionMismatch", message: "Malformed request: the envelope namespace is neither SOAP 1.1 nor SOAP 1.2."}
	}
	envNS := env.Name.Space
	for {
		el, err := nextElement(d, req)
		if err != nil {
			return nil, err
		}
		if el.Name.Space != envNS {
			return nil, malformed(req.v12, "Malformed request: unexpected element %s in the envelope.", el.Name.Local)
		}
		switch el.Name.Local {
		case "Header":
			if err := decodeHeader(d, req, envNS); err != nil {
				return nil, err
			}
		case "Body":
			op, err := nextElement(d, req)
			if err != nil {
				return nil, err
			}
			req.op = op
			return req, nil
		default:
			return nil, malformed(req.v12, "Malformed request: unexpected element %s in the envelope.", el.Name.Local)
		}
	}
}

// nextElement returns the next start element, skipping text, comments and
// processing instructions. An end element (an empty Body or Header) or the
// end of input is malformed.
func nextElement(d *xml.Decoder, req *request) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return xml.StartElement{}, malformed(req.v12, "Malformed request: the SOAP envelope or its body is incomplete.")
			}
			return xml.StartElement{}, malformed(req.v12, "Malformed request: not well-formed XML (%s).", xmlErrorText(err))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.Directive:
			return xml.StartElement{}, malformed(req.v12, "Malformed request: DOCTYPE and entity declarations are not accepted.")
		case xml.EndElement:
			return xml.StartElement{}, malformed(req.v12, "Malformed request: the SOAP body has no operation element.")
		}
	}
}

func decodeHeader(d *xml.Decoder, req *request, envNS string) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return malformed(req.v12, "Malformed request: not well-formed XML (%s).", xmlErrorText(err))
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.Directive:
			return malformed(req.v12, "Malformed request: DOCTYPE and entity declarations are not accepted.")
		case xml.StartElement:
			if t.Name.Local == "userCredentials" {
				if credentialsNamespace(t.Name.Space) {
					var h credentialsHeader
					if err := d.DecodeElement(&h, &t); err != nil {
						return malformed(req.v12, "Malformed request: the userCredentials header is not well-formed (%s).", xmlErrorText(err))
					}
					req.credentials = h.credentials()
					continue
				}
				if req.ignoredCredentials == "" {
					req.ignoredCredentials = t.Name.Space
				}
			}
			if mustUnderstand(t, envNS) {
				return &envelopeError{faultCode: "MustUnderstand", v12: req.v12, message: "Header " + t.Name.Local + " is marked mustUnderstand and is not understood."}
			}
			if err := d.Skip(); err != nil {
				return malformed(req.v12, "Malformed request: not well-formed XML (%s).", xmlErrorText(err))
			}
		}
	}
}

func mustUnderstand(el xml.StartElement, envNS string) bool {
	for _, a := range el.Attr {
		if a.Name.Local == "mustUnderstand" && a.Name.Space == envNS {
			v := strings.TrimSpace(a.Value)
			return v == "1" || v == "true"
		}
	}
	return false
}

// xmlErrorText keeps the decoder's description of what is wrong with the
// client's own document; it holds no server internals.
func xmlErrorText(err error) string {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return se.Error()
	}
	return "unreadable element"
}

// nsXSI is the XML Schema instance namespace, that of xsi:nil.
const nsXSI = "http://www.w3.org/2001/XMLSchema-instance"

// numberFields are the xs:int fields of the operations; a value that is
// not one is refused with the field's code (callevents.FieldCode).
var numberFields = map[string]bool{"type": true, "method": true, "status": true, "startIndex": true, "count": true}

// selectorFields are the optional fields, by operation, whose absence
// widens what the operation acts on: DelPhoneCallEvent without id deletes
// every Call Event of the type. Sent empty, such a field is refused (117)
// rather than read as absent: a client that sent <id/> meant one Call
// Event, not all of them.
var selectorFields = map[string]string{
	"DelPhoneCallEvent": "id",
}

// fieldReader hands the operation element, from its start to its end, to
// the encoding/xml decoder of its gen type, applying SPEC.md §4 to each
// field (child element) on the way:
//   - a field sent as xsi:nil="true" is absent: it is left out;
//   - a number field (numberFields) must hold an xs:int: an empty one,
//     or text that is not a number, is left out and refused with that
//     field's code (err keeps the first). encoding/xml would read an empty
//     one as 0: an Edit with <status/> would disable the Call Event.
//
// Empty text fields pass unchanged: an empty <note/> clears the note and an
// empty <secret/> removes the secret.
type fieldReader struct {
	d     *xml.Decoder // positioned just after op
	op    xml.StartElement
	depth int         // below op: 0 among its fields, -1 once it ended
	next  []xml.Token // the rest of a number field, to hand out
	err   error       // the first field refused
	begun bool        // op was handed out
}

// Token implements xml.TokenReader.
func (r *fieldReader) Token() (xml.Token, error) {
	if len(r.next) > 0 {
		tok := r.next[0]
		r.next = r.next[1:]
		return tok, nil
	}
	if !r.begun {
		r.begun = true
		return r.op, nil
	}
	if r.depth < 0 {
		return nil, io.EOF
	}
	for {
		tok, err := r.d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if r.depth == 0 && isNil(t) {
				if err := r.d.Skip(); err != nil {
					return nil, err
				}
				continue
			}
			if r.depth == 0 && selectorFields[r.op.Name.Local] == t.Name.Local {
				keep, err := r.selectorField(t)
				if err != nil {
					return nil, err
				}
				if !keep {
					continue
				}
				return t, nil
			}
			if numberFields[t.Name.Local] && r.depth == 0 {
				keep, err := r.numberField(t, callevents.FieldCode(t.Name.Local))
				if err != nil {
					return nil, err
				}
				if !keep {
					continue
				}
				return t, nil
			}
			r.depth++
			return t, nil
		case xml.EndElement:
			r.depth--
			return t, nil
		default:
			return xml.CopyToken(tok), nil
		}
	}
}

// numberField reads the number field start to its end, as encoding/xml
// would (its own text, trimmed; child elements skipped), and queues its
// number and end for Token. It reports false for a field left out, whose
// error it keeps when it is the first.
func (r *fieldReader) numberField(start xml.StartElement, code callevents.Code) (bool, error) {
	value, err := r.fieldText()
	if err != nil {
		return false, err
	}
	name := start.Name.Local
	n, err := strconv.ParseInt(value, 10, 32)
	switch {
	case err == nil:
		r.next = append(r.next[:0], xml.CharData(strconv.FormatInt(n, 10)), xml.EndElement{Name: start.Name})
		return true, nil
	case r.err != nil:
	case value == "":
		r.err = callevents.FieldError(code, name, "Request invalid. "+name+" is empty: send a number, or leave the element out.")
	default:
		r.err = callevents.FieldError(code, name, fmt.Sprintf("Request invalid. %s %q is not a number.", name, callevents.Truncate(value, 32)))
	}
	return false, nil
}

// selectorField reads a field that selects what an operation acts on
// and may not be sent empty (selectorFields), and queues its text and end
// for Token. It reports false for an empty one, left out and refused.
func (r *fieldReader) selectorField(start xml.StartElement) (bool, error) {
	value, err := r.fieldText()
	if err != nil {
		return false, err
	}
	if value == "" {
		if r.err == nil {
			name := start.Name.Local
			r.err = callevents.FieldError(callevents.CodeMissingParameter, name, "Request invalid. Missing parameter "+name+": it is empty. Name one, or leave the element out to select them all.")
		}
		return false, nil
	}
	r.next = append(r.next[:0], xml.CharData(value), xml.EndElement{Name: start.Name})
	return true, nil
}

// fieldText reads a field to its end, as encoding/xml would read a simple
// one: its own text (child elements skipped), trimmed.
func (r *fieldReader) fieldText() (string, error) {
	var text []byte
	for {
		tok, err := r.d.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := r.d.Skip(); err != nil {
				return "", err
			}
		case xml.CharData:
			text = append(text, t...)
		case xml.EndElement:
			return strings.TrimSpace(string(text)), nil
		}
	}
}

// isNil reports xsi:nil="true" (or "1") on el. An xsi prefix left
// undeclared is taken at its word.
func isNil(el xml.StartElement) bool {
	for _, a := range el.Attr {
		if a.Name.Local == "nil" && (a.Name.Space == nsXSI || a.Name.Space == "xsi") {
			v := strings.TrimSpace(a.Value)
			return v == "true" || v == "1"
		}
	}
	return false
}
