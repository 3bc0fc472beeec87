package store_test

import (
	"context"
	"fmt"
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

// Ensure DeliveryOutcomes counts delivered and failed deliveries per
// minute of their finish, on both backends, from since on.
func TestDeliveryOutcomes(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := testdb.MustOpen(t, b.dialect)
			c := callevents.NewCallEvent("0003*210", callevents.DialOut)
			c.ID, c.URL = callevents.NewCallEventID(), "http://127.0.0.1:9/in"
			if err := db.CreateCallEvent(ctx, c, 100); err != nil {
				t.Fatal(err)
			}
			var acts []callevents.CallActivity
			for i := 0; i < 5; i++ {
				acts = append(acts, callevents.CallActivity{CallID: fmt.Sprintf("c%d", i), Phase: callevents.PhaseDial, CallerExtension: "0003*210"})
			}
			now := time.Now().UTC()
			if _, err := db.AcceptActivity(ctx, acts, now, nil); err != nil {
				t.Fatal(err)
			}
			claimed, err := db.ClaimDue(ctx, callevents.Claim{Worker: "w", N: 10, Now: now, Lease: time.Minute})
			if err != nil || len(claimed) != 5 {
				t.Fatalf("claimed %d, %v", len(claimed), err)
			}
			m1 := now.Truncate(time.Minute).Add(-10 * time.Minute)
			finish := []struct {
				at   time.Time
				next callevents.DeliveryState
			}{
				{m1.Add(5 * time.Second), callevents.DeliveryDelivered},
				{m1.Add(50 * time.Second), callevents.DeliveryFailed},
				{m1.Add(61 * time.Second), callevents.DeliveryDelivered},
				{m1.Add(62 * time.Second), callevents.DeliveryDelivered},
				{m1.Add(-2 * time.Hour), callevents.DeliveryDelivered}, // before since
			}
			for i, f := range finish {
				o := callevents.AttemptOutcome{DeliveryID: claimed[i].ID, Next: f.next, Attempt: callevents.DeliveryAttempt{Attempt: 1, At: f.at, StatusCode: 200}}
				if err := db.RecordAttempts(ctx, "w", []callevents.AttemptOutcome{o}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := db.DeliveryOutcomes(ctx, now.Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			want := []callevents.OutcomeCount{{Minute: m1, Delivered: 1, Failed: 1}, {Minute: m1.Add(time.Minute), Delivered: 2}}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("DeliveryOutcomes = %v, want %v", got, want)
			}
		})
	}
}
