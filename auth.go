package callevents

import (
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TokenTTLDefault is how long an access token lives (VoipNow: 2 hours).
const TokenTTLDefault = 2 * time.Hour

// TokenCacheTTLDefault is how long a verified access token, or client id
// and secret, is trusted without asking the store again; it bounds how long
// a removed client's tokens and secret keep working.
const TokenCacheTTLDefault = 5 * time.Second

// tokenCacheMax bounds the cache; when full it is emptied, which only costs
// store lookups.
const tokenCacheMax = 10000

// Credentials are what a caller presents: an access token, or a client id
// (username) and secret (password).
type Credentials struct {
	AccessToken string
	Username    string
	Password    string
}

// Principal is an authenticated client.
type Principal struct {
	ClientID string
	Scope    Scope
}

// Authenticator issues and checks credentials against a ClientStore.
type Authenticator struct {
	Store ClientStore
	// TokenTTL is the lifetime of issued tokens; 0 means TokenTTLDefault.
	TokenTTL time.Duration
	// TokenCacheTTL is how long a verified token (never past its expiry), or
	// client id and secret, is trusted without a store lookup; 0 means
	// TokenCacheTTLDefault and a negative value turns both caches off.
	TokenCacheTTL time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	tokens map[string]cachedToken // token hash → verified principal

	serverKeyOnce sync.Once
	serverKey     []byte // keys the secret cache; random, never leaves the process
	secretMu      sync.Mutex
	secrets       map[secretKey]*list.Element // → *cachedSecret in secretOrder
	secretOrder   *list.List                  // least recently verified first
	secretMax     int                         // 0 means secretCacheMax (tests lower it)
	secretChecks  atomic.Int64                // bcrypt comparisons run
}

type cachedToken struct {
	principal Principal
	expires   time.Time // the token's own expiry
	until     time.Time // when to ask the store again
}

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Authenticator) ttl() time.Duration {
	if a.TokenTTL > 0 {
		return a.TokenTTL
	}
	return TokenTTLDefault
}

// NewClient creates a client with a fresh id and secret and returns the
// secret, which is shown once and then only kept as a bcrypt hash.
func NewClient(name string, scope Scope, now time.Time) (Client, string, error) {
	secret := randomAlphanumerics(40)
	hash, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.DefaultCost)
	if err != nil {
		return Client{}, "", err
	}
	return Client{ID: randomAlphanumerics(24), Name: name, Scope: scope, SecretHash: string(hash), Created: now.UTC()}, secret, nil
}

// CheckClientSecret verifies clientID and secret. Returns code 100 when
// either is wrong, without telling which.
func (a *Authenticator) CheckClientSecret(ctx context.Context, clientID, secret string) (Client, error) {
	if clientID == "" || secret == "" {
		return Client{}, Errorf(CodeAuthInvalid, "Invalid authentication data.")
	}
	c, err := a.Store.FindClientByID(ctx, clientID)
	if errors.Is(err, ErrClientNotFound) {
		// Spend the time of a real check, so timing does not reveal which ids exist.
		a.compareSecret(dummyHash, secret)
		return Client{}, Errorf(CodeAuthInvalid, "Invalid authentication data.")
	}
	if err != nil {
		return Client{}, err
	}
	if a.compareSecret([]byte(c.SecretHash), secret) != nil {
		return Client{}, Errorf(CodeAuthInvalid, "Invalid authentication data.")
	}
	return c, nil
}

var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("callevents-dummy-secret"), bcrypt.DefaultCost)

// IssueToken checks the client's id and secret and returns a new access
// token and its lifetime. Returns code 100 for a wrong client.
func (a *Authenticator) IssueToken(ctx context.Context, clientID, secret string) (string, time.Duration, error) {
	c, err := a.CheckClientSecret(ctx, clientID, secret)
	if err != nil {
		return "", 0, err
	}
	now := a.now()
	// Expired tokens are swept here rather than by a timer: issuing is rare
	// and this keeps the table small without another goroutine.
	if err := a.Store.DeleteExpiredAccessTokens(ctx, now); err != nil {
		return "", 0, err
	}
	token := NewAccessTokenValue()
	if err := a.Store.CreateAccessToken(ctx, AccessToken{Hash: hashToken(token), ClientID: c.ID, Expires: now.Add(a.ttl()).UTC()}); err != nil {
		return "", 0, err
	}
	return token, a.ttl(), nil
}

// Authenticate checks credentials. Returns 100 when they are missing or
// wrong and 102 when the access token has expired.
func (a *Authenticator) Authenticate(ctx context.Context, cred Credentials) (Principal, error) {
	if cred.AccessToken != "" {
		return a.AuthenticateToken(ctx, cred.AccessToken)
	}
	if cred.Username == "" && cred.Password == "" {
		return Principal{}, Errorf(CodeAuthInvalid, "Invalid authentication data: send userCredentials with an accessToken, or a username and password.")
	}
	c, err := a.authenticateSecret(ctx, cred.Username, cred.Password)
	if err != nil {
		return Principal{}, err
	}
	return Principal{ClientID: c.ID, Scope: c.Scope}, nil
}

// AuthenticateToken checks a bearer token (100 unknown, 102 expired).
// A token verified in the last TokenCacheTTL is not looked up again.
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string) (Principal, error) {
	hash := hashToken(token)
	now := a.now()
	if p, expires, ok := a.cached(hash, now); ok {
		if !now.Before(expires) {
			return Principal{}, Errorf(CodeTokenExpired, "Access token expired: request a new one.")
		}
		return p, nil
	}
	t, c, err := a.Store.FindAccessToken(ctx, hash)
	if errors.Is(err, ErrAccessTokenNotFound) {
		return Principal{}, Errorf(CodeAuthInvalid, "Invalid authentication data.")
	}
	if err != nil {
		return Principal{}, err
	}
	if !now.Before(t.Expires) {
		return Principal{}, Errorf(CodeTokenExpired, "Access token expired: request a new one.")
	}
	p := Principal{ClientID: c.ID, Scope: c.Scope}
	a.remember(hash, p, t.Expires, now)
	return p, nil
}

func (a *Authenticator) cacheTTL() time.Duration {
	if a.TokenCacheTTL == 0 {
		return TokenCacheTTLDefault
	}
	return a.TokenCacheTTL
}

func (a *Authenticator) cached(hash string, now time.Time) (Principal, time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.tokens[hash]
	if !ok || !now.Before(e.until) {
		return Principal{}, time.Time{}, false
	}
	return e.principal, e.expires, true
}

func (a *Authenticator) remember(hash string, p Principal, expires, now time.Time) {
	ttl := a.cacheTTL()
	if ttl < 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tokens == nil || len(a.tokens) >= tokenCacheMax {
		a.tokens = make(map[string]cachedToken)
	}
	a.tokens[hash] = cachedToken{principal: p, expires: expires, until: now.Add(ttl)}
}

// AccessTokenBytes is how much randomness an access token carries.
const AccessTokenBytes = 32

// NewAccessTokenValue returns a fresh access token: AccessTokenBytes from
// crypto/rand, base64url without padding (43 characters, safe in a header,
// a form and a URL). Only its SHA-256 is stored (HashAccessToken).
func NewAccessTokenValue() string {
	var b [AccessTokenBytes]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashAccessToken is what the store keeps of a token: its SHA-256 in hex.
// A fast hash is enough, unlike for client secrets: a token is 256 random
// bits, so there is nothing to guess from the hash.
func HashAccessToken(token string) string { return hashToken(token) }

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
