package callevents

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"time"
)

// ConsoleSession is a sign-in to the admin console (SPEC.md §10). The
// browser holds its id in a cookie; the store keeps only the id's SHA-256
// (Hash), as for access tokens, so a leaked table signs nobody in.
type ConsoleSession struct {
	Hash     string
	ClientID string
	Expires  time.Time
}

// ErrConsoleSessionNotFound is an unknown or signed-out session.
var ErrConsoleSessionNotFound = Errorf(CodeAuthInvalid, "You are signed out: sign in again.")

// ConsoleSessionStore keeps console sessions durably, so that every
// process on one database knows them and a sign-out ends a session in all.
// A client's sessions go with the client.
type ConsoleSessionStore interface {
	CreateConsoleSession(ctx context.Context, s ConsoleSession) error
	// FindConsoleSession returns the session with this hash, expired or
	// not, and its client, or ErrConsoleSessionNotFound.
	FindConsoleSession(ctx context.Context, hash string) (ConsoleSession, Client, error)
	// ExtendConsoleSession moves the session's expiry to expires.
	ExtendConsoleSession(ctx context.Context, hash string, expires time.Time) error
	// DeleteConsoleSession ends the session; an unknown one is no error.
	DeleteConsoleSession(ctx context.Context, hash string) error
	// DeleteExpiredConsoleSessions deletes sessions that expired before now.
	DeleteExpiredConsoleSessions(ctx context.Context, now time.Time) error
}

// ConsoleSessionTTLDefault is how long a console session lasts without use.
const ConsoleSessionTTLDefault = 8 * time.Hour

// consoleSessionSlide is how stale an expiry may get before a use moves it:
// a page view does not cost a write each time.
const consoleSessionSlide = time.Minute

// ConsoleSessions signs clients in to the console, and out.
type ConsoleSessions struct {
	Store ConsoleSessionStore
	// Auth checks the client id and secret of a sign-in.
	Auth *Authenticator
	// TTL is the sliding lifetime of a session: each use moves its expiry
	// to TTL from then. 0 means ConsoleSessionTTLDefault.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (s *ConsoleSessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *ConsoleSessions) ttl() time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return ConsoleSessionTTLDefault
}

// SignIn checks the client's id and secret and returns a new session id
// for the browser. A pbx client manages nothing, so it cannot sign in
// (103); wrong credentials are 100, as in the APIs.
func (s *ConsoleSessions) SignIn(ctx context.Context, clientID, secret string) (string, Principal, error) {
	c, err := s.Auth.CheckClientSecret(ctx, clientID, secret)
	if err != nil {
		return "", Principal{}, err
	}
	if c.Scope == ScopePBX {
		return "", Principal{}, Errorf(CodeAccessDenied, "A pbx client reports calls and manages nothing: sign in with an admin or org client.")
	}
	now := s.now()
	// Swept at sign-in, as tokens are at issue: rare, and no timer needed.
	if err := s.Store.DeleteExpiredConsoleSessions(ctx, now); err != nil {
		return "", Principal{}, err
	}
	id := NewAccessTokenValue()
	if err := s.Store.CreateConsoleSession(ctx, ConsoleSession{Hash: hashToken(id), ClientID: c.ID, Expires: now.Add(s.ttl()).UTC()}); err != nil {
		return "", Principal{}, err
	}
	return id, Principal{ClientID: c.ID, Scope: c.Scope}, nil
}

// Resume returns who holds session id, moving its expiry on. An unknown,
// signed-out or expired session is 100, as is one whose client was
// removed (its sessions went with it).
func (s *ConsoleSessions) Resume(ctx context.Context, id string) (Principal, error) {
	if id == "" {
		return Principal{}, ErrConsoleSessionNotFound
	}
	hash := hashToken(id)
	sess, c, err := s.Store.FindConsoleSession(ctx, hash)
	if err != nil {
		return Principal{}, err
	}
	now := s.now()
	if !now.Before(sess.Expires) {
		return Principal{}, Errorf(CodeTokenExpired, "Your session expired: sign in again.")
	}
	if next := now.Add(s.ttl()); next.Sub(sess.Expires) >= consoleSessionSlide {
		if err := s.Store.ExtendConsoleSession(ctx, hash, next.UTC()); err != nil {
			return Principal{}, err
		}
	}
	return Principal{ClientID: c.ID, Scope: c.Scope}, nil
}

// SignOut ends session id in the store, for every process.
func (s *ConsoleSessions) SignOut(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	return s.Store.DeleteConsoleSession(ctx, hashToken(id))
}

// ConsoleCSRFToken is the token every state-changing console form carries
// for session id. It is derived from the id, which only the session's
// browser knows (an HttpOnly cookie), so another site can neither read nor
// forge it, and nothing more needs storing.
func ConsoleCSRFToken(id string) string {
	sum := sha256.Sum256([]byte("callevents console csrf\x00" + id))
	return hex.EncodeToString(sum[:])
}

// ErrConsoleCSRF is a console form without its session's CSRF token.
var ErrConsoleCSRF = errors.New("callevents: the form's CSRF token does not match the session")

// CheckConsoleCSRF returns ErrConsoleCSRF unless token is session id's.
func CheckConsoleCSRF(id, token string) error {
	if id == "" || subtle.ConstantTimeCompare([]byte(ConsoleCSRFToken(id)), []byte(token)) != 1 {
		return ErrConsoleCSRF
	}
	return nil
}
