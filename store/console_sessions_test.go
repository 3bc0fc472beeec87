package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/testdb"
)

// Ensure console sessions on both backends: a sign-in is resumed until its
// sliding expiry (each use moves it on), is 102 once expired, ends for
// every process at sign-out, and goes with its client.
func TestConsoleSessions(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := testdb.DSN(t, b.dialect)
			db := testdb.MustOpenDSN(t, dsn, store.Options{})
			c, secret, err := callevents.NewClient("console", callevents.ScopeAdmin, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := db.CreateClient(ctx, c); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			clock := func() time.Time { return now }
			sessions := &callevents.ConsoleSessions{Store: db, Auth: &callevents.Authenticator{Store: db}, TTL: 8 * time.Hour, Now: clock}
			// A second process on the same database.
			other := &callevents.ConsoleSessions{Store: testdb.MustOpenDSN(t, dsn, store.Options{}), Auth: &callevents.Authenticator{Store: db}, TTL: 8 * time.Hour, Now: clock}

			if _, _, err := sessions.SignIn(ctx, c.ID, "wrong"); callevents.ErrorCode(err, 0) != callevents.CodeAuthInvalid {
				t.Fatalf("wrong secret: %v, want 100", err)
			}
			id, p, err := sessions.SignIn(ctx, c.ID, secret)
			if err != nil || p.ClientID != c.ID || p.Scope != callevents.ScopeAdmin {
				t.Fatalf("SignIn: %+v, %v", p, err)
			}
			// Used every 7 h, it lasts past its first 8 h.
			for i := 0; i < 3; i++ {
				now = now.Add(7 * time.Hour)
				if _, err := other.Resume(ctx, id); err != nil {
					t.Fatalf("after %d h: %v", 7*(i+1), err)
				}
			}
			now = now.Add(8*time.Hour + time.Second)
			if _, err := sessions.Resume(ctx, id); callevents.ErrorCode(err, 0) != callevents.CodeTokenExpired {
				t.Fatalf("unused for 8 h: %v, want 102", err)
			}

			id, _, err = sessions.SignIn(ctx, c.ID, secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := sessions.SignOut(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Resume(ctx, id); callevents.ErrorCode(err, 0) != callevents.CodeAuthInvalid {
				t.Fatalf("signed out, the other process: %v, want 100", err)
			}

			id, _, err = sessions.SignIn(ctx, c.ID, secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.DeleteClient(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := sessions.Resume(ctx, id); callevents.ErrorCode(err, 0) != callevents.CodeAuthInvalid {
				t.Fatalf("client removed: %v, want 100", err)
			}
		})
	}
}
