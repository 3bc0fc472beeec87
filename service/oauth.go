package service

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/callevents/callevents"
)

// serveToken is the OAuth 2.0 client-credentials token endpoint (SPEC.md §3).
// The client id and secret come as form fields, or as HTTP Basic auth.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	r, id := withRequestID(w, r, "oauth", "token")
	defer s.recoverPanic(r, id, func() { s.writeOAuthError(w, r, http.StatusInternalServerError, "server_error") })
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.writeOAuthError(w, r, http.StatusMethodNotAllowed, "invalid_request")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.writeOAuthError(w, r, http.StatusBadRequest, "invalid_request")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		s.writeOAuthError(w, r, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok && clientID == "" {
		clientID, secret = u, p
	}
	limited := s.guards.checkTokenRequest(r, clientID)
	if limited == nil {
		limited = s.guards.checkAuthAllowed(r, clientID)
	}
	if limited != nil {
		w.Header().Set("Retry-After", limited.retryAfterSeconds())
		s.writeOAuthError(w, r, http.StatusTooManyRequests, "slow_down")
		return
	}
	token, ttl, err := s.auth.IssueToken(r.Context(), clientID, secret)
	s.guards.noteAuthResult(r, clientID, err)
	if err != nil {
		if code := callevents.ErrorCode(err, callevents.CodeRetrieveFailed); code.Internal() {
			s.logFailure(r, code, err)
			if errors.Is(err, callevents.ErrUnavailable) {
				w.Header().Set("Retry-After", retryAfterUnavailable)
				s.writeOAuthError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable")
				return
			}
			s.writeOAuthError(w, r, http.StatusInternalServerError, "server_error")
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="callevents"`)
		s.writeOAuthError(w, r, http.StatusUnauthorized, "invalid_client")
		return
	}
	s.served(r, 0)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_in":   int(ttl.Seconds()),
	})
}

// writeOAuthError answers an RFC 6749 error; the Observer counts it by its
// code of SPEC.md §4: 100 for invalid_client and a rate limit (429
// slow_down, RFC 8628's name for "ask less often"), 151 for server_error
// and for a 503 temporarily_unavailable (the database is away), else 400.
func (s *Server) writeOAuthError(w http.ResponseWriter, r *http.Request, status int, code string) {
	switch status {
	case http.StatusUnauthorized, http.StatusTooManyRequests:
		s.served(r, callevents.CodeAuthInvalid)
	case http.StatusInternalServerError, http.StatusServiceUnavailable:
		s.served(r, callevents.CodeRetrieveFailed)
	default:
		s.served(r, callevents.CodeMalformedRequest)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code})
}
