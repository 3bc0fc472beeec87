package service

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// limitEnvelope is a SOAP 1.1 or 1.2 envelope whose header holds header
// and whose GetPhoneCallEvents holds, after its extension, fields.
func limitEnvelope(v12 bool, header, fields string) string {
	ns := nsSOAP11
	if v12 {
		ns = nsSOAP12
	}
	return `<e:Envelope xmlns:e="` + ns + `" xmlns:v1="urn:callevents:phonecallevents:1"><e:Header>` + header +
		`</e:Header><e:Body><v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension>` + fields +
		`</v1:GetPhoneCallEvents></e:Body></e:Envelope>`
}

// nested is n elements, each in the one before.
func nested(n int) string { return strings.Repeat("<a>", n) + strings.Repeat("</a>", n) }

// Ensure decodeRequest takes a document exactly at MaxSOAPDepth and
// MaxSOAPElements, and refuses one past either (in the body or in a
// header) with a 400 that names the limit, in the request's SOAP version.
func TestEnvelopeLimits(t *testing.T) {
	// Envelope, Header, and Body, operation, extension: 5 elements. The
	// operation's children are at depth 4, a header's at depth 3.
	const fixed = 5
	for _, tc := range []struct {
		name            string
		header, fields  string
		wantErrContains string // "" accepted
	}{
		{"depth-at-limit-in-body", "", nested(MaxSOAPDepth - 3), ""},
		{"depth-past-limit-in-body", "", nested(MaxSOAPDepth - 2), "nested more than 64 deep"},
		{"depth-at-limit-in-header", nested(MaxSOAPDepth - 2), "", ""},
		{"depth-past-limit-in-header", nested(MaxSOAPDepth - 1), "", "nested more than 64 deep"},
		{"depth-far-past-limit", "", nested(150_000), "nested more than 64 deep"},
		{"elements-at-limit-in-body", "", strings.Repeat("<a/>", MaxSOAPElements-fixed), ""},
		{"elements-past-limit-in-body", "", strings.Repeat("<a/>", MaxSOAPElements-fixed+1), "more than 10000 elements"},
		{"elements-past-limit-in-header", strings.Repeat("<h/>", MaxSOAPElements-fixed+1), "", "more than 10000 elements"},
		{"elements-past-limit-deep-and-wide", "", strings.Repeat("<a><b><c/></b></a>", MaxSOAPElements/3), "more than 10000 elements"},
	} {
		for version, v12 := range map[string]bool{"soap11": false, "soap12": true} {
			t.Run(tc.name+"/"+version, func(t *testing.T) {
				raw := []byte(limitEnvelope(v12, tc.header, tc.fields))
				req, err := decodeRequest(raw)
				if tc.wantErrContains == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					if req.op.Name.Local != "GetPhoneCallEvents" || req.v12 != v12 {
						t.Errorf("decoded %s (v12 %v)", req.op.Name.Local, req.v12)
					}
					return
				}
				var envErr *envelopeError
				if !errors.As(err, &envErr) || !strings.Contains(envErr.message, tc.wantErrContains) || envErr.v12 != v12 || envErr.faultCode != "" {
					t.Fatalf("got %#v, want a 400 saying %q", err, tc.wantErrContains)
				}
				if !strings.HasPrefix(envErr.message, "Malformed request: ") {
					t.Errorf("message %q", envErr.message)
				}
			})
		}
	}
}

// Ensure SOAP requests are decoded SOAPDecodesPerCPU × GOMAXPROCS (at
// least 4) at a time: with every turn taken, a request waits and, when its
// client gives up, gets a Server fault 151 saying the service is busy;
// once a turn is free it is decoded.
func TestDecodeTurns(t *testing.T) {
	s := New(Config{})
	if want := max(4, SOAPDecodesPerCPU*runtime.GOMAXPROCS(0)); cap(s.decodeSlots) != want {
		t.Fatalf("%d decode turns, want %d", cap(s.decodeSlots), want)
	}
	for range cap(s.decodeSlots) {
		s.decodeSlots <- struct{}{}
	}
	hostile := limitEnvelope(false, "", nested(MaxSOAPDepth))
	serve := func(ctx context.Context) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, PathSOAP, strings.NewReader(hostile))
		s.serveSOAP(w, r)
		return w
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	w := serve(ctx)
	if waited := time.Since(start); waited < 40*time.Millisecond {
		t.Errorf("answered after %v, without waiting for a turn", waited)
	}
	if body := w.Body.String(); w.Code != 500 || !strings.Contains(body, "<faultcode>soap:Server</faultcode>") || !strings.Contains(body, "<code>151</code>") || !strings.Contains(body, "busy") {
		t.Errorf("with every turn taken: HTTP %d\n%s", w.Code, body)
	}

	<-s.decodeSlots // one turn free
	w = serve(context.Background())
	if body := w.Body.String(); !strings.Contains(body, "<code>400</code>") || !strings.Contains(body, "nested more than") {
		t.Errorf("with a turn free: HTTP %d\n%s", w.Code, body)
	}
	if n := len(s.decodeSlots); n != cap(s.decodeSlots)-1 {
		t.Errorf("%d turns taken after the request, want %d: the turn was not given back", n, cap(s.decodeSlots)-1)
	}
}
