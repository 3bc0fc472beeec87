package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/callevents/callevents"
)

// FuzzDecodeRequest feeds arbitrary documents to the SOAP envelope decoder
// and, when it finds a known operation, to that operation's decoder: no
// panic, and a document with a DOCTYPE is never accepted.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v1="urn:callevents:phonecallevents:1"><soapenv:Header><v1:userCredentials><v1:accessToken>t</v1:accessToken></v1:userCredentials></soapenv:Header><soapenv:Body><v1:AddPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>0</v1:type><v1:url>http://a/</v1:url></v1:AddPhoneCallEvent></soapenv:Body></soapenv:Envelope>`,
		`<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><GetPhoneCallEvents xmlns="urn:callevents:phonecallevents:1"><extension>0003*210</extension><count>x</count></GetPhoneCallEvents></env:Body></env:Envelope>`,
		`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>`,
		`<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header><h:userCredentials xmlns:h="http://4psa.com/HeaderData.xsd/3.5.0"><item><key>username</key><value>u</value></item></h:userCredentials></e:Header><e:Body><v1:DelPhoneCallEvent xmlns:v1="urn:callevents:phonecallevents:1"><v1:extension>0003*210</v1:extension></v1:DelPhoneCallEvent></e:Body></e:Envelope>`,
		// Nil and empty fields, and content after the envelope.
		`<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><e:Body><EditPhoneCallEvent xmlns="urn:callevents:phonecallevents:1"><extension>0003*210</extension><type>0</type><id>x</id><status xsi:nil="true"/><method/><note/><count> 7 <x/></count></EditPhoneCallEvent></e:Body></e:Envelope>`,
		`<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><DelPhoneCallEvent xmlns="urn:callevents:phonecallevents:1"/><x/></e:Body></e:Envelope> text`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := decodeRequest(raw)
		if err != nil {
			return
		}
		op, ok := operations[req.op.Name.Local]
		if !ok || req.op.Name.Space != wsdlNamespace {
			return
		}
		if _, err := op.decode(req); err == nil && bytes.Contains(raw, []byte("<!DOCTYPE")) {
			t.Fatalf("a document with a DOCTYPE was accepted: %q", raw)
		}
	})
}

// FuzzDecodeActivities feeds arbitrary JSON to the intake decoder: no panic;
// a refusal is a 400 whose quoted names are whole characters; what it
// accepts validates or is refused by Validate without panicking.
func FuzzDecodeActivities(f *testing.F) {
	for _, seed := range []string{
		`{"callId":"c1","phase":"dial","callerExtension":"0003*210","calledExtension":"0003*211"}`,
		`[{"callId":"c1","phase":"hangup","calledExtension":"0003*211","status":"BUSY","time":"2026-11-28T12:00:00Z"},{"callId":"c2","phase":"answer","callerExtension":"0003*210"}]`,
		`{"callId":1}`, `[]`, `null`, `{"calledExtention":"x"}`,
		`{"callId":"c1","phase":"dial","numărulApelantuluiÎnFormatInternaționalCuPrefixulȚării":"+40"}`,
	} {
		f.Add([]byte(seed))
	}
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		acts, err := decodeActivities(raw)
		if err != nil {
			var ce *callevents.Error
			if !errors.As(err, &ce) || ce.Code != callevents.CodeMalformedRequest {
				t.Fatalf("%q: refused with %v, want a coded 400", raw, err)
			}
			checkQuotedText(t, raw, ce.Message)
			return
		}
		for _, a := range acts {
			_ = a.Validate()
			if a.Validate() == nil {
				a.ExtensionEvents()
			}
		}
	})
}

