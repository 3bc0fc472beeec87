package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// Ensure serve's logs are JSON lines whose delivery records carry the
// delivery id, and that neither a token in a Call Event URL's query (URLs
// with a password are refused at Add) nor an attribute named like a secret
// ever reaches them.
func TestLogsAreJSONAndRedacted(t *testing.T) {
	db, token := openTestStore(t, "sqlite:"+filepath.Join(t.TempDir(), "logs.db"))
	var cfg serveConfig
	if err := cfg.flagSet(io.Discard).Parse([]string{"--log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log, err := newLogger(cfg.Log, logs)
	if err != nil {
		t.Fatal(err)
	}
	api := startTestApp(t, db, token, log, "--allow-targets", "127.0.0.0/8")

	// A receiver that is down: a port nothing listens on any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	api.addCallEvent("0003*211", int(callevents.DialIn), "http://"+down+"/hook?token=tok-9f8e7d&call=1", "")
	if n := api.postActivities([]fireActivity{{CallID: "log1", Phase: "dial", CallerExtension: "0003*210", CalledExtension: "0003*211"}}); n != 1 {
		t.Fatalf("intake queued %d, want 1", n)
	}
	// Whatever a component logs by mistake is redacted on the way out.
	log.Info("callevents: a component logging secrets by mistake", "client_secret", "cs-4b3a2c1d", "password", "hunter2",
		"target", "http://"+down+"/hook?token=tok-9f8e7d", "error", fmt.Errorf(`Post "https://bob:hunter2@crm.example/x?api_key=tok-9f8e7d": EOF`))

	var failed map[string]any
	dispatchertest.WaitWithin(t, 20*time.Second, "the failed attempt's log record", func() bool {
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("a log line is not JSON: %v\n%s", err, line)
			}
			if rec["msg"] == "dispatcher: attempt failed; retrying" {
				failed = rec
				return true
			}
		}
		return false
	})
	if id, _ := failed["delivery_id"].(string); !strings.HasPrefix(id, "dlv_") {
		t.Errorf("the attempt's record has no delivery id: %v", failed)
	}
	if msg, _ := failed["error"].(string); !strings.Contains(msg, down) {
		t.Errorf("the attempt's error does not say what failed: %q", msg)
	}
	if !strings.Contains(logs.String(), `"target":"http://`+down+`/hook?token=`+callevents.Redacted+`"`) {
		t.Errorf("a URL attribute lost more than its token:\n%s", logs)
	}
	for _, leaked := range []string{"hunter2", "tok-9f8e7d", "cs-4b3a2c1d", token} {
		if strings.Contains(logs.String(), leaked) {
			t.Errorf("the logs hold the secret %q:\n%s", leaked, logs)
		}
	}
}
