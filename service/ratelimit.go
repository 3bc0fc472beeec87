package service

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
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
//
// Every limit is counted per address, the per-client ones per client id
// and address: what one address does never holds another. A limit per
// client id alone would let anyone who knows an id (ids are not secret:
// they show in configurations and logs) lock its owner out with a few
// wrong secrets, while guarding nothing: a secret has 238 bits, so
// guessing it is hopeless at any rate. Counted per client id and address,
// the limit still stops one caller's run against one client, and a right
// secret is only ever refused after failures from its own address.
type Limits struct {
	// TokenPerAddress bounds requests to the token endpoint from one
	// address (default 30, then 1 every 2 s).
	TokenPerAddress RateLimit
	// TokenPerClient bounds token requests naming one client_id from one
	// address (default 10, then 1 every 6 s). Tokens live 2 hours: a
	// client needs few.
	TokenPerClient RateLimit
	// FailedAuthPerAddress bounds failed authentications (wrong or unknown
	// credentials, code 100) from one address on every endpoint (default
	// 20, then 1 every 6 s). Past it, the address is refused, even with
	// right credentials, until the bucket refills.
	FailedAuthPerAddress RateLimit
	// FailedAuthPerClient bounds failed authentications naming one client
	// id from one address (default 10, then 1 every 6 s). Past it, that
	// address is refused for that client, even with the right secret,
	// until the bucket refills; other addresses are not.
	FailedAuthPerClient RateLimit
	// TrustedProxies are the reverse proxies whose forwarding headers are
	// believed, and only when one of them is the TCP peer: X-Forwarded-For
	// for the rate limits (the caller is the last address in it that is
	// not one of them), and Forwarded, X-Forwarded-Host and
	// X-Forwarded-Proto for the absolute URLs the server writes (the WSDL's
	// soap:address, REST links). Without them, every caller behind a
	// proxy shares its address, and URLs use the request's own Host.
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

func newKeyedLimiter(l RateLimit, now func() time.Time) *keyedLimiter {
	if l.Burst < 0 {
		return nil // off
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
	proxies                         trustedProxies
}

// WithDefaults returns l with each zero limit (and a zero Every) set to its
// default, and Now to time.Now when nil. A negative Burst stays: off.
func (l Limits) WithDefaults() Limits {
	l.TokenPerAddress = l.TokenPerAddress.orDefault(TokenPerAddressDefault)
	l.TokenPerClient = l.TokenPerClient.orDefault(TokenPerClientDefault)
	l.FailedAuthPerAddress = l.FailedAuthPerAddress.orDefault(FailedAuthPerAddressDefault)
	l.FailedAuthPerClient = l.FailedAuthPerClient.orDefault(FailedAuthPerClientDefault)
	if l.Now == nil {
		l.Now = time.Now
	}
	return l
}

// orDefault is r, or def where r leaves it zero; an r that is off stays off.
func (r RateLimit) orDefault(def RateLimit) RateLimit {
	switch {
	case r.Burst < 0:
		return r
	case r.Burst == 0:
		return def
	case r.Every <= 0:
		r.Every = def.Every
	}
	return r
}

// newGuards takes l with its defaults filled in (Limits.WithDefaults).
func newGuards(l Limits) *guards {
	return &guards{
		tokenByAddress:  newKeyedLimiter(l.TokenPerAddress, l.Now),
		tokenByClient:   newKeyedLimiter(l.TokenPerClient, l.Now),
		failedByAddress: newKeyedLimiter(l.FailedAuthPerAddress, l.Now),
		failedByClient:  newKeyedLimiter(l.FailedAuthPerClient, l.Now),
		proxies:         l.TrustedProxies,
	}
}

// rateLimited refuses a request for wait: 429 too_many_requests on the
// JSON edges (slow_down on OAuth's), fault 100 on SOAP (SPEC.md §4 has no
// code of its own for it; the message says what happened), with
// Retry-After everywhere.
func rateLimited(wait time.Duration, message string) error {
	return &httpError{status: http.StatusTooManyRequests, name: "too_many_requests", err: callevents.Errorf(callevents.CodeAuthInvalid, "%s", message), retryAfter: wait}
}

// checkAuthAllowed refuses an authentication attempt from an address that
// failed too often of late, or naming a client that failed too often from
// this address.
func (g *guards) checkAuthAllowed(r *http.Request, clientID string) error {
	caller := g.callerKey(r)
	if wait, held := g.failedByAddress.held(caller); held {
		return rateLimited(wait, "Too many failed authentication attempts from this address; retry in "+seconds(wait)+".")
	}
	if wait, held := g.failedByClient.held(clientKey(clientID, caller)); held {
		return rateLimited(wait, "Too many failed authentication attempts for this client from this address; retry in "+seconds(wait)+".")
	}
	return nil
}

// noteAuthResult counts a failed authentication (code 100) against the
// address, and against the client id it named from that address. An
// expired token (102) is not a failure: honest clients meet it.
func (g *guards) noteAuthResult(r *http.Request, clientID string, err error) {
	if err == nil || callevents.ErrorCode(err, 0) != callevents.CodeAuthInvalid {
		return
	}
	caller := g.callerKey(r)
	g.failedByAddress.take(caller)
	g.failedByClient.take(clientKey(clientID, caller))
}

// checkTokenRequest spends one token-endpoint request of the address and
// of the client id from that address.
func (g *guards) checkTokenRequest(r *http.Request, clientID string) error {
	caller := g.callerKey(r)
	if wait, ok := g.tokenByAddress.take(caller); !ok {
		return rateLimited(wait, "Too many token requests from this address; retry in "+seconds(wait)+".")
	}
	if wait, ok := g.tokenByClient.take(clientKey(clientID, caller)); !ok {
		return rateLimited(wait, "Too many token requests for this client from this address; retry in "+seconds(wait)+".")
	}
	return nil
}

// clientKey is the per-client limiters' key: the client id and the caller's
// address (see Limits for why not the id alone); "" (no limit) without an id.
func clientKey(clientID, caller string) string {
	if clientID == "" {
		return ""
	}
	return caller + " " + clientID
}

func seconds(d time.Duration) string {
	n := max(1, int(math.Ceil(d.Seconds())))
	if n == 1 {
		return "1 second"
	}
	return strconv.Itoa(n) + " seconds"
}
