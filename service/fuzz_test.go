package service

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
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

// FuzzDecodeActivities feeds arbitrary JSON to the intake decoder: no panic,
// and what it accepts validates or is refused by Validate without panicking.
func FuzzDecodeActivities(f *testing.F) {
	for _, seed := range []string{
		`{"callId":"c1","phase":"dial","callerExtension":"0003*210","calledExtension":"0003*211"}`,
		`[{"callId":"c1","phase":"hangup","calledExtension":"0003*211","status":"BUSY","time":"2026-11-28T12:00:00Z"},{"callId":"c2","phase":"answer","callerExtension":"0003*210"}]`,
		`{"callId":1}`, `[]`, `null`, `{"calledExtention":"x"}`,
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
