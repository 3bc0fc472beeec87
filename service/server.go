// Package service is the HTTP edge of callevents: the PhoneCallEvents SOAP
// endpoint (SOAP 1.1 and 1.2, WSDL served at ?wsdl), the UnifiedAPI REST
// facade (/uapi/…, rest.go), the OAuth token endpoint and the PBX call
// activity intake (POST /pbx/v1/events). It decodes requests into the
// gowsdl types of gen/ (or the facade's and the intake's JSON), calls the
// domain services of the root package, and turns coded errors into
// responses in one place per wire format: writeFault for SOAP faults,
// writeJSONError for JSON.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/callevents/callevents"
)

// MaxBodyBytesDefault is the largest request body accepted (1 MiB).
const MaxBodyBytesDefault = 1 << 20

// Config wires the edge to the domain.
type Config struct {
	CallEvents *callevents.CallEventService
	Auth       *callevents.Authenticator
	// Activities accepts call activity at /pbx/v1/events. When nil the
	// endpoint is still registered and answers 500 internal_error "Call
	// activity intake is not available on this server."
	Activities *callevents.ActivityService
	// Deliveries serves the delivery operations (SPEC.md §8). When nil they
	// stay in the WSDL and answer a Server fault 151 "The delivery log is not
	// available on this server."; TestPhoneCallEvent does the same when its
	// Tester is nil.
	Deliveries *callevents.DeliveryService
	// Logger receives internal errors and panics, once each, with the
	// request id; nil discards them.
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies (SOAP and intake); 0 means
	// MaxBodyBytesDefault.
	MaxBodyBytes int64
}

// Server serves the SOAP, UnifiedAPI REST, OAuth and intake endpoints.
type Server struct {
	callEvents *callevents.CallEventService
	auth       *callevents.Authenticator
	activities *callevents.ActivityService
	deliveries *callevents.DeliveryService
	log        *slog.Logger
	maxBody    int64
	wsdl       *wsdlDocument
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		callEvents: cfg.CallEvents, auth: cfg.Auth, activities: cfg.Activities, deliveries: cfg.Deliveries,
		log: cfg.Logger, maxBody: cfg.MaxBodyBytes,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = MaxBodyBytesDefault
	}
	s.wsdl = mustParseWSDL()
	return s
}

// Paths of the endpoints.
const (
	PathSOAP       = "/soap/PhoneCallEvents"
	PathSOAPLegacy = "/soap2/phonecallevents_agent.php" // VoipNow style
	PathToken      = "/oauth/token.php"
	PathTokenAlias = "/oauth/token"
	PathEvents     = "/pbx/v1/events" // call activity from the PBX (SPEC.md §7)
)

// Register adds the endpoints to mux.
func (s *Server) Register(mux *http.ServeMux) {
	soap := http.HandlerFunc(s.serveSOAP)
	mux.Handle(PathSOAP, soap)
	mux.Handle(PathSOAPLegacy, soap)
	token := http.HandlerFunc(s.serveToken)
	mux.Handle(PathToken, token)
	mux.Handle(PathTokenAlias, token)
	mux.Handle(PathEvents, http.HandlerFunc(s.serveEvents))
	s.registerUAPI(mux) // the UnifiedAPI REST facade, in rest.go
}

type requestIDKey struct{}

// withRequestID gives every request an id, echoed in X-Request-Id, so a
// client can quote it and an operator can find the one log line about it.
func withRequestID(w http.ResponseWriter, r *http.Request) (*http.Request, string) {
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	w.Header().Set("X-Request-Id", id)
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)), id
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// recoverPanic, deferred by a handler, turns a panic into that handler's
// internal-error answer, logged once with the request id and the stack.
// http.ErrAbortHandler is passed on: it is net/http's way to abort.
func (s *Server) recoverPanic(r *http.Request, id string, answer func()) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	s.log.ErrorContext(r.Context(), "service: panic", "request_id", id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	answer()
}
