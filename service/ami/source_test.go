package ami_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/service/ami"
)

// The lab (testdata/README.md): caller endpoint 210 "Alice Ng".
const (
	alice     = "0003*210"
	aliceNum  = "210"
	aliceName = "Alice Ng"
)

// act is an activity of the lab's caller; status only for hangup.
func act(callID string, phase callevents.CallPhase, called, number, status string) callevents.CallActivity {
	return callevents.CallActivity{
		CallID: callID, Phase: phase,
		CallerExtension: alice, CallerIDNum: aliceNum, CallerIDName: aliceName,
		CalledNumber: number, CalledExtension: called, Status: status,
	}
}

const (
	dial   = callevents.PhaseDial
	answer = callevents.PhaseAnswer
	hangup = callevents.PhaseHangup
)

func TestTranscripts(t *testing.T) {
	org := func(t *testing.T) ami.ExtensionMap { return mustMap(t, "0003", "") }
	withDID := func(a callevents.CallActivity) callevents.CallActivity { a.CalledDID = a.CalledNumber; return a }
	noCaller := func(a callevents.CallActivity) callevents.CallActivity { a.CallerExtension = ""; return a }
	tests := []struct {
		file string
		name string
		ext  func(t *testing.T) ami.ExtensionMap
		dids map[string]bool
		want []callevents.CallActivity
	}{
		{file: "answer.ami", ext: org, want: []callevents.CallActivity{
			act("1795875926.0", dial, "0003*211", "211", ""),
			act("1795875926.0", answer, "0003*211", "211", ""),
			act("1795875926.0", hangup, "0003*211", "211", "ANSWER"),
		}},
		{file: "busy.ami", ext: org, want: []callevents.CallActivity{
			act("1795875931.2", dial, "0003*212", "212", ""),
			act("1795875931.2", hangup, "0003*212", "212", "BUSY"),
		}},
		{file: "noanswer.ami", ext: org, want: []callevents.CallActivity{
			act("1795875934.4", dial, "0003*213", "213", ""),
			act("1795875934.4", hangup, "0003*213", "213", "NOANSWER"),
		}},
		{file: "cancel.ami", ext: org, want: []callevents.CallActivity{
			act("1795875941.6", dial, "0003*213", "213", ""),
			act("1795875941.6", hangup, "0003*213", "213", "CANCEL"),
		}},
		{file: "congestion.ami", ext: org, want: []callevents.CallActivity{
			act("1795875945.8", dial, "0003*214", "214", ""),
			act("1795875945.8", hangup, "0003*214", "214", "CONGESTION"),
		}},
		{file: "chanunavail.ami", ext: org, want: []callevents.CallActivity{
			act("1795875947.10", hangup, "0003*219", "219", "CHANUNAVAIL"),
		}},
		{file: "local.ami", ext: org, want: []callevents.CallActivity{
			act("1795875951.11", dial, "0003*211", "211", ""),
			act("1795875951.11", answer, "0003*211", "211", ""),
			act("1795875951.11", hangup, "0003*211", "211", "ANSWER"),
		}},
		{file: "ringgroup.ami", ext: org, want: []callevents.CallActivity{
			act("1795875956.13", dial, "0003*211", "215", ""),
			act("1795875956.13", dial, "0003*213", "215", ""),
			act("1795875956.13", answer, "0003*211", "215", ""),
			act("1795875956.13", hangup, "0003*213", "215", "CANCEL"),
			act("1795875956.13", hangup, "0003*211", "215", "ANSWER"),
		}},
		{file: "answer-dialplan.ami", ext: org, want: []callevents.CallActivity{
			act("1795875926.0", dial, "0003*211", "211", ""),
			act("1795875926.0", answer, "0003*211", "211", ""),
			act("1795875926.0", hangup, "0003*211", "211", "ANSWER"),
		}},
		{file: "chanunavail-dialplan.ami", ext: org, want: []callevents.CallActivity{
			act("1795875947.10", hangup, "0003*219", "219", "CHANUNAVAIL"),
		}},
		// Mapping variants.
		{file: "answer.ami", name: "did", ext: org, dids: map[string]bool{"211": true}, want: []callevents.CallActivity{
			withDID(act("1795875926.0", dial, "0003*211", "211", "")),
			withDID(act("1795875926.0", answer, "0003*211", "211", "")),
			withDID(act("1795875926.0", hangup, "0003*211", "211", "ANSWER")),
		}},
		{file: "chanunavail.ami", name: "explicit-caller-only", ext: func(t *testing.T) ami.ExtensionMap {
			return mustMap(t, "", "210=0003*210")
		}, want: []callevents.CallActivity{
			act("1795875947.10", hangup, "", "219", "CHANUNAVAIL"),
		}},
		{file: "busy.ami", name: "callee-only", ext: func(t *testing.T) ami.ExtensionMap {
			return mustMap(t, "", "212=0007*512")
		}, want: []callevents.CallActivity{
			noCaller(act("1795875931.2", dial, "0007*512", "212", "")),
			noCaller(act("1795875931.2", hangup, "0007*512", "212", "BUSY")),
		}},
		{file: "ringgroup.ami", name: "nothing-maps", ext: func(t *testing.T) ami.ExtensionMap {
			return ami.ExtensionMap{}
		}},
	}
	for _, tc := range tests {
		name := strings.TrimSuffix(tc.file, ".ami")
		if tc.name != "" {
			name += "/" + tc.name
		}
		for _, swap := range []bool{false, true} {
			name := name
			if swap {
				name += "/hangups-reversed"
			}
			t.Run(name, func(t *testing.T) {
				tr := loadTranscript(t, tc.file)
				blocks := append([]string{}, tr.events...)
				want := tc.want
				if swap {
					// Asterisk does not fix the order of the legs' Hangups: reverse them.
					var at []int
					for i, b := range blocks {
						if strings.HasPrefix(b, "Event: Hangup\r\n") {
							at = append(at, i)
						}
					}
					for i, j := 0, len(at)-1; i < j; i, j = i+1, j-1 {
						blocks[at[i]], blocks[at[j]] = blocks[at[j]], blocks[at[i]]
					}
					if tc.file == "ringgroup.ami" && len(want) == 5 {
						want = []callevents.CallActivity{want[0], want[1], want[2], want[4], want[3]}
					}
				}
				blocks = append(blocks, sentinel("sentinel.1"))
				srv := newFakeAMI(t, replay(tr, blocks, (*fakeConn).holdOpen))
				ext := tc.ext(t)
				if ext.Explicit == nil {
					ext.Explicit = map[string]string{}
				}
				ext.Explicit["299"] = "0009*299" // the sentinel caller
				sk := newSink()
				run(t, ami.Config{Addr: srv.addr(), Submit: sk.submit, Extensions: ext, DIDs: tc.dids})
				got := sk.until(t, "sentinel.1")
				checkActivities(t, got, want)
				if n := srv.accepted(); n != 1 {
					t.Errorf("%d connections, want 1", n)
				}
			})
		}
	}
}

