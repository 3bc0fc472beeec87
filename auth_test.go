package callevents_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/testdb"
)

func mustCreateClient(t *testing.T, db *store.DB, scope callevents.Scope) (callevents.Client, string) {
	t.Helper()
	c, secret, err := callevents.NewClient("test", scope, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c, secret
}

// Ensure tokens and client secrets authenticate, wrong ones get 100, and an
// expired token gets 102, also while it is cached.
func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	db := testdb.MustOpen(t, store.DialectSQLite)
	clock := dispatchertest.NewClockAt(time.Now())
	auth := &callevents.Authenticator{Store: db, TokenTTL: 10 * time.Second, TokenCacheTTL: time.Minute, Now: clock.Now}
	c, secret := mustCreateClient(t, db, "org:0003")

	token, ttl, err := auth.IssueToken(ctx, c.ID, secret)
	if err != nil || ttl != 10*time.Second {
		t.Fatalf("IssueToken: %v %v", ttl, err)
	}
	for name, cred := range map[string]callevents.Credentials{"token": {AccessToken: token}, "secret": {Username: c.ID, Password: secret}} {
		p, err := auth.Authenticate(ctx, cred)
		if err != nil || p.ClientID != c.ID || p.Scope != "org:0003" {
			t.Errorf("%s: %+v %v", name, p, err)
		}
	}
	for name, cred := range map[string]callevents.Credentials{
		"none": {}, "unknown-token": {AccessToken: "x"}, "wrong-secret": {Username: c.ID, Password: "x"},
		"unknown-client": {Username: "x", Password: secret},
	} {
		if _, err := auth.Authenticate(ctx, cred); callevents.ErrorCode(err, 0) != callevents.CodeAuthInvalid {
			t.Errorf("%s: %v, want code 100", name, err)
		}
	}
	if _, _, err := auth.IssueToken(ctx, c.ID, "wrong"); callevents.ErrorCode(err, 0) != callevents.CodeAuthInvalid {
		t.Errorf("IssueToken with a wrong secret: %v", err)
	}
	clock.Advance(11 * time.Second) // past the token, within the cache
	if _, err := auth.Authenticate(ctx, callevents.Credentials{AccessToken: token}); callevents.ErrorCode(err, 0) != callevents.CodeTokenExpired {
		t.Errorf("expired cached token: %v, want code 102", err)
	}
}

// Ensure a removed client's token stops working once the cache TTL has
// passed, and at once with the cache off.
func TestTokenCacheBoundsRevocation(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		cacheTTL time.Duration
		wait     time.Duration // after removal: still accepted before this
	}{
		{"cached", 5 * time.Second, 5 * time.Second},
		{"off", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := testdb.MustOpen(t, store.DialectSQLite)
			clock := dispatchertest.NewClockAt(time.Now())
			auth := &callevents.Authenticator{Store: db, TokenCacheTTL: tc.cacheTTL, Now: clock.Now}
			c, secret := mustCreateClient(t, db, "admin")
			token, _, err := auth.IssueToken(ctx, c.ID, secret)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := auth.Authenticate(ctx, callevents.Credentials{AccessToken: token}); err != nil {
				t.Fatal(err)
			}
			if err := db.DeleteClient(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
			if tc.wait > 0 {
				clock.Advance(tc.wait - time.Second)
				if _, err := auth.Authenticate(ctx, callevents.Credentials{AccessToken: token}); err != nil {
					t.Errorf("within the cache TTL: %v", err)
				}
				clock.Advance(time.Second)
			}
			if _, err := auth.Authenticate(ctx, callevents.Credentials{AccessToken: token}); callevents.ErrorCode(err, 0) != callevents.CodeAuthInvalid {
				t.Errorf("token of a removed client: %v, want code 100", err)
			}
		})
	}
}

// Ensure an access token is 32 random bytes (base64url) and that only its
// hash is stored: the token's text is nowhere in the database files.
func TestAccessTokensAreRandomAndStoredHashed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "auth.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	auth := &callevents.Authenticator{Store: db}
	c, secret := mustCreateClient(t, db, callevents.ScopeAdmin)
	seen := map[string]bool{}
	for range 3 {
		token, _, err := auth.IssueToken(ctx, c.ID, secret)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(raw) != callevents.AccessTokenBytes {
			t.Fatalf("token %q: %d bytes, %v; want %d random bytes in base64url", token, len(raw), err, callevents.AccessTokenBytes)
		}
		if seen[token] {
			t.Fatalf("token %q issued twice", token)
		}
		seen[token] = true
		if _, _, err := db.FindAccessToken(ctx, callevents.HashAccessToken(token)); err != nil {
			t.Errorf("the token's hash is not stored: %v", err)
		}
		if _, _, err := db.FindAccessToken(ctx, token); err == nil {
			t.Errorf("the token itself is a key of the store")
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "auth.db*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for token := range seen {
			if bytes.Contains(data, []byte(token)) {
				t.Errorf("%s holds the access token %q in clear", filepath.Base(f), token)
			}
		}
	}
}

// Ensure a check against an unknown client id costs as much as one against
// a known id with a wrong secret, so timing does not tell which ids exist
// (and secrets are only ever compared by bcrypt, in constant time).
func TestClientSecretCheckTimingHidesUnknownIDs(t *testing.T) {
	ctx := context.Background()
	db := testdb.MustOpen(t, store.DialectSQLite)
	auth := &callevents.Authenticator{Store: db}
	c, _ := mustCreateClient(t, db, callevents.ScopeAdmin)
	timeOf := func(id string) time.Duration {
		best := time.Duration(1 << 62)
		for range 3 {
			start := time.Now()
			if _, err := auth.CheckClientSecret(ctx, id, "wrong-secret"); callevents.ErrorCode(err, 0) != callevents.CodeAuthInvalid {
				t.Fatalf("CheckClientSecret(%q): %v, want 100", id, err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	known, unknown := timeOf(c.ID), timeOf("no-such-client")
	// A bcrypt check takes tens of milliseconds; answering an unknown id
	// without one would take microseconds, thousands of times less.
	if unknown < known/4 {
		t.Errorf("unknown id answered in %v, a wrong secret in %v: the difference reveals which ids exist", unknown, known)
	}
}
