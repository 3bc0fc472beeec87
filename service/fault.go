package service

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"

	"github.com/beevik/etree"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/gen"
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
	doc := buildFault(v12, faultCode, message, &gen.ServiceFault{Code: int32(code), Message: message})
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
// serviceFault element of the WSDL.
func buildFault(v12 bool, faultCode, reason string, detail *gen.ServiceFault) *etree.Document {
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
		text.SetText(reason)
		det = fault.CreateElement("soap:Detail")
	} else {
		env.CreateAttr("xmlns:soap", nsSOAP11)
		// SOAP 1.1 fault children are unqualified.
		fault.CreateElement("faultcode").SetText("soap:" + faultCode)
		fault.CreateElement("faultstring").SetText(reason)
		det = fault.CreateElement("detail")
	}
	if b, err := xml.Marshal(detail); err == nil {
		d := etree.NewDocument()
		if d.ReadFromBytes(b) == nil {
			det.AddChild(d.Root())
		}
	}
	return doc
}