func checkActivities(t *testing.T, got, want []callevents.CallActivity) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d activities, want %d", len(got), len(want))
	}
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Errorf("[%d] missing: %s", i, show(want[i]))
		case i >= len(want):
			t.Errorf("[%d] extra: %s", i, show(got[i]))
		case got[i] != want[i]:
			t.Errorf("[%d]\n got %s\nwant %s", i, show(got[i]), show(want[i]))
		}
	}
}

func show(a callevents.CallActivity) string {
	return fmt.Sprintf("{%s %s %s→%s num=%q did=%q status=%q cid=%q/%q api=%q time=%v}",
		a.CallID, a.Phase, a.CallerExtension, a.CalledExtension, a.CalledNumber, a.CalledDID, a.Status,
		a.CallerIDNum, a.CallerIDName, a.CallAPIID, a.Time)
}

// The connection drops right after DialBegin; the next attempt is refused;
// the third gets the rest of the call, starting with a repeat of the
// DialBegin. The call is reported once, complete.
func TestReconnectAfterDrop(t *testing.T) {
	srv := dropAfterDialBegin(t)
	var dials atomic.Int32
	dialer := &net.Dialer{}
	sk := newSink()
	logs := run(t, ami.Config{
		Addr: srv.addr(), Submit: sk.submit, Extensions: mustMap(t, "0003", "299=0009*299"),
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials.Add(1) == 2 {
				return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
			}
			return dialer.DialContext(ctx, network, addr)
		},
	})
	got := sk.until(t, "sentinel.1")
	checkActivities(t, got, []callevents.CallActivity{
		act("1795875926.0", dial, "0003*211", "211", ""),
		act("1795875926.0", answer, "0003*211", "211", ""),
		act("1795875926.0", hangup, "0003*211", "211", "ANSWER"),
	})
	if n := dials.Load(); n != 3 {
		t.Errorf("%d dial attempts, want 3 (drop, refused, ok)", n)
	}
	if n := logs.count("ami connection lost"); n != 1 {
		t.Errorf("%d 'connection lost' logs, want 1 per outage", n)
	}
	if n := logs.count("ami reconnected"); n != 1 {
		t.Errorf("%d 'reconnected' logs, want 1", n)
	}
}