// FuzzDecodeRESTCallEvent feeds arbitrary bodies to the UnifiedAPI facade's
// body decoder (decodeRestBody, with restNumber), then the create path's
// typeOf and Validate. Properties:
//   - no panic;
//   - a refusal is a coded client error (400 or the field's 301–306) with
//     a valid UTF-8 message and no internal cause, never a raw encoding/json
//     error; a Field it names is a key of the body, and a number or string
//     field's error carries that field's code; names it quotes, shortened
//     or not, are whole characters;
//   - an accepted body is an object whose every non-null key is a known
//     field, each of which was read (nothing dropped, null is absent);
//   - a number field holds what its decimal integer says, whether written
//     as a JSON number or a string (referenceNumber, apart from rest.go);
//   - what was read round-trips: written back with numbers as JSON numbers,
//     and as strings the VoipNow way, it decodes to the same values;
//   - a Call Event made of it validates, or is refused with a coded error.
func FuzzDecodeRESTCallEvent(f *testing.F) {
	for _, seed := range []string{
		// VoipNow UnifiedAPI clients send numbers as strings.
		`{"type":"0","method":"1","url":"https://crm.example.com/incoming","note":"CRM screen pop"}`,
		`{"type":0,"method":1,"url":"https://crm.example.com/incoming?token=a%20b&x=1","status":1,"secret":"s3cret-Of-twenty+chars!"}`,
		`{"status":0,"note":"paused"}`,
		`{"type":"0","note":null,"method":1}`,
		`{"note":"","secret":""}`,
		`{"type":" 2 ","status":"+1"}`,
		`{"type":"4","url":"http://crm.example.com/\u00e9v\u00e9nement","note":"r\u00e9ception \ud83d\udcde"}`,
		`{"type":0,"url":"http://127.0.0.1:9/h","extension":"0003*210"}`,
		`{"hasSecret":"1"}`, `{"Type":0}`, `type=0`, `[{"type":0}]`, ``, `   `, `null`, `{}`, `"x"`,
		`{"type":0,"url":"http://127.0.0.1:9/h"} {}`,
		`{"status":0.5}`, `{"type":1e2}`, `{"method":"01"}`, `{"type":"2147483648"}`, `{"type":-1}`,
		`{"method":"0x1"}`, `{"status":"1_0"}`, `{"type":"٣"}`,
		`{"type":true}`, `{"note":5}`, `{"url":["http://a/"]}`, `{"type":0,"type":"1"}`,
		`{"type":"0",`, `{"note":"\ud800"}`,
		// Long unknown keys: the error message shows them shortened, the
		// second one near characters of more than one byte.
		`{"callEventNotificationUrlForTheCustomerRelationshipManagementSystem":"https://crm.example.com/"}`,
		`{"notificareÎnregistrareApelPentruSistemulDeGestionareARelațiilorCuClienții":"https://crm.example.com/"}`,
	} {
		f.Add([]byte(seed))
	}
	s := &Server{maxBody: MaxBodyBytesDefault}
	decode := func(raw []byte) (restBody, error) {
		// decodeRestBody reads only the body: a bare request keeps each run cheap.
		return s.decodeRestBody(&http.Request{Body: io.NopCloser(bytes.NewReader(raw))})
	}
	// Written out rather than taken from rest.go, so that a field reported
	// under another's code fails (README: pce_type_invalid … pce_secret_invalid).
	fieldCodes := map[string]callevents.Code{
		"type": callevents.CodeTypeInvalid, "method": callevents.CodeMethodInvalid,
		"url": callevents.CodeURLInvalid, "status": callevents.CodeStatusInvalid,
		"note": callevents.CodeNoteInvalid, "secret": callevents.CodeSecretInvalid,
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		body, err := decode(raw)
		// The keys of the body as a reference reading sees them; nil when
		// it is no JSON object.
		var keys map[string]json.RawMessage
		if json.Unmarshal(raw, &keys) != nil {
			keys = nil
		}
		if err != nil {
			checkRESTBodyError(t, raw, err, keys, fieldCodes)
			return
		}
		if keys == nil {
			t.Fatalf("accepted a body that is no JSON object: %q", raw)
		}
		set := map[string]bool{
			"type": body.typ != nil, "method": body.method != nil, "status": body.status != nil,
			"url": body.url != nil, "note": body.note != nil, "secret": body.secret != nil,
		}
		for name, value := range keys {
			isNull := string(bytes.TrimSpace(value)) == "null"
			known, ok := set[name]
			if !ok && !isNull {
				t.Fatalf("accepted the unknown field %q: %q", name, raw)
			}
			if ok && known == isNull {
				t.Fatalf("field %q (%s) read as set=%v: %q", name, value, known, raw)
			}
		}
		for name, isSet := range set {
			if _, ok := keys[name]; isSet && !ok {
				t.Fatalf("field %q set, but not in the body: %q", name, raw)
			}
		}
		for name, got := range map[string]*int{"type": (*int)(body.typ), "method": (*int)(body.method), "status": (*int)(body.status)} {
			if want, ok := referenceNumber(keys[name]); got != nil && (!ok || *got != want) {
				t.Fatalf("%s %s read as %d; a decimal integer reads as %d (ok %v): %q", name, keys[name], *got, want, ok, raw)
			}
		}
		for _, asStrings := range []bool{false, true} {
			again := restBodyJSON(body, asStrings)
			got, err := decode(again)
			if err != nil {
				t.Fatalf("%q decoded, but written back as %s it is refused: %v", raw, again, err)
			}
			if d := diffRESTBody(body, got); d != "" {
				t.Fatalf("%q round-trips through %s with %s", raw, again, d)
			}
		}
		typ, _, err := typeOf(restRequest{}, body)
		if err != nil {
			if callevents.ErrorCode(err, 0) != callevents.CodeTypeInvalid || body.typ != nil {
				t.Fatalf("typeOf with type %v: %v", body.typ, err)
			}
			return
		}
		c := body.update().Normalize().Apply(callevents.NewCallEvent("0003*210", typ))
		if err := c.Validate(); err != nil {
			var ce *callevents.Error
			if !errors.As(err, &ce) || ce.Code.Internal() || !utf8.ValidString(ce.Message) {
				t.Fatalf("Validate of %+v: %v", c, err)
			}
		}
	})
}

