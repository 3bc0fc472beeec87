package callevents

import (
	"context"
	"regexp"
	"strings"
	"time"
)

// Scope is what an API client may do (SPEC.md §3): "admin" (every
// extension), "org:yyyy" (extensions yyyy*…), "ext:yyyy*zzz" (that extension
// only) or "pbx" (only report call activity).
type Scope string

// The scopes without an argument.
const (
	ScopeAdmin Scope = "admin"
	ScopePBX   Scope = "pbx"
)

var orgPattern = regexp.MustCompile(`^[0-9]{4}$`)

// ParseScope validates s as a scope.
func ParseScope(s string) (Scope, error) {
	switch {
	case s == string(ScopeAdmin), s == string(ScopePBX):
		return Scope(s), nil
	case strings.HasPrefix(s, "org:") && orgPattern.MatchString(s[4:]):
		return Scope(s), nil
	case strings.HasPrefix(s, "ext:") && extensionPattern.MatchString(s[4:]):
		return Scope(s), nil
	}
	return "", Errorf(CodeAccessDenied, "Scope %q is invalid: expected admin, pbx, org:yyyy or ext:yyyy*zzz.", Truncate(s, 64))
}

// CanManage reports whether the scope may manage Call Events of ext.
func (s Scope) CanManage(ext Extension) bool {
	switch {
	case s == ScopeAdmin:
		return true
	case strings.HasPrefix(string(s), "org:"):
		return string(s)[4:] == ext.Organization()
	case strings.HasPrefix(string(s), "ext:"):
		return string(s)[4:] == string(ext)
	}
	return false
}

// CanReportCalls reports whether the scope may report call activity.
func (s Scope) CanReportCalls() bool { return s == ScopeAdmin || s == ScopePBX }

// Client is an API client. Its secret is kept only as a hash.
type Client struct {
	ID         string
	Name       string
	Scope      Scope
	SecretHash string
	Created    time.Time
}

// AccessToken is an issued bearer token, kept only as the SHA-256 of the
// token (hex), so a leaked table grants nothing.
type AccessToken struct {
	Hash     string
	ClientID string
	Expires  time.Time
}

// ErrClientNotFound is returned by a ClientStore for an unknown client id.
var ErrClientNotFound = Errorf(CodeAuthInvalid, "Invalid authentication data.")

// ErrAccessTokenNotFound is returned by a ClientStore for an unknown token.
var ErrAccessTokenNotFound = Errorf(CodeAuthInvalid, "Invalid authentication data.")

// ClientStore keeps API clients and access tokens durably.
type ClientStore interface {
	// CreateClient inserts c.
	CreateClient(ctx context.Context, c Client) error
	// CreateFirstClient inserts c only if there is no client at all, and
	// reports whether it did. Check and insert are atomic, so several
	// processes starting on one empty database create one client.
	CreateFirstClient(ctx context.Context, c Client) (bool, error)
	// FindClientByID returns ErrClientNotFound for an unknown id.
	FindClientByID(ctx context.Context, id string) (Client, error)
	// FindClients returns every client, oldest first.
	FindClients(ctx context.Context) ([]Client, error)
	// DeleteClient deletes the client, its access tokens and its console
	// sessions.
	// Returns ErrClientNotFound for an unknown id.
	DeleteClient(ctx context.Context, id string) error
	// CreateAccessToken inserts t.
	CreateAccessToken(ctx context.Context, t AccessToken) error
	// FindAccessToken returns the token with this hash, expired or not, and
	// its client (one lookup: it runs on every authenticated request), or
	// ErrAccessTokenNotFound.
	FindAccessToken(ctx context.Context, hash string) (AccessToken, Client, error)
	// DeleteExpiredAccessTokens deletes tokens that expired before now.
	DeleteExpiredAccessTokens(ctx context.Context, now time.Time) error
}