// Asterisk restarts: the connection closes, the port refuses connections
// for a while, then a new Asterisk listens on the same address.
func TestReconnectAfterRestart(t *testing.T) {
	tr := loadTranscript(t, "busy.ami")
	loggedIn, restart := make(chan struct{}), make(chan struct{})
	first := newFakeAMI(t, replay(tr, nil, func(*fakeConn) {
		close(loggedIn)
		<-restart
	}))
	addr := first.addr()
	sk := newSink()
	refused := make(chan struct{})
	var once atomic.Bool
	logs := run(t, ami.Config{
		Addr: addr, Submit: sk.submit, Extensions: mustMap(t, "0003", "299=0009*299"),
		Dial: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, a)
			if err != nil && once.CompareAndSwap(false, true) {
				close(refused)
			}
			return c, err
		},
	})
	<-loggedIn
	first.ln.Close() // refuse from now on
	close(restart)   // and drop the connection
	<-refused
	var ln net.Listener
	for ln == nil { // the port is free once the old listener is closed
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil && !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
	}
	second := &fakeAMI{t: t, ln: ln, handlers: []func(*fakeConn){replay(tr, append(tr.events, sentinel("sentinel.2")), (*fakeConn).holdOpen)}, done: make(chan struct{})}
	second.wg.Add(1)
	go second.accept()
	t.Cleanup(func() { close(second.done); ln.Close(); second.wg.Wait() })
	got := sk.until(t, "sentinel.2")
	checkActivities(t, got, []callevents.CallActivity{
		act("1795875931.2", dial, "0003*212", "212", ""),
		act("1795875931.2", hangup, "0003*212", "212", "BUSY"),
	})
	if n := logs.count("ami connection lost"); n != 1 {
		t.Errorf("%d 'connection lost' logs, want 1", n)
	}
	if n := logs.count("ami reconnected"); n != 1 {
		t.Errorf("%d 'reconnected' logs, want 1", n)
	}
}

func TestGarbageSkipped(t *testing.T) {
	tr := loadTranscript(t, "busy.ami")
	at := tr.indexOf(t, "Event: DialBegin")
	garbage := []string{
		"this is not AMI\r\nneither: is\r\n\r\n",
		"Event: Hangup\r\n" + strings.Repeat("x", 40000) + "\r\n\r\n",                                     // a line past 16 KiB
		"Event: Hangup\r\n" + strings.Repeat("Variable: x=1\r\n", 600) + "\r\n",                           // past 512 fields
		"Event: Hangup\r\n" + strings.Repeat("Variable: "+strings.Repeat("y", 15000)+"\r\n", 20) + "\r\n", // past 256 KiB
		"Event: DialBegin\r\nChannel: PJSIP/210-00000099\r\n\r\n",                                         // no Linkedid
	}
	var blocks []string
	blocks = append(blocks, tr.events[:at]...)
	blocks = append(blocks, garbage...)
	blocks = append(blocks, tr.events[at:]...)
	blocks = append(blocks, sentinel("sentinel.1"))
	srv := newFakeAMI(t, replay(tr, blocks, (*fakeConn).holdOpen))
	sk := newSink()
	logs := run(t, ami.Config{Addr: srv.addr(), Submit: sk.submit, Extensions: mustMap(t, "0003", "299=0009*299")})
	got := sk.until(t, "sentinel.1")
	checkActivities(t, got, []callevents.CallActivity{
		act("1795875931.2", dial, "0003*212", "212", ""),
		act("1795875931.2", hangup, "0003*212", "212", "BUSY"),
	})
	if n := logs.count("ami malformed block skipped"); n != 4 {
		t.Errorf("%d malformed-block logs, want 4:\n%s", n, logs)
	}
	if srv.accepted() != 1 {
		t.Errorf("garbage made the source reconnect")
	}
}