// checkRESTBodyError checks a refusal of raw by decodeRestBody.
func checkRESTBodyError(t *testing.T, raw []byte, err error, keys map[string]json.RawMessage, fieldCodes map[string]callevents.Code) {
	t.Helper()
	var ce *callevents.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%q: uncoded error %T %v", raw, err, err)
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	if ce.Err != nil || errors.As(err, &syntaxErr) || errors.As(err, &typeErr) || strings.HasPrefix(ce.Message, "json:") {
		t.Fatalf("%q: the error carries encoding/json's: %#v", raw, ce)
	}
	if ce.Code.Internal() {
		t.Fatalf("%q: internal code %d for a client's body: %v", raw, ce.Code, err)
	}
	if _, ok := jsonErrorKinds[ce.Code]; !ok {
		t.Fatalf("%q: code %d has no JSON form", raw, ce.Code)
	}
	if !utf8.ValidString(ce.Message) || ce.Message == "" {
		t.Fatalf("%q: message %q is empty or not UTF-8", raw, ce.Message)
	}
	checkQuotedText(t, raw, ce.Message)
	if ce.Field == "" {
		if ce.Code != callevents.CodeMalformedRequest {
			t.Fatalf("%q: code %d names no field", raw, ce.Code)
		}
		return
	}
	if _, ok := keys[ce.Field]; !ok {
		t.Fatalf("%q: the error names field %q, not a key of the body", raw, ce.Field)
	}
	want, ok := fieldCodes[ce.Field]
	if !ok {
		want = callevents.CodeMalformedRequest // an unknown field
	}
	if ce.Code != want {
		t.Fatalf("%q: field %q refused with code %d, want %d", raw, ce.Field, ce.Code, want)
	}
}

// referenceNumber reads a number field as the README documents it, apart
// from rest.go: a decimal integer (optionally signed), as a JSON number or
// a JSON string, blanks around it allowed in a string.
func referenceNumber(value json.RawMessage) (int, bool) {
	text := string(bytes.TrimSpace(value))
	var s string
	if json.Unmarshal(value, &s) == nil {
		text = strings.TrimSpace(s)
	}
	n, err := strconv.ParseInt(text, 10, 32)
	return int(n), err == nil
}

// checkQuotedText checks that every Go-quoted string in a message (a field
// name, a value, shortened or not) is whole characters. The body's strings
// are valid UTF-8 once decoded, so a \x escape in a quote means the message
// cut a character in two.
func checkQuotedText(t *testing.T, raw []byte, message string) {
	t.Helper()
	for i := 0; i < len(message); i++ {
		if message[i] != '"' {
			continue
		}
		q, err := strconv.QuotedPrefix(message[i:])
		if err != nil {
			continue
		}
		if u, _ := strconv.Unquote(q); !utf8.ValidString(u) {
			t.Fatalf("%q: the message %q shows %s, a character cut in two", raw, message, q)
		}
		i += len(q) - 1
	}
}

// restBodyJSON writes b back as a request body, its numbers as JSON numbers
// or, as VoipNow clients do, as strings.
func restBodyJSON(b restBody, asStrings bool) []byte {
	m := map[string]any{}
	num := func(name string, n int) {
		if asStrings {
			m[name] = strconv.Itoa(n)
		} else {
			m[name] = n
		}
	}
	if b.typ != nil {
		num("type", int(*b.typ))
	}
	if b.method != nil {
		num("method", int(*b.method))
	}
	if b.status != nil {
		num("status", int(*b.status))
	}
	for name, v := range map[string]*string{"url": b.url, "note": b.note, "secret": b.secret} {
		if v != nil {
			m[name] = *v
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return out
}

// diffRESTBody describes how two decoded bodies differ, "" when they agree.
func diffRESTBody(a, b restBody) string {
	var d []string
	num := func(name string, x, y *int) {
		if (x == nil) != (y == nil) || (x != nil && *x != *y) {
			d = append(d, fmt.Sprintf("%s %s -> %s", name, ptrText(x), ptrText(y)))
		}
	}
	str := func(name string, x, y *string) {
		if (x == nil) != (y == nil) || (x != nil && *x != *y) {
			d = append(d, fmt.Sprintf("%s %s -> %s", name, ptrText(x), ptrText(y)))
		}
	}
	num("type", (*int)(a.typ), (*int)(b.typ))
	num("method", (*int)(a.method), (*int)(b.method))
	num("status", (*int)(a.status), (*int)(b.status))
	str("url", a.url, b.url)
	str("note", a.note, b.note)
	str("secret", a.secret, b.secret)
	return strings.Join(d, ", ")
}

func ptrText[T any](p *T) string {
	if p == nil {
		return "absent"
	}
	return fmt.Sprintf("%#v", *p)
}
