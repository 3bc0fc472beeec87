package ami_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/service/ami"
)

// transcript is a recorded AMI stream split at the login response.
type transcript struct {
	banner string   // "Asterisk Call Manager/11.0.0\r\n"
	login  string   // the Login response block, with its empty line
	events []string // event blocks, each with its empty line
}

func loadTranscript(t *testing.T, name string) transcript {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\r\n")
	if i < 0 || !bytes.Contains(b, []byte("\r\n\r\n")) {
		t.Fatalf("%s: not a CRLF AMI transcript (check .gitattributes)", name)
	}
	tr := transcript{banner: s[:i+2]}
	blocks := strings.SplitAfter(s[i+2:], "\r\n\r\n")
	tr.login = blocks[0]
	for _, b := range blocks[1:] {
		if strings.TrimSpace(b) != "" {
			tr.events = append(tr.events, b)
		}
	}
	if !strings.HasPrefix(tr.login, "Response: Success") {
		t.Fatalf("%s: first block is not the login response: %q", name, tr.login)
	}
	return tr
}

// indexOf returns the index of the first event block containing all of subs.
func (tr transcript) indexOf(t *testing.T, subs ...string) int {
	t.Helper()
next:
	for i, e := range tr.events {
		for _, s := range subs {
			if !strings.Contains(e, s) {
				continue next
			}
		}
		return i
	}
	t.Fatalf("no event with %q", subs)
	return -1
}

// sentinel is a CHANUNAVAIL call from endpoint 299 (mapped by every test's
// map): when its activity arrives, every block before it was processed.
func sentinel(id string) string {
	return "Event: Hangup\r\nPrivilege: call,all\r\nChannel: PJSIP/299-000000ff\r\nCallerIDNum: 299\r\n" +
		"CallerIDName: Sentinel\r\nExten: 298\r\nUniqueid: " + id + "\r\nLinkedid: " + id + "\r\nCause: 3\r\n\r\n"
}

// fakeAMI is an AMI TCP server on 127.0.0.1; the n-th connection (from 0)
// is served by handlers[min(n, len-1)].
type fakeAMI struct {
	t        *testing.T
	ln       net.Listener
	mu       sync.Mutex
	conns    int
	logins   []map[string]string
	handlers []func(c *fakeConn)
	done     chan struct{}
	wg       sync.WaitGroup
}

// fakeConn is one accepted connection.
type fakeConn struct {
	net.Conn
	br  *bufio.Reader
	srv *fakeAMI
	// login is the client's Login action.
	login map[string]string
}

func newFakeAMI(t *testing.T, handlers ...func(c *fakeConn)) *fakeAMI {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAMI{t: t, ln: ln, handlers: handlers, done: make(chan struct{})}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(func() {
		close(f.done)
		ln.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeAMI) addr() string { return f.ln.Addr().String() }

func (f *fakeAMI) accepted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

// loginActions returns the Login actions received so far.
func (f *fakeAMI) loginActions() []map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]string(nil), f.logins...)
}

func (f *fakeAMI) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		h := f.handlers[min(f.conns, len(f.handlers)-1)]
		f.conns++
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			go func() { <-f.done; c.Close() }()
			h(&fakeConn{Conn: c, br: bufio.NewReader(c), srv: f})
		}()
	}
}

// readLogin reads the client's Login action block.
func (c *fakeConn) readLogin() error {
	c.login = map[string]string{}
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if len(c.login) > 0 {
				break
			}
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		c.login[strings.ToLower(k)] = strings.TrimSpace(v)
	}
	c.srv.mu.Lock()
	c.srv.logins = append(c.srv.logins, c.login)
	c.srv.mu.Unlock()
	if !strings.EqualFold(c.login["action"], "login") {
		return errors.New("first action is not Login")
	}
	return nil
}

// respond writes a response block, adding the client's ActionID when it sent one.
func (c *fakeConn) respond(block string) {
	if id := c.login["actionid"]; id != "" {
		first, rest, _ := strings.Cut(block, "\r\n")
		block = first + "\r\nActionID: " + id + "\r\n" + rest
	}
	c.write(block)
}

func (c *fakeConn) write(s string) { _, _ = c.Write([]byte(s)) }

// holdOpen keeps the connection open until the client or the test closes it.
func (c *fakeConn) holdOpen() { _, _ = c.br.WriteTo(discard{}) }

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// replay serves tr like Asterisk: banner, Login, response, then blocks.
func replay(tr transcript, blocks []string, then func(c *fakeConn)) func(c *fakeConn) {
	return func(c *fakeConn) {
		c.write(tr.banner)
		if err := c.readLogin(); err != nil {
			return
		}
		c.respond(tr.login)
		for _, b := range blocks {
			c.write(b)
		}
		if then != nil {
			then(c)
		}
	}
}

// sink collects submitted activities.
type sink struct {
	ch chan callevents.CallActivity
}

func newSink() *sink { return &sink{ch: make(chan callevents.CallActivity, 1000)} }

func (s *sink) submit(_ context.Context, as []callevents.CallActivity) (callevents.ActivityResult, error) {
	for _, a := range as {
		if err := a.Validate(); err != nil {
			return callevents.ActivityResult{}, err
		}
		s.ch <- a
	}
	return callevents.ActivityResult{Queued: 2 * len(as), Accepted: len(as)}, nil
}

// until returns the activities submitted before the one with CallID stop.
func (s *sink) until(t *testing.T, stop string) []callevents.CallActivity {
	t.Helper()
	var got []callevents.CallActivity
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case a := <-s.ch:
			if a.CallID == stop {
				return got
			}
			got = append(got, a)
		case <-timeout.C:
			t.Fatalf("no activity for %s within 10s; got %d before: %+v", stop, len(got), got)
		}
	}
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) count(s string) int { return strings.Count(l.String(), s) }

// run starts a Source for cfg (Addr, Submit, Logger, backoffs filled in
// when unset) and stops it at the end of the test, checking Run returns nil.
func run(t *testing.T, cfg ami.Config) *logBuffer {
	t.Helper()
	logs := &logBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.Username == "" {
		cfg.Username, cfg.Secret = "callevents", "callevents"
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	}
	s, err := ami.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of cancel")
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	return logs
}

func mustMap(t *testing.T, org, explicit string) ami.ExtensionMap {
	t.Helper()
	m, err := ami.ParseExtensionMap(org, explicit)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