func TestLoginFailureRetried(t *testing.T) {
	tr := loadTranscript(t, "busy.ami")
	refuse := func(c *fakeConn) {
		c.write(tr.banner)
		if c.readLogin() == nil {
			c.respond("Response: Error\r\nMessage: Authentication failed\r\n\r\n")
		}
		c.holdOpen() // Asterisk keeps the socket; the client must give up on it
	}
	srv := newFakeAMI(t, refuse, refuse, replay(tr, append(tr.events, sentinel("sentinel.1")), (*fakeConn).holdOpen))
	sk := newSink()
	logs := run(t, ami.Config{Addr: srv.addr(), Username: "u1", Secret: "s3cret", Submit: sk.submit, Extensions: mustMap(t, "0003", "299=0009*299")})
	got := sk.until(t, "sentinel.1")
	checkActivities(t, got, []callevents.CallActivity{
		act("1795875931.2", dial, "0003*212", "212", ""),
		act("1795875931.2", hangup, "0003*212", "212", "BUSY"),
	})
	if n := srv.accepted(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
	if n := logs.count("Authentication failed"); n < 1 {
		t.Errorf("login failure not logged:\n%s", logs)
	}
	if n := logs.count("level=ERROR msg=\"ami unavailable"); n != 1 {
		t.Errorf("%d error logs for one outage, want 1:\n%s", n, logs)
	}
	for _, l := range srv.loginActions() {
		if l["username"] != "u1" || l["secret"] != "s3cret" || l["events"] != "on" || l["actionid"] == "" {
			t.Errorf("login action = %v", l)
		}
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("secret logged")
	}
}

// A failing Submit is retried; an error of ours (validation) is not.
func TestSubmitRetried(t *testing.T) {
	tr := loadTranscript(t, "busy.ami")
	srv := newFakeAMI(t, replay(tr, append(tr.events, sentinel("sentinel.1")), (*fakeConn).holdOpen))
	sk := newSink()
	var calls atomic.Int32
	submit := func(ctx context.Context, as []callevents.CallActivity) (callevents.ActivityResult, error) {
		if calls.Add(1) == 1 {
			return callevents.ActivityResult{}, errors.New("database is locked")
		}
		return sk.submit(ctx, as)
	}
	run(t, ami.Config{Addr: srv.addr(), Submit: submit, Extensions: mustMap(t, "0003", "299=0009*299")})
	got := sk.until(t, "sentinel.1")
	checkActivities(t, got, []callevents.CallActivity{
		act("1795875931.2", dial, "0003*212", "212", ""),
		act("1795875931.2", hangup, "0003*212", "212", "BUSY"),
	})
	if n := calls.Load(); n != 4 {
		t.Errorf("%d Submit calls, want 4 (one retry)", n)
	}
}

// An activity the intake already had (a duplicate, say after an attempt
// whose answer was lost) is logged as such, not as queued.
func TestSubmitDuplicateLogged(t *testing.T) {
	tr := loadTranscript(t, "busy.ami")
	srv := newFakeAMI(t, replay(tr, append(tr.events, sentinel("sentinel.1")), (*fakeConn).holdOpen))
	sk := newSink()
	var calls atomic.Int32
	submit := func(ctx context.Context, as []callevents.CallActivity) (callevents.ActivityResult, error) {
		res, err := sk.submit(ctx, as)
		if calls.Add(1) == 1 {
			res = callevents.ActivityResult{Duplicates: len(as)}
		}
		return res, err
	}
	logs := run(t, ami.Config{Addr: srv.addr(), Submit: submit, Extensions: mustMap(t, "0003", "299=0009*299")})
	sk.until(t, "sentinel.1")
	// The first activity's line is written before the sentinel is submitted.
	if n := logs.count(`msg="ami activity already accepted; nothing queued"`); n != 1 {
		t.Errorf("%d duplicate lines, want 1:\n%s", n, logs)
	}
	if n := logs.count(`msg="ami activity submitted"`); n < 1 || !strings.Contains(logs.String(), "queued=2 accepted=1 duplicates=0") {
		t.Errorf("no submitted line with the counts:\n%s", logs)
	}
}

func TestNewRejects(t *testing.T) {
	submit := func(context.Context, []callevents.CallActivity) (callevents.ActivityResult, error) {
		return callevents.ActivityResult{}, nil
	}
	for _, cfg := range []ami.Config{
		{Username: "u", Submit: submit},
		{Addr: "nohost", Username: "u", Submit: submit},
		{Addr: "127.0.0.1:5038", Submit: submit},
		{Addr: "127.0.0.1:5038", Username: "u"},
		{Addr: "127.0.0.1:5038", Username: "u", Submit: submit, CallTTL: -1},
	} {
		if _, err := ami.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestParseExtensionMap(t *testing.T) {
	m := mustMap(t, "0003", " 210=0003*210 , alice=0004*211,trunk-a=0005*999")
	for _, tc := range []struct {
		endpoint, want string
	}{
		{"210", "0003*210"}, {"alice", "0004*211"}, {"trunk-a", "0005*999"},
		{"212", "0003*212"}, {"21", ""}, {"123456", ""}, {"bob", ""}, {"", ""},
	} {
		got, ok := m.Lookup(tc.endpoint)
		if string(got) != tc.want || ok != (tc.want != "") {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tc.endpoint, got, ok, tc.want)
		}
	}
	if got, ok := mustMap(t, "", "").Lookup("210"); ok {
		t.Errorf("empty map found %q", got)
	}
	for _, bad := range [][2]string{
		{"003", ""}, {"abcd", ""}, {"", "210"}, {"", "210=0003*21"}, {"", "=0003*210"},
		{"", "210=0003*210,210=0003*211"}, {"", "a b=0003*210"},
	} {
		if _, err := ami.ParseExtensionMap(bad[0], bad[1]); err == nil {
			t.Errorf("ParseExtensionMap(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

// An activity the intake refuses (a *callevents.Error that is not internal)
// is logged and dropped at once; the next ones still go through.
func TestSubmitRefusedNotRetried(t *testing.T) {
	tr := loadTranscript(t, "busy.ami")
	srv := newFakeAMI(t, replay(tr, append(tr.events, sentinel("sentinel.1")), (*fakeConn).holdOpen))
	sk := newSink()
	var calls atomic.Int32
	submit := func(ctx context.Context, as []callevents.CallActivity) (callevents.ActivityResult, error) {
		if calls.Add(1) == 1 {
			return callevents.ActivityResult{}, callevents.FieldError(callevents.CodeMalformedRequest, "callId", "refused")
		}
		return sk.submit(ctx, as)
	}
	logs := run(t, ami.Config{Addr: srv.addr(), Submit: submit, Extensions: mustMap(t, "0003", "299=0009*299")})
	got := sk.until(t, "sentinel.1")
	checkActivities(t, got, []callevents.CallActivity{
		act("1795875931.2", hangup, "0003*212", "212", "BUSY"),
	})
	if n := calls.Load(); n != 3 {
		t.Errorf("%d Submit calls, want 3 (no retry)", n)
	}
	if logs.count("ami activity dropped") != 1 {
		t.Errorf("drop not logged once:\n%s", logs)
	}
}

// dropAfterDialBegin serves the answered call twice: the first connection
// closes right after DialBegin, the next one repeats that DialBegin, sends
// the rest of the call and a sentinel call, and stays open.
func dropAfterDialBegin(t *testing.T) *fakeAMI {
	t.Helper()
	tr := loadTranscript(t, "answer.ami")
	cut := tr.indexOf(t, "Event: DialBegin") + 1
	rest := append([]string{tr.events[cut-1]}, tr.events[cut:]...)
	rest = append(rest, sentinel("sentinel.1"))
	return newFakeAMI(t,
		replay(tr, tr.events[:cut], nil), // then closes
		replay(tr, rest, (*fakeConn).holdOpen),
	)
}
