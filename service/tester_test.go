package service_test

import (
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/store"
)

// newTester returns the CallEventTester behind TestPhoneCallEvent: the real
// dispatcher (not started: a test is sent outside the queue), whose
// outbound policy admits loopback only, where the tests' receivers listen.
func newTester(t testing.TB, db *store.DB) callevents.CallEventTester {
	t.Helper()
	policy, err := dispatcher.ParseAllowTargets("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatcher.New(dispatcher.Config{Store: db, Policy: policy, Timeout: 5 * time.Second, UserAgent: "callevents/test"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
