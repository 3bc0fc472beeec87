package callevents

import "fmt"

// SecretChecks is how many bcrypt comparisons a has run.
func SecretChecks(a *Authenticator) int64 { return a.secretChecks.Load() }

// SetSecretCacheMax lowers a's bound on remembered secrets.
func SetSecretCacheMax(a *Authenticator, n int) { a.secretMax = n }

// SecretCacheKeys returns the keys a remembers secrets under, as stored.
func SecretCacheKeys(a *Authenticator) [][]byte {
	a.secretMu.Lock()
	defer a.secretMu.Unlock()
	var keys [][]byte
	for k := range a.secrets {
		keys = append(keys, k[:])
	}
	return keys
}

// SecretCacheDump returns what a remembers, each key and entry formatted
// with %x and %+v, so a test can look for a secret in it.
func SecretCacheDump(a *Authenticator) []string {
	a.secretMu.Lock()
	defer a.secretMu.Unlock()
	var out []string
	if a.secretOrder == nil {
		return nil
	}
	for el := a.secretOrder.Front(); el != nil; el = el.Next() {
		e := el.Value.(*cachedSecret)
		out = append(out, fmt.Sprintf("%x %+v", e.key, *e))
	}
	return out
}

// NewDeliveryIDAt is NewDeliveryID for a given time.
var NewDeliveryIDAt = newDeliveryID
