// Package service is the HTTP edge of callevents: the PhoneCallEvents SOAP
// endpoint (SOAP 1.1 and 1.2, WSDL served at ?wsdl), the UnifiedAPI REST
// facade (/uapi/…, rest.go), the OAuth token endpoint and the PBX call
// activity intake (POST /pbx/v1/events), and the admin console
// (/console/, console.go). It decodes requests into the
// gowsdl types of gen/ (or the facade's and the intake's JSON), calls the
// domain services of the root package, and leaves every rule to them.
//
// Every endpoint is a handler that returns its failure (handler.go); one
// error writer per wire format turns it into the answer and counts it:
// writeFault for SOAP faults, writeJSONError for the facade's and the
// intake's JSON, writeOAuthError for the token endpoint, writeConsoleError
// for the console's pages.
package service

import (
	"log/slog"
	"net/http"

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
	// Console serves the admin console at PathConsole (console.go); with
	// no Sessions it is off.
	Console ConsoleConfig
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
	console     ConsoleConfig
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	cfg = cfg.WithDefaults()
	return &Server{
		callEvents: cfg.CallEvents, auth: cfg.Auth, activities: cfg.Activities, deliveries: cfg.Deliveries,
		log: cfg.Logger, obs: cfg.Observer, maxBody: cfg.MaxBodyBytes,
		guards: newGuards(cfg.Limits), decodeSlots: decodeSlots(), wsdl: mustParseWSDL(), console: cfg.Console,
	}
}

// WithDefaults returns c with its zero fields set to their documented
// defaults (the services stay as given: nil ones answer as documented).
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = MaxBodyBytesDefault
	}
	c.Observer = callevents.ObserverOrNop(c.Observer)
	c.Limits = c.Limits.WithDefaults()
	return c
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
	s.registerConsole(mux)
}
