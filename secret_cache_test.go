package callevents_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/testdb"
)

func authWithSecret(t *testing.T, auth *callevents.Authenticator, id, secret string) (callevents.Principal, error) {
	t.Helper()
	return auth.Authenticate(context.Background(), callevents.Credentials{Username: id, Password: secret})
}

// Ensure a right secret is checked by bcrypt once: later requests within
// the cache TTL, and past it while the client is unchanged, need none.
func TestSecretCacheSkipsBcrypt(t *testing.T) {
	db := testdb.MustOpen(t, store.DialectSQLite)
	clock := dispatchertest.NewClockAt(time.Now())
	auth := &callevents.Authenticator{Store: db, Now: clock.Now}
	c, secret := mustCreateClient(t, db, "org:0003")
	for i := range 3 {
		p, err := authWithSecret(t, auth, c.ID, secret)
		if err != nil || p.ClientID != c.ID || p.Scope != "org:0003" {
			t.Fatalf("request %d: %+v %v", i, p, err)
		}
		clock.Advance(3 * time.Second) // the third is past the TTL: one store read
	}
	if n := callevents.SecretChecks(auth); n != 1 {
		t.Errorf("%d bcrypt checks for 3 requests with a right secret, want 1", n)
	}
}

// Ensure a removed client's secret stops working once the cache TTL has
// passed, as its tokens do, and at once with the cache off.
func TestSecretCacheBoundsRevocation(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		cacheTTL time.Duration
		wait     time.Duration // after removal: still accepted before this
	}{
		{"cached", 5 * time.Second, 5 * time.Second},
		{"default", 0, callevents.TokenCacheTTLDefault},
		{"off", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := testdb.MustOpen(t, store.DialectSQLite)
			clock := dispatchertest.NewClockAt(time.Now())
			auth := &callevents.Authenticator{Store: db, TokenCacheTTL: tc.cacheTTL, Now: clock.Now}
			c, secret := mustCreateClient(t, db, "admin")
			if _, err := authWithSecret(t, auth, c.ID, secret); err != nil {
				t.Fatal(err)
			}
			if err := db.DeleteClient(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
			if tc.wait > 0 {
				clock.Advance(tc.wait - time.Second)
				if _, err := authWithSecret(t, auth, c.ID, secret); err != nil {
					t.Errorf("within the cache TTL: %v", err)
				}
				clock.Advance(time.Second)
			}
			for i := range 2 { // the second after the entry was dropped
				if _, err := authWithSecret(t, auth, c.ID, secret); callevents.ErrorCode(err, 0) != callevents.CodeAuthInvalid {
					t.Errorf("secret of a removed client (%d): %v, want code 100", i, err)
				}
			}
		})
	}
}

