package service

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/callevents/callevents"
)

// oauthEndpoint is the token endpoint; its failures are OAuth's errors.
var oauthEndpoint = endpoint{edge: "oauth", operation: "token", fallback: callevents.CodeRetrieveFailed, writeError: (*Server).writeOAuthError}

// maxTokenRequestBytes bounds a token request's form: an id and a secret.
const maxTokenRequestBytes = 64 << 10

// serveToken is the OAuth 2.0 client-credentials token endpoint (SPEC.md §3).
// The client id and secret come as form fields, or as HTTP Basic auth.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	// Limited here, on the server's own writer, so that a form past the
	// limit also closes the connection.
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequestBytes)
	s.serve(w, r, oauthEndpoint, s.handleToken)
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, "POST", "invalid_request", "POST the token request as a form.")
	}
	if err := r.ParseForm(); err != nil {
		return oauthRequestError("invalid_request", "The token request is not a form.")
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		return oauthRequestError("unsupported_grant_type", "Only the client_credentials grant is supported.")
	}
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok && clientID == "" {
		clientID, secret = u, p
	}
	if err := s.guards.checkTokenRequest(r, clientID); err != nil {
		return err
	}
	if err := s.guards.checkAuthAllowed(r, clientID); err != nil {
		return err
	}
	token, ttl, err := s.auth.IssueToken(r.Context(), clientID, secret)
	s.guards.noteAuthResult(r, clientID, err)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_in":   int(ttl.Seconds()),
	}) // a write that fails is the client gone: nobody to tell
	return nil
}

// oauthRequestError is a 400 of RFC 6749 §5.2 named name; the message is
// for the log and the SOAP-minded reader, OAuth shows only the name.
func oauthRequestError(name, message string) error {
	return &httpError{status: http.StatusBadRequest, name: name, err: callevents.Errorf(callevents.CodeMalformedRequest, "%s", message)}
}

// writeOAuthError is the token endpoint's error writer: an RFC 6749 error,
// {"error": name}. An httpError answers its status and name (a rate limit
// is 429 slow_down, RFC 8628's name for "ask less often"); an internal
// error is 500 server_error, or 503 temporarily_unavailable while the
// database is away, logged once; any other coded error is a wrong client,
// 401 invalid_client. The Observer counts 100 for invalid_client and a
// rate limit, 151 for an internal error, 400 for the rest.
func (s *Server) writeOAuthError(w http.ResponseWriter, r *http.Request, err error) {
	code := errorCode(r, err)
	var status int
	var name string
	var he *httpError
	switch {
	case errors.As(err, &he):
		status, name = he.status, he.name
		if status == http.StatusTooManyRequests {
			name = "slow_down"
		}
		setRetryAfter(w, err)
	case code.Internal():
		s.logFailure(r, code, err)
		status, name, code = http.StatusInternalServerError, "server_error", callevents.CodeRetrieveFailed
		if errors.Is(err, callevents.ErrUnavailable) {
			w.Header().Set("Retry-After", retryAfterUnavailable)
			status, name = http.StatusServiceUnavailable, "temporarily_unavailable"
		}
	default:
		w.Header().Set("WWW-Authenticate", `Basic realm="callevents"`)
		status, name, code = http.StatusUnauthorized, "invalid_client", callevents.CodeAuthInvalid
	}
	s.served(r, code)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": name})
}
