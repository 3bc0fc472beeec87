package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/store"
)

// openTestStore opens and migrates dsn, creates an admin client and
// returns the store and a token of that client.
func openTestStore(tb testing.TB, dsn string) (*store.DB, string) {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	c, secret, err := callevents.NewClient("test admin", callevents.ScopeAdmin, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.CreateClient(ctx, c); err != nil {
		tb.Fatal(err)
	}
	token, _, err := (&callevents.Authenticator{Store: db}).IssueToken(ctx, c.ID, secret)
	if err != nil {
		tb.Fatal(err)
	}
	return db, token
}

// startTestApp wires serve's app in this process with serve's flags args
// and log, starts its dispatcher (stopped gracefully at cleanup) and
// serves its handler; it returns the app and an API client for it.
func startTestApp(t *testing.T, db *store.DB, token string, log *slog.Logger, args ...string) (*app, *apiClient) {
	t.Helper()
	var cfg config
	if err := newFlagSet("serve", &cfg, cmdServe, io.Discard).Parse(args); err != nil {
		t.Fatal(err)
	}
	a, err := newApp(db, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.dispatcher.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.dispatcher.Stop(stopCtx)
	})
	srv := httptest.NewServer(a.handler)
	t.Cleanup(srv.Close)
	return a, &apiClient{t: t, base: srv.URL, token: token}
}
