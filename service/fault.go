package service

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"

	"github.com/callevents/callevents"
)

// writeFault is the SOAP endpoint's error writer, the one place where an
// error becomes a SOAP fault, in the request's SOAP version. A coded
// client error keeps its code and public message; anything internal is
// logged once with the request id and shown only as its public message
// (one saying to try again later when the database is unavailable). A
// wrong method is answered in plain text: that request is no SOAP at all.
func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, err error) {
	code := errorCode(r, err)
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusMethodNotAllowed {
		s.served(r, code)
		http.Error(w, he.err.Message, he.status)
		return
	}
	setRetryAfter(w, err)
	v12 := infoOf(r).soap12
	faultCode := ""
	message := callevents.ErrorMessage(err)
	var envErr *envelopeError
	if errors.As(err, &envErr) {
		faultCode, v12 = envErr.faultCode, envErr.v12
	}
	if errors.Is(err, callevents.ErrUnavailable) && code.Internal() {
		// Still 151 or 152 (SPEC.md §4 has no code for it), but the
		// message tells the caller that trying again later will help.
		message = "The service is temporarily unavailable; try again later."
	}
	sender := !code.Internal()
	if !sender {
		s.logFailure(r, code, err)
	}
	if faultCode == "" {
		faultCode = "Server"
		if v12 {
			faultCode = "Receiver"
		}
		if sender {
			faultCode = "Client"
			if v12 {
				faultCode = "Sender"
			}
		}
	}
	s.served(r, code)
	doc := buildFault(v12, faultCode, message, code)
	status := http.StatusInternalServerError
	contentType := "text/xml; charset=utf-8"
	if v12 {
		contentType = "application/soap+xml; charset=utf-8"
		if sender {
			status = http.StatusBadRequest
		}
	}
	out, _ := doc.WriteToBytes()
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(status)
	w.Write(out)
}

// buildFault builds a SOAP 1.1 or 1.2 fault envelope whose detail is the
// serviceFault element of the WSDL (gen.ServiceFault: code and message,
// each left out when zero), all of it with etree.
func buildFault(v12 bool, faultCode, reason string, code callevents.Code) *etree.Document {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	env := doc.CreateElement("soap:Envelope")
	fault := env.CreateElement("soap:Body").CreateElement("soap:Fault")
	var det *etree.Element
	if v12 {
		env.CreateAttr("xmlns:soap", nsSOAP12)
		fault.CreateElement("soap:Code").CreateElement("soap:Value").SetText("soap:" + faultCode)
		text := fault.CreateElement("soap:Reason").CreateElement("soap:Text")
		text.CreateAttr("xml:lang", "en")
		text.SetText(xmlChars(reason))
		det = fault.CreateElement("soap:Detail")
	} else {
		env.CreateAttr("xmlns:soap", nsSOAP11)
		// SOAP 1.1 fault children are unqualified.
		fault.CreateElement("faultcode").SetText("soap:" + faultCode)
		fault.CreateElement("faultstring").SetText(xmlChars(reason))
		det = fault.CreateElement("detail")
	}
	detail := det.CreateElement("serviceFault")
	detail.CreateAttr("xmlns", wsdlNamespace)
	if code != 0 {
		detail.CreateElement("code").SetText(strconv.Itoa(int(code)))
	}
	if reason != "" {
		detail.CreateElement("message").SetText(xmlChars(reason))
	}
	return doc
}

// xmlChars is s with every character XML cannot carry (a byte that is not
// UTF-8, a control character) replaced by U+FFFD, as encoding/xml writes
// text, so that a fault is well-formed whatever its message quotes.
func xmlChars(s string) string {
	clean := utf8.ValidString(s)
	for _, r := range s {
		if !xmlChar(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s { // a byte that is not UTF-8 ranges as U+FFFD
		if !xmlChar(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	return b.String()
}

// xmlChar reports whether r is a Char of XML 1.0.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}
