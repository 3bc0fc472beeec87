package service

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
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
	op          xml.StartElement
	dec         *xml.Decoder
	raw         []byte
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

func malformed(v12 bool, format string, args ...any) error {
	return &envelopeError{v12: v12, message: callevents.Errorf(callevents.CodeMalformedRequest, format, args...).Message}
}

// decodeRequest reads the envelope and its header, and stops at the first
// element of the body. A DOCTYPE (and with it every entity declaration) is
// refused before anything else is read, which defeats entity expansion.
func decodeRequest(raw []byte) (*request, error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	req := &request{dec: d, raw: raw}
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
			if t.Name.Local == "userCredentials" && (t.Name.Space == wsdl.Namespace || strings.HasPrefix(t.Name.Space, ns4PSAHeader)) {
				var h credentialsHeader
				if err := d.DecodeElement(&h, &t); err != nil {
					return malformed(req.v12, "Malformed request: the userCredentials header is not well-formed (%s).", xmlErrorText(err))
				}
				req.credentials = h.credentials()
				continue
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

// readToEnd reads what follows the operation element, so that a document
// cut short or with a DOCTYPE after the body is refused as malformed.
func readToEnd(req *request) error {
	for {
		tok, err := req.dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return malformed(req.v12, "Malformed request: not well-formed XML (%s).", xmlErrorText(err))
		}
		if _, ok := tok.(xml.Directive); ok {
			return malformed(req.v12, "Malformed request: DOCTYPE and entity declarations are not accepted.")
		}
	}
}
