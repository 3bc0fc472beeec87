package callevents

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// secretCacheMax bounds how many verified client id and secret pairs one
// Authenticator remembers; past it the least recently verified is forgotten,
// which only costs that client one bcrypt check.
const secretCacheMax = 10000

// secretKey names a verified pair: HMAC-SHA256 under a key of this process,
// so the cache holds nothing from which the secret could be guessed offline
// (a plain hash of a secret would be a fast-hash oracle for it).
type secretKey [sha256.Size]byte

type cachedSecret struct {
	key        secretKey
	client     Client    // as read from the store at the last check
	secretHash string    // the stored bcrypt hash the secret was verified against
	until      time.Time // when to ask the store again
}

// secretCacheKey derives the key of clientID and secret. The id is length
// prefixed so no other id and secret pair gives the same input.
func (a *Authenticator) secretCacheKey(clientID, secret string) secretKey {
	a.serverKeyOnce.Do(func() {
		a.serverKey = make([]byte, 32)
		rand.Read(a.serverKey) // never fails (crypto/rand, Go ≥ 1.24)
	})
	m := hmac.New(sha256.New, a.serverKey)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(clientID)))
	m.Write(n[:])
	m.Write([]byte(clientID))
	m.Write([]byte(secret))
	var k secretKey
	m.Sum(k[:0])
	return k
}

// authenticateSecret is CheckClientSecret for requests: a pair verified in
// the last TokenCacheTTL is trusted without the store, as a token is. Past
// that, one store read decides: the client must still exist with the same
// stored hash (so the same secret still matches, without bcrypt), and its
// scope is read afresh. Anything else, and every miss, runs the full check,
// and failures are never remembered, so a wrong secret costs a bcrypt
// check whatever is cached.
func (a *Authenticator) authenticateSecret(ctx context.Context, clientID, secret string) (Client, error) {
	ttl := a.cacheTTL()
	if ttl < 0 || clientID == "" || secret == "" {
		return a.CheckClientSecret(ctx, clientID, secret)
	}
	key := a.secretCacheKey(clientID, secret)
	now := a.now()
	if e, ok := a.cachedSecretEntry(key); ok && e.client.ID == clientID {
		if now.Before(e.until) {
			return e.client, nil
		}
		c, err := a.Store.FindClientByID(ctx, clientID)
		if err != nil && !errors.Is(err, ErrClientNotFound) {
			return Client{}, err
		}
		if err == nil && c.SecretHash == e.secretHash {
			a.rememberSecret(key, c, now.Add(ttl))
			return c, nil
		}
		// Removed, or its secret changed: forget it and check in full.
		a.forgetSecret(key)
	}
	c, err := a.CheckClientSecret(ctx, clientID, secret)
	if err != nil {
		return Client{}, err
	}
	a.rememberSecret(key, c, now.Add(ttl))
	return c, nil
}

func (a *Authenticator) cachedSecretEntry(key secretKey) (cachedSecret, bool) {
	a.secretMu.Lock()
	defer a.secretMu.Unlock()
	el, ok := a.secrets[key]
	if !ok {
		return cachedSecret{}, false
	}
	return *el.Value.(*cachedSecret), true
}

func (a *Authenticator) rememberSecret(key secretKey, c Client, until time.Time) {
	a.secretMu.Lock()
	defer a.secretMu.Unlock()
	if a.secrets == nil {
		a.secrets = make(map[secretKey]*list.Element)
		a.secretOrder = list.New()
	}
	e := &cachedSecret{key: key, client: c, secretHash: c.SecretHash, until: until}
	if el, ok := a.secrets[key]; ok {
		el.Value = e
		a.secretOrder.MoveToBack(el)
		return
	}
	limit := a.secretMax
	if limit <= 0 {
		limit = secretCacheMax
	}
	for a.secretOrder.Len() >= limit {
		oldest := a.secretOrder.Front()
		delete(a.secrets, oldest.Value.(*cachedSecret).key)
		a.secretOrder.Remove(oldest)
	}
	a.secrets[key] = a.secretOrder.PushBack(e)
}

func (a *Authenticator) forgetSecret(key secretKey) {
	a.secretMu.Lock()
	defer a.secretMu.Unlock()
	if el, ok := a.secrets[key]; ok {
		delete(a.secrets, key)
		a.secretOrder.Remove(el)
	}
}

// compareSecret is bcrypt's check, counted so tests can tell whether a
// request paid for one.
func (a *Authenticator) compareSecret(hash []byte, secret string) error {
	a.secretChecks.Add(1)
	return bcrypt.CompareHashAndPassword(hash, []byte(secret))
}
