// Package service is the HTTP edge of callevents: the PhoneCallEvents SOAP
// endpoint (SOAP 1.1 and 1.2, WSDL served at ?wsdl) and the OAuth token
// endpoint. It decodes requests into the gowsdl types of gen/, calls the
// domain services of the root package, and turns coded errors into SOAP
// faults in exactly one place (writeFault).
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	// Logger receives internal errors and panics, once each, with the
	// request id; nil discards them.
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies; 0 means MaxBodyBytesDefault.
	MaxBodyBytes int64
}

// Server serves the SOAP and OAuth endpoints.
type Server struct {
	callEvents *callevents.CallEventService
	auth       *callevents.Authenticator
	log        *slog.Logger
	maxBody    int64
	wsdl       *wsdlDocument
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	s := &Server{callEvents: cfg.CallEvents, auth: cfg.Auth, log: cfg.Logger, maxBody: cfg.MaxBodyBytes}
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
)

// Register adds the endpoints to mux.
func (s *Server) Register(mux *http.ServeMux) {
	soap := http.HandlerFunc(s.serveSOAP)
	mux.Handle(PathSOAP, soap)
	mux.Handle(PathSOAPLegacy, soap)
	token := http.HandlerFunc(s.serveToken)
	mux.Handle(PathToken, token)
	mux.Handle(PathTokenAlias, token)
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
