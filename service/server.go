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
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

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
	// Observer, when set, sees every request answered: its edge, operation
	// and code (0 for success). Nil measures nothing.
	Observer callevents.Observer
	// Limits guard credentials and the token endpoint; the zero value takes
	// every default (see Limits).
	Limits Limits
}

// Server serves the SOAP, UnifiedAPI REST, OAuth and intake endpoints.
type Server struct {
	callEvents *callevents.CallEventService
	auth       *callevents.Authenticator
	activities *callevents.ActivityService
	deliveries *callevents.DeliveryService
	log        *slog.Logger
	obs        callevents.Observer
	maxBody    int64
	wsdl       *wsdlDocument
	guards     *guards
	// decodeSlots holds a token per SOAP request being decoded
	// (SOAPDecodesPerCPU).
	decodeSlots chan struct{}
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		callEvents: cfg.CallEvents, auth: cfg.Auth, activities: cfg.Activities, deliveries: cfg.Deliveries,
		log: cfg.Logger, obs: callevents.ObserverOrNop(cfg.Observer), maxBody: cfg.MaxBodyBytes,
		guards: newGuards(cfg.Limits), decodeSlots: decodeSlots(),
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

// served tells the Observer that r was answered with code (0: success),
// and logs it at debug level (an access log, off by default): called once
// per request, where the answer is written.
func (s *Server) served(r *http.Request, code callevents.Code) {
	if info, ok := r.Context().Value(requestIDKey{}).(*requestInfo); ok {
		s.obs.RequestServed(info.edge, info.operation, code)
		if !s.log.Enabled(r.Context(), slog.LevelDebug) {
			return // spares building the record on every request
		}
		s.log.DebugContext(r.Context(), "service: request served", "request_id", info.id, "edge", info.edge, "operation", info.operation,
			"code", int(code), "remote_addr", r.RemoteAddr, "duration_ms", time.Since(info.start).Milliseconds())
	}
}

// logFailure logs, once per request, a failure whose details the client
// does not see: at Warn when the database is unavailable (it heals by
// itself; metrics and /readyz tell the story), at Info when the client had
// already gone (nobody waits for the answer), else at Error.
func (s *Server) logFailure(r *http.Request, code callevents.Code, err error) {
	ctx := r.Context()
	attrs := []any{"request_id", requestID(ctx), "code", int(code), "error", err.Error()}
	switch {
	case ctx.Err() != nil:
		s.log.InfoContext(ctx, "service: client went away before the answer", attrs...)
	case errors.Is(err, callevents.ErrUnavailable):
		s.log.WarnContext(ctx, "service: database unavailable", attrs...)
	default:
		s.log.ErrorContext(ctx, "service: internal error", attrs...)
	}
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
