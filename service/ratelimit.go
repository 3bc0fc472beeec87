package service

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/callevents/callevents"
)

// RateLimit is a token bucket: Burst at once, then one more every Every.
type RateLimit struct {
	Burst int
	Every time.Duration
}

// Limits guard the credentials against guessing and the token endpoint
// against floods. A zero RateLimit takes its default; a negative Burst
// turns that limit off. An address is the TCP peer's (an IPv6 peer counts
// by its /64) or, when the peer is a TrustedProxies one, the address its
// X-Forwarded-For names.
type Limits struct {
	// TokenPerAddress bounds requests to the token endpoint from one
	// address (default 30, then 1 every 2 s).
	TokenPerAddress RateLimit
	// TokenPerClient bounds token requests naming one client_id (default
	// 10, then 1 every 6 s). Tokens live 2 hours: a client needs few.
	TokenPerClient RateLimit
	// FailedAuthPerAddress bounds failed authentications (wrong or unknown
	// credentials, code 100) from one address on every endpoint (default
	// 20, then 1 every 6 s). Past it, the address is refused, even with
	// right credentials, until the bucket refills.
	FailedAuthPerAddress RateLimit
	// FailedAuthPerClient bounds failed authentications naming one client
	// id, from any address (default 10, then 1 every 6 s).
	FailedAuthPerClient RateLimit
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed: the caller is the last address in it that is not one of
	// them. Without them, every caller behind a proxy shares its address.
	TrustedProxies []netip.Prefix
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Defaults of Limits.
var (
	TokenPerAddressDefault      = RateLimit{Burst: 30, Every: 2 * time.Second}
	TokenPerClientDefault       = RateLimit{Burst: 10, Every: 6 * time.Second}
	FailedAuthPerAddressDefault = RateLimit{Burst: 20, Every: 6 * time.Second}
	FailedAuthPerClientDefault  = RateLimit{Burst: 10, Every: 6 * time.Second}
)

// keyedLimiterMax bounds the keys one limiter tracks; past it, keys whose
// bucket has refilled (who have nothing held against them) are dropped.
const keyedLimiterMax = 100_000

// keyedLimiter is one token bucket per key (an address or a client id).
type keyedLimiter struct {
	limit RateLimit
	now   func() time.Time
	mu    sync.Mutex
	keys  map[string]*rate.Limiter
}

func newKeyedLimiter(l, def RateLimit, now func() time.Time) *keyedLimiter {
	if l.Burst < 0 {
		return nil // off
	}
	if l.Burst == 0 {
		l = def
	}
	if l.Every <= 0 {
		l.Every = def.Every
	}
	return &keyedLimiter{limit: l, now: now, keys: make(map[string]*rate.Limiter)}
}

func (k *keyedLimiter) bucket(key string, now time.Time) *rate.Limiter {
	lim := k.keys[key]
	if lim == nil {
		if len(k.keys) >= keyedLimiterMax {
			k.sweep(now)
		}
		lim = rate.NewLimiter(rate.Every(k.limit.Every), k.limit.Burst)
		k.keys[key] = lim
	}
	return lim
}

// sweep forgets the keys whose bucket is full again; if all are still
// held, it forgets them all rather than grow without bound.
func (k *keyedLimiter) sweep(now time.Time) {
	for key, lim := range k.keys {
		if lim.TokensAt(now) >= float64(k.limit.Burst) {
			delete(k.keys, key)
		}
	}
	if len(k.keys) >= keyedLimiterMax {
		clear(k.keys)
	}
}

// take spends one token for key; when none is left it spends nothing and
// returns how long until one is.
func (k *keyedLimiter) take(key string) (time.Duration, bool) {
	if k == nil || key == "" {
		return 0, true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	lim := k.bucket(key, now)
	if lim.AllowN(now, 1) {
		return 0, true
	}
	return k.wait(lim, now), false
}

// held reports whether key has no token left, and how long until it has.
func (k *keyedLimiter) held(key string) (time.Duration, bool) {
	if k == nil || key == "" {
		return 0, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	lim := k.keys[key]
	if lim == nil || lim.TokensAt(now) >= 1 {
		return 0, false
	}
	return k.wait(lim, now), true
}

func (k *keyedLimiter) wait(lim *rate.Limiter, now time.Time) time.Duration {
	missing := 1 - lim.TokensAt(now)
	return time.Duration(missing * float64(k.limit.Every))
}

// guards are a server's limiters, built from Limits.
type guards struct {
	tokenByAddress, tokenByClient   *keyedLimiter
	failedByAddress, failedByClient *keyedLimiter
	proxies                         []netip.Prefix
}

func newGuards(l Limits) *guards {
	now := l.Now
	if now == nil {
		now = time.Now
	}
	return &guards{
		tokenByAddress:  newKeyedLimiter(l.TokenPerAddress, TokenPerAddressDefault, now),
		tokenByClient:   newKeyedLimiter(l.TokenPerClient, TokenPerClientDefault, now),
		failedByAddress: newKeyedLimiter(l.FailedAuthPerAddress, FailedAuthPerAddressDefault, now),
		failedByClient:  newKeyedLimiter(l.FailedAuthPerClient, FailedAuthPerClientDefault, now),
		proxies:         l.TrustedProxies,
	}
}

// rateLimitedError refuses a request for a while. authenticate sets its
// Retry-After; the error writers see it through Unwrap: writeJSONError as
// the HTTP error 429 too_many_requests, writeFault as code 100 (SPEC.md §4
// has no code of its own for it; the message says what happened).
type rateLimitedError struct {
	message    string
	retryAfter time.Duration
}

func (e *rateLimitedError) Error() string { return e.message }

func (e *rateLimitedError) Unwrap() []error {
	return []error{
		&httpError{status: http.StatusTooManyRequests, code: "too_many_requests", message: e.message, countAs: callevents.CodeAuthInvalid},
		callevents.Errorf(callevents.CodeAuthInvalid, "%s", e.message),
	}
}

// authenticate checks cred for r, unless r's address or the client id it
// names failed too often of late, and counts a failure against both.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, cred callevents.Credentials) (callevents.Principal, error) {
	if err := s.guards.checkAuthAllowed(r, cred.Username); err != nil {
		w.Header().Set("Retry-After", err.retryAfterSeconds())
		return callevents.Principal{}, err
	}
	p, err := s.auth.Authenticate(r.Context(), cred)
	s.guards.noteAuthResult(r, cred.Username, err)
	return p, err
}

// retryAfterSeconds is the Retry-After value: whole seconds, at least 1.
func (e *rateLimitedError) retryAfterSeconds() string {
	return strconv.Itoa(max(1, int(math.Ceil(e.retryAfter.Seconds()))))
}

// checkAuthAllowed refuses an authentication attempt from an address, or
// naming a client, that failed too often of late.
func (g *guards) checkAuthAllowed(r *http.Request, clientID string) *rateLimitedError {
	if wait, held := g.failedByAddress.held(g.callerKey(r)); held {
		return &rateLimitedError{message: "Too many failed authentication attempts from this address; retry in " + seconds(wait) + ".", retryAfter: wait}
	}
	if wait, held := g.failedByClient.held(clientID); held {
		return &rateLimitedError{message: "Too many failed authentication attempts for this client; retry in " + seconds(wait) + ".", retryAfter: wait}
	}
	return nil
}

// noteAuthResult counts a failed authentication (code 100) against the
// address and the client id it named. An expired token (102) is not a
// failure: honest clients meet it.
func (g *guards) noteAuthResult(r *http.Request, clientID string, err error) {
	if err == nil || callevents.ErrorCode(err, 0) != callevents.CodeAuthInvalid {
		return
	}
	g.failedByAddress.take(g.callerKey(r))
	g.failedByClient.take(clientID)
}

// checkTokenRequest spends one token-endpoint request of the address and
// of the client id.
func (g *guards) checkTokenRequest(r *http.Request, clientID string) *rateLimitedError {
	if wait, ok := g.tokenByAddress.take(g.callerKey(r)); !ok {
		return &rateLimitedError{message: "Too many token requests from this address; retry in " + seconds(wait) + ".", retryAfter: wait}
	}
	if wait, ok := g.tokenByClient.take(clientID); !ok {
		return &rateLimitedError{message: "Too many token requests for this client; retry in " + seconds(wait) + ".", retryAfter: wait}
	}
	return nil
}

func seconds(d time.Duration) string {
	n := max(1, int(math.Ceil(d.Seconds())))
	if n == 1 {
		return "1 second"
	}
	return strconv.Itoa(n) + " seconds"
}

// callerKey is the limiter key of r's caller: its IP, or its /64 for IPv6
// (one host commonly holds a whole /64). Behind a trusted proxy it is the
// last X-Forwarded-For address that is not a trusted proxy.
func (g *guards) callerKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if g.trusted(addr) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a forged or broken entry: stop at the last good one
			}
			addr = hop.Unmap()
			if !g.trusted(addr) {
				break
			}
		}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

func (g *guards) trusted(addr netip.Addr) bool {
	for _, p := range g.proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