// Ensure a client that changed in the store is not served from the cache
// past the TTL: a new secret hash refuses the old secret (and takes the new
// one), a new scope is seen.
func TestSecretCacheSeesChangedClient(t *testing.T) {
	ctx := context.Background()
	db := testdb.MustOpen(t, store.DialectSQLite)
	clock := dispatchertest.NewClockAt(time.Now())
	auth := &callevents.Authenticator{Store: db, Now: clock.Now}
	c, secret := mustCreateClient(t, db, "org:0003")
	if _, err := authWithSecret(t, auth, c.ID, secret); err != nil {
		t.Fatal(err)
	}
	// Same id and secret hash, another scope: no bcrypt needed to see it.
	if err := db.DeleteClient(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	rescoped := c
	rescoped.Scope = "org:0004"
	if err := db.CreateClient(ctx, rescoped); err != nil {
		t.Fatal(err)
	}
	clock.Advance(callevents.TokenCacheTTLDefault)
	checks := callevents.SecretChecks(auth)
	if p, err := authWithSecret(t, auth, c.ID, secret); err != nil || p.Scope != "org:0004" {
		t.Errorf("after a scope change: %+v %v, want scope org:0004", p, err)
	}
	if n := callevents.SecretChecks(auth) - checks; n != 0 {
		t.Errorf("an unchanged secret hash cost %d bcrypt checks, want 0", n)
	}
	// Same id, a new secret.
	if err := db.DeleteClient(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	fresh, newSecret, err := callevents.NewClient("test", "org:0003", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fresh.ID = c.ID
	if err := db.CreateClient(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	clock.Advance(callevents.TokenCacheTTLDefault)
	if _, err := authWithSecret(t, auth, c.ID, secret); callevents.ErrorCode(err, 0) != callevents.CodeAuthInvalid {
		t.Errorf("the old secret after a new one was set: %v, want code 100", err)
	}
	if _, err := authWithSecret(t, auth, c.ID, newSecret); err != nil {
		t.Errorf("the new secret: %v", err)
	}
}

// Ensure the cache holds no secret: not in clear, not as a plain hash, and
// its keys depend on a key of the Authenticator (two differ for one pair).
func TestSecretCacheKeyHidesSecret(t *testing.T) {
	db := testdb.MustOpen(t, store.DialectSQLite)
	c, secret := mustCreateClient(t, db, "admin")
	one, two := &callevents.Authenticator{Store: db}, &callevents.Authenticator{Store: db}
	for _, a := range []*callevents.Authenticator{one, two} {
		if _, err := authWithSecret(t, a, c.ID, secret); err != nil {
			t.Fatal(err)
		}
	}
	k1, k2 := callevents.SecretCacheKeys(one), callevents.SecretCacheKeys(two)
	if len(k1) != 1 || len(k2) != 1 {
		t.Fatalf("%d and %d keys, want one each", len(k1), len(k2))
	}
	if bytes.Equal(k1[0], k2[0]) {
		t.Error("two Authenticators derive the same key: it does not depend on a server secret")
	}
	plain := [][]byte{[]byte(secret)}
	for _, in := range []string{secret, c.ID + secret, c.ID + "\x00" + secret, c.ID + ":" + secret} {
		sum := sha256.Sum256([]byte(in))
		plain = append(plain, sum[:], []byte(hex.EncodeToString(sum[:])))
	}
	dump := strings.Join(callevents.SecretCacheDump(one), "\n")
	for _, p := range plain {
		if bytes.Contains(k1[0], p) || bytes.Equal(k1[0], p) || strings.Contains(dump, string(p)) {
			t.Errorf("the cache holds the secret or a plain hash of it: %q", dump)
		}
	}
}

// Ensure the cache keeps at most its bound of pairs, forgetting the least
// recently verified first.
func TestSecretCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	db := testdb.MustOpen(t, store.DialectSQLite)
	auth := &callevents.Authenticator{Store: db}
	callevents.SetSecretCacheMax(auth, 3)
	var ids []string
	for i := range 5 {
		// A cheap hash: this test is about the bound, not bcrypt's cost.
		hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		c := callevents.Client{ID: "client" + string(rune('a'+i)), Name: "test", Scope: "admin", SecretHash: string(hash), Created: time.Now()}
		if err := db.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
		if _, err := authWithSecret(t, auth, c.ID, "secret"); err != nil {
			t.Fatal(err)
		}
		if n := len(callevents.SecretCacheKeys(auth)); n > 3 {
			t.Fatalf("%d entries after %d clients, bound 3", n, i+1)
		}
	}
	checks := callevents.SecretChecks(auth)
	authWithSecret(t, auth, ids[4], "secret") // the newest is remembered
	if n := callevents.SecretChecks(auth) - checks; n != 0 {
		t.Errorf("the newest client cost %d bcrypt checks, want 0", n)
	}
	authWithSecret(t, auth, ids[0], "secret") // the oldest was forgotten
	if n := callevents.SecretChecks(auth) - checks; n != 1 {
		t.Errorf("the oldest client cost %d bcrypt checks, want 1", n)
	}
}

// Ensure a wrong secret for a client whose right secret is cached is still
// refused after a full bcrypt check, each time (failures are not cached),
// so timing does not tell a cached client from another.
func TestWrongSecretForCachedClientCostsBcrypt(t *testing.T) {
	db := testdb.MustOpen(t, store.DialectSQLite)
	auth := &callevents.Authenticator{Store: db}
	c, secret := mustCreateClient(t, db, callevents.ScopeAdmin)
	if _, err := authWithSecret(t, auth, c.ID, secret); err != nil {
		t.Fatal(err)
	}
	best := func(f func()) time.Duration {
		d := time.Duration(1 << 62)
		for range 3 {
			start := time.Now()
			f()
			d = min(d, time.Since(start))
		}
		return d
	}
	cost := best(func() { bcrypt.CompareHashAndPassword([]byte(c.SecretHash), []byte("wrong-secret")) })
	checks := callevents.SecretChecks(auth)
	wrong := best(func() {
		if _, err := authWithSecret(t, auth, c.ID, "wrong-secret"); callevents.ErrorCode(err, 0) != callevents.CodeAuthInvalid {
			t.Fatalf("wrong secret for a cached client: %v, want code 100", err)
		}
	})
	if n := callevents.SecretChecks(auth) - checks; n != 3 {
		t.Errorf("3 wrong secrets ran %d bcrypt checks, want 3", n)
	}
	// A cache hit takes microseconds, a bcrypt check tens of milliseconds.
	if wrong < cost/2 {
		t.Errorf("a wrong secret for a cached client answered in %v, a bcrypt check takes %v", wrong, cost)
	}
	if _, err := authWithSecret(t, auth, c.ID, secret); err != nil {
		t.Errorf("the right secret after wrong ones: %v", err)
	}
}
