package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/service"
	"github.com/callevents/callevents/store"
)

// downStore is the real store whose writes fail with err, as a store's
// writes fail while its database is unavailable.
type downStore struct {
	*store.DB
	err error
}

func (s downStore) AcceptActivity(context.Context, []callevents.CallActivity, time.Time, callevents.Handoff) (callevents.ActivityResult, error) {
	return callevents.ActivityResult{}, s.err
}

func (s downStore) CreateCallEvent(context.Context, callevents.CallEvent, int) error { return s.err }

func (s downStore) DeleteExpiredAccessTokens(context.Context, time.Time) error { return s.err }

// unavailableBundle is setup with a server whose store writes fail with err
// (reads and tokens still work).
func unavailableBundle(t *testing.T, err error) *testBundle {
	t.Helper()
	b := setup(t, bundleOptions{noDeliveries: true})
	down := downStore{b.db, err}
	b.logs = &syncBuffer{}
	srv := service.New(service.Config{
		CallEvents: &callevents.CallEventService{Store: down},
		Auth:       b.auth,
		Activities: &callevents.ActivityService{Store: down},
		Logger:     slog.New(slog.NewTextHandler(b.logs, nil)),
	})
	mux := http.NewServeMux()
	srv.Register(mux)
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

// Ensure a store failure that is the database's (callevents.ErrUnavailable)
// is a 503 service_unavailable with Retry-After on the intake, not a 500:
// the PBX did nothing wrong and the same request will succeed later. The
// message reveals nothing of the cause, which is logged once with the
// request id.
func TestIntakeDatabaseUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name, cause, wantMessage string
		sentinel                 error
	}{
		{"connection", "dial tcp 127.0.0.1:3306: connect: connection refused", "The database is unavailable; retry later.", callevents.ErrUnavailable},
		{"full", "database or disk is full (13)", "The database is full or read-only and cannot store the request; retry later.", callevents.ErrNotWritable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := unavailableBundle(t, callevents.UpdateFailed(fmt.Errorf("%w: %s", tc.sentinel, tc.cause)))
			r := b.postEvents(t, b.bearer("pbx"), `{"callId":"c","phase":"dial","callerExtension":"0003*210"}`)
			if r.status != http.StatusServiceUnavailable || r.err.Code != "service_unavailable" || r.err.Field != nil {
				t.Fatalf("HTTP %d %s, want 503 service_unavailable", r.status, r.raw)
			}
			if r.err.Message != tc.wantMessage {
				t.Errorf("message %q, want %q", r.err.Message, tc.wantMessage)
			}
			if got := r.header.Get("Retry-After"); got != "5" {
				t.Errorf("Retry-After %q, want 5", got)
			}
			for _, leak := range []string{"tcp", "3306", "refused", "(13)"} {
				if strings.Contains(r.raw, leak) {
					t.Errorf("the answer leaks %q: %s", leak, r.raw)
				}
			}
			logs := b.logs.String()
			if strings.Count(logs, "service: database unavailable") != 1 || !strings.Contains(logs, "request_id="+r.err.RequestID) ||
				!strings.Contains(logs, tc.cause) || strings.Contains(logs, "service: internal error") {
				t.Errorf("want the failure logged once, with request id %s and its cause:\n%s", r.err.RequestID, logs)
			}
		})
	}
}

// Ensure SOAP keeps code 152 for an unavailable database (SPEC.md §4 has no
// code of its own for it) with a message saying to try again later.
func TestFaultDatabaseUnavailable(t *testing.T) {
	b := unavailableBundle(t, callevents.UpdateFailed(fmt.Errorf("%w: invalid connection", callevents.ErrUnavailable)))
	status, body := b.call(t, "admin", `<v1:AddPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>1</v1:type><v1:url>https://example.com/hook</v1:url></v1:AddPhoneCallEvent>`)
	f, ok := parseFault(t, body)
	if status != http.StatusInternalServerError || !ok {
		t.Fatalf("HTTP %d, want a 500 fault:\n%s", status, body)
	}
	if f.faultCode != "Server" || f.code != "152" || f.message != "The service is temporarily unavailable; try again later." || f.reason != f.message {
		t.Errorf("fault %+v, want Server 152 saying the service is temporarily unavailable", f)
	}
	if strings.Contains(body, "invalid connection") {
		t.Errorf("the fault leaks the cause:\n%s", body)
	}
	if logs := b.logs.String(); strings.Count(logs, "service: database unavailable") != 1 || !strings.Contains(logs, "invalid connection") {
		t.Errorf("want the failure logged once with its cause:\n%s", logs)
	}
}

// Ensure the token endpoint answers an unavailable database with 503
// temporarily_unavailable and Retry-After (RFC 6749's name for it), not a
// 500 server_error, and logs it once.
func TestTokenEndpointDatabaseUnavailable(t *testing.T) {
	b := setup(t, bundleOptions{noDeliveries: true})
	logs := &syncBuffer{}
	srv := service.New(service.Config{
		Auth:   &callevents.Authenticator{Store: downStore{b.db, callevents.UpdateFailed(fmt.Errorf("%w: connection refused", callevents.ErrUnavailable))}},
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	mux := http.NewServeMux()
	srv.Register(mux)
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	a := b.tokenRequest(t, http.DefaultClient, b.secret["admin"])
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, `"temporarily_unavailable"`) || a.retryAfter == "" || strings.Contains(a.body, "refused") {
		t.Errorf("HTTP %d Retry-After %q %s, want 503 temporarily_unavailable", a.status, a.retryAfter, a.body)
	}
	if n := strings.Count(logs.String(), "service: database unavailable"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs)
	}
}
