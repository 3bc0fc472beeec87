package service

import (
	"net/http"
	"strings"

	"github.com/callevents/callevents"
)

// authenticate checks cred for r, unless r's address, or the client id it
// names from that address, failed too often of late, and counts a failure
// against both.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, cred callevents.Credentials) (callevents.Principal, error) {
	if err := s.guards.checkAuthAllowed(r, cred.Username); err != nil {
		w.Header().Set("Retry-After", err.retryAfterSeconds())
		return callevents.Principal{}, err
	}
	p, err := s.auth.Authenticate(r.Context(), cred)
	s.guards.noteAuthResult(r, cred.Username, err)
	return p, err
}

// bearerToken reads "Authorization: Bearer <token>" (scheme in any case).
func bearerToken(r *http.Request) (string, error) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return "", callevents.Errorf(callevents.CodeAuthInvalid, "Invalid authentication data: send Authorization: Bearer <access token>.")
	}
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", callevents.Errorf(callevents.CodeAuthInvalid, "Invalid authentication data: send Authorization: Bearer <access token>.")
	}
	return token, nil
}
