package service

import (
	"net/http"
	"strings"

	"github.com/callevents/callevents"
)

// authenticate checks cred for r, unless r's address, or the client id it
// names from that address, failed too often of late, and counts a failure
// against both. An uncoded failure is an internal one of reading (151),
// whatever the operation's fallback: nothing was written yet.
func (s *Server) authenticate(r *http.Request, cred callevents.Credentials) (callevents.Principal, error) {
	if err := s.guards.checkAuthAllowed(r, cred.Username); err != nil {
		return callevents.Principal{}, err
	}
	p, err := s.auth.Authenticate(r.Context(), cred)
	s.guards.noteAuthResult(r, cred.Username, err)
	if err != nil && callevents.ErrorCode(err, 0) == 0 {
		err = &callevents.Error{Code: callevents.CodeRetrieveFailed, Message: callevents.ErrorMessage(err), Err: err}
	}
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
