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
	"github.com/callevents/callevents/store/testdb"
)

// openTestStore opens and migrates dsn, creates an admin client and
// returns the store and a token of that client.
func openTestStore(tb testing.TB, dsn string) (*store.DB, string) {
	tb.Helper()
	ctx := context.Background()
	db := testdb.MustOpenDSN(tb, dsn, store.Options{})
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

// startTestApp wires serve's dispatcher and API in this process with
// serve's flags args and log, starts the dispatcher (stopped gracefully at
// cleanup) and serves the API; it returns an API client for it.
func startTestApp(t *testing.T, db *store.DB, token string, log *slog.Logger, args ...string) *apiClient {
	t.Helper()
	var cfg serveConfig
	if err := cfg.flagSet(io.Discard).Parse(args); err != nil {
		t.Fatal(err)
	}
	m := newMetrics(db, log)
	policy, err := cfg.Outbound.policy()
	if err != nil {
		t.Fatal(err)
	}
	disp, err := newDispatcher(db, cfg.Delivery, policy, m, log)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAPI(db, cfg.API, policy, disp, m, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := disp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		disp.Stop(stopCtx)
	})
	srv := httptest.NewServer(a.handler)
	t.Cleanup(srv.Close)
	return &apiClient{t: t, base: srv.URL, token: token}
}
