package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callevents/callevents/dispatcher/dispatchertest"
	"github.com/callevents/callevents/store/testdb"
)

// TestMain fails the package when a goroutine outlives its tests: every
// serve, dispatch or listen a test runs in this process must have
// returned, and every receiver and store it opened must be closed, by the
// time it ends (but for gorm's statement cache,
// testdb.IgnoreStoreGoroutines).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testdb.IgnoreStoreGoroutines()) }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listeningAddr = regexp.MustCompile(`"msg":"callevents: listening","addr":"([^"]+)"`)

// Ensure serve starts on an empty database, prints the bootstrap admin once,
// answers /healthz and /readyz, logs JSON by default, and stops gracefully
// on cancellation; a
// second start on the same database prints no new admin.
func TestServeLifecycle(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "serve.db")
	start := func() (string, *syncBuffer, func() int) {
		ctx, cancel := context.WithCancel(context.Background())
		stderr := &syncBuffer{}
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--db", db}, io.Discard, stderr) }()
		var addr string
		dispatchertest.WaitWithin(t, 20*time.Second, "the listening line", func() bool {
			if m := listeningAddr.FindStringSubmatch(stderr.String()); m != nil {
				addr = m[1]
				return true
			}
			return false
		})
		return addr, stderr, func() int {
			cancel()
			select {
			case code := <-done:
				return code
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not stop within 20 s of cancellation")
				return -1
			}
		}
	}

	addr, stderr, stop := start()
	admin := regexp.MustCompile(`\{"clientId":"[A-Za-z0-9]+","clientSecret":"[A-Za-z0-9]+","scope":"admin"`).FindString(stderr.String())
	if admin == "" {
		t.Fatalf("no bootstrap admin printed:\n%s", stderr)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: HTTP %d", path, resp.StatusCode)
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr.String(), "callevents: stopped") {
		t.Errorf("no orderly stop logged:\n%s", stderr)
	}

	_, stderr, stop = start()
	if strings.Contains(stderr.String(), "clientSecret") {
		t.Errorf("a second start printed another admin:\n%s", stderr)
	}
	stop()
}

// Ensure CALLEVENTS_* variables configure a command and flags win over them.
func TestEnvironmentConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CALLEVENTS_DB", "sqlite:"+filepath.Join(dir, "env.db"))
	var out bytes.Buffer
	if code := run(context.Background(), []string{"migrate"}, &out, io.Discard); code != 0 {
		t.Fatalf("migrate exited %d", code)
	}
	if !strings.Contains(out.String(), `"dialect":"sqlite"`) {
		t.Errorf("migrate printed %s", out.String())
	}
	if _, err := filepath.Glob(filepath.Join(dir, "env.db")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CALLEVENTS_DB", "nonsense://x")
	out.Reset()
	if code := run(context.Background(), []string{"migrate", "--db", "sqlite:" + filepath.Join(dir, "flag.db")}, &out, io.Discard); code != 0 {
		t.Fatalf("the --db flag did not win over CALLEVENTS_DB: exit %d", code)
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"migrate"}, io.Discard, &stderr); code == 0 || !strings.Contains(stderr.String(), "callevents:") {
		t.Errorf("a bad CALLEVENTS_DB was accepted (exit %d): %s", code, stderr.String())
	}
}

// Ensure clients add/list/remove print JSON and work on the database.
func TestClientsCommand(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "clients.db")
	var out bytes.Buffer
	if code := run(context.Background(), []string{"clients", "add", "--db", db, "--name", "crm", "--scope", "org:0003"}, &out, io.Discard); code != 0 {
		t.Fatalf("clients add exited %d", code)
	}
	var added clientJSON
	if err := json.Unmarshal(out.Bytes(), &added); err != nil || added.ClientID == "" || len(added.ClientSecret) < 32 || added.Scope != "org:0003" {
		t.Fatalf("clients add printed %q (%v)", out.String(), err)
	}
	out.Reset()
	run(context.Background(), []string{"clients", "list", "--db", db}, &out, io.Discard)
	var listed []clientJSON
	if err := json.Unmarshal(out.Bytes(), &listed); err != nil || len(listed) != 1 || listed[0].ClientID != added.ClientID || listed[0].ClientSecret != "" {
		t.Fatalf("clients list printed %q (%v)", out.String(), err)
	}
	if code := run(context.Background(), []string{"clients", "add", "--db", db, "--name", "x", "--scope", "org:3"}, io.Discard, io.Discard); code == 0 {
		t.Error("a bad scope was accepted")
	}
	if code := run(context.Background(), []string{"clients", "remove", "--db", db, added.ClientID}, io.Discard, io.Discard); code != 0 {
		t.Errorf("clients remove exited %d", code)
	}
	if code := run(context.Background(), []string{"clients", "remove", "--db", db, added.ClientID}, io.Discard, io.Discard); code == 0 {
		t.Error("removing a removed client succeeded")
	}
	out.Reset()
	run(context.Background(), []string{"clients", "list", "--db", db}, &out, io.Discard)
	if strings.TrimSpace(out.String()) != "[]" {
		t.Errorf("after remove, list printed %q", out.String())
	}
}
