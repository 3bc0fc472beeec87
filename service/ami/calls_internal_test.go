package ami

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// events reads the event blocks of a transcript.
func events(t *testing.T, file string) []message {
	t.Helper()
	f, err := os.Open("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := newReader(f)
	if _, err := r.readBanner(); err != nil {
		t.Fatal(err)
	}
	var out []message
	for {
		m, err := r.readMessage()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.has("Event") {
			out = append(out, m)
		}
	}
}

func newTestTracker(t *testing.T, ttl time.Duration) (*tracker, *dispatchertest.Clock) {
	ext, err := ParseExtensionMap("0003", "")
	if err != nil {
		t.Fatal(err)
	}
	c := dispatchertest.NewClockAt(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	return newTracker(ext, nil, ttl, c.Now, func(string, ...any) {}), c
}

func feed(tr *tracker, ms []message) []callevents.CallActivity {
	var out []callevents.CallActivity
	for _, m := range ms {
		out = append(out, tr.handle(m)...)
	}
	return out
}

func indexOfEvent(t *testing.T, ms []message, event string) int {
	t.Helper()
	for i, m := range ms {
		if m.get("Event") == event {
			return i
		}
	}
	t.Fatalf("no %s", event)
	return -1
}

// A call that never hangs up is forgotten after the TTL; its late events
// then produce nothing.
func TestCallExpires(t *testing.T) {
	tr, clk := newTestTracker(t, time.Hour)
	ms := events(t, "answer.ami")
	cut := indexOfEvent(t, ms, "DialBegin") + 1
	if got := feed(tr, ms[:cut]); len(got) != 1 || got[0].Phase != callevents.PhaseDial {
		t.Fatalf("before expiry: %+v", got)
	}
	clk.Advance(59 * time.Minute)
	other := events(t, "busy.ami")
	feed(tr, other[:1]) // another call's Newchannel: sweeps, the first call is 59 min idle
	if _, ok := tr.calls["1795875926.0"]; !ok {
		t.Fatal("call forgotten before its TTL")
	}
	clk.Advance(time.Hour)
	feed(tr, other[1:2])
	if _, ok := tr.calls["1795875926.0"]; ok {
		t.Fatal("call still tracked an hour after its last event")
	}
	if got := feed(tr, ms[cut:]); len(got) != 0 {
		t.Errorf("late events of an expired call produced %+v", got)
	}
}

// A finished call is kept briefly (late duplicates) and then dropped:
// memory stays bounded without waiting for the TTL.
func TestFinishedCallDropped(t *testing.T) {
	tr, clk := newTestTracker(t, 4*time.Hour)
	ms := events(t, "ringgroup.ami")
	if got := feed(tr, ms); len(got) != 5 {
		t.Fatalf("ringgroup: %d activities, want 5", len(got))
	}
	c := tr.calls["1795875956.13"]
	if c == nil || !c.done {
		t.Fatalf("call not finished: %+v", c)
	}
	if got := feed(tr, ms); len(got) != 0 { // a replay of the whole call
		t.Errorf("replayed call produced %+v", got)
	}
	clk.Advance(2 * time.Minute)
	feed(tr, events(t, "busy.ami")[:1])
	if len(tr.calls) != 1 {
		t.Errorf("%d calls tracked, want only the new one", len(tr.calls))
	}
}

// With read = call,dialplan a failed Dial may show only as VarSet
// DIALSTATUS (the caller's Hangup cause is then not 3).
func TestDialStatusVarSetOnly(t *testing.T) {
	tr, _ := newTestTracker(t, time.Hour)
	ms := events(t, "chanunavail-dialplan.ami")
	h := indexOfEvent(t, ms, "Hangup")
	ms[h] = withField(ms[h], "Cause", "16")
	got := feed(tr, ms)
	if len(got) != 1 || got[0].Status != "CHANUNAVAIL" || got[0].CalledExtension != "0003*219" {
		t.Fatalf("got %+v", got)
	}
	// Without the VarSet a Cause 16 hangup of a call that dialled nobody is not reported.
	tr, _ = newTestTracker(t, time.Hour)
	ms = events(t, "chanunavail.ami")
	h = indexOfEvent(t, ms, "Hangup")
	ms[h] = withField(ms[h], "Cause", "16")
	if got := feed(tr, ms); len(got) != 0 {
		t.Fatalf("got %+v", got)
	}
}

func TestTimestamp(t *testing.T) {
	tr, _ := newTestTracker(t, time.Hour)
	ms := events(t, "busy.ami")
	for i := range ms {
		ms[i] = append(ms[i], field{"Timestamp", "1795875931.250000"})
	}
	got := feed(tr, ms)
	want := time.Unix(1795875931, 250000000).UTC()
	if len(got) != 2 || !got[0].Time.Equal(want) || !got[1].Time.Equal(want) {
		t.Fatalf("got %+v, want Time %v", got, want)
	}
}

func withField(m message, key, value string) message {
	out := append(message(nil), m...)
	for i := range out {
		if out[i].key == key {
			out[i].value = value
		}
	}
	return out
}

func TestReader(t *testing.T) {
	in := "Asterisk Call Manager/11.0.0\r\n" +
		"Response: Success\r\nMessage: Authentication accepted\r\n\r\n" +
		"\r\n" + // stray empty line
		"Event: Newchannel\r\nAccountCode: \r\nAccountCode2:\r\nChanVariable: A=1\r\nChanVariable: B=2\r\n\r\n" +
		"no colon here\r\n\r\n" +
		"Event: Next\nUnix: endings\n\n" +
		"Event: Cut"
	r := newReader(strings.NewReader(in))
	if b, err := r.readBanner(); err != nil || b != "Asterisk Call Manager/11.0.0" {
		t.Fatalf("banner %q, %v", b, err)
	}
	m, err := r.readMessage()
	if err != nil || m.get("Response") != "Success" || m.get("message") != "Authentication accepted" {
		t.Fatalf("login response %v, %v", m, err)
	}
	m, err = r.readMessage()
	if err != nil || m.get("Event") != "Newchannel" || !m.has("AccountCode") || m.get("AccountCode") != "" || !m.has("AccountCode2") || len(m) != 5 || m[4].value != "B=2" {
		t.Fatalf("event %v, %v", m, err)
	}
	if _, err = r.readMessage(); !errors.Is(err, errMalformed) {
		t.Fatalf("garbage: %v", err)
	}
	if m, err = r.readMessage(); err != nil || m.get("Unix") != "endings" {
		t.Fatalf("after garbage %v, %v", m, err)
	}
	if _, err = r.readMessage(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated block: %v", err)
	}
	if _, err := newReader(strings.NewReader("HTTP/1.1 400 Bad Request\r\n")).readBanner(); err == nil {
		t.Error("HTTP greeting accepted")
	}
}

func TestChannelEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"PJSIP/210-00000004":                "210",
		"PJSIP/trunk-a-0000000f":            "trunk-a",
		"SIP/alice-0000abcd":                "alice",
		"IAX2/bob-1234":                     "bob",
		"Local/211@from-internal-0000001;1": "",
		"PJSIP/210":                         "210",
		"DAHDI/1-1":                         "",
		"":                                  "",
	} {
		if got := channelEndpoint(in); got != want {
			t.Errorf("channelEndpoint(%q) = %q, want %q", in, got, want)
		}
	}
}

// An activity that the intake would refuse is skipped, not submitted.
func TestInvalidActivitySkipped(t *testing.T) {
	tr, _ := newTestTracker(t, time.Hour)
	ms := events(t, "busy.ami")
	for i := range ms {
		ms[i] = withField(ms[i], "CallerIDName", strings.Repeat("n", callevents.MaxActivityFieldLength+1))
	}
	if got := feed(tr, ms); len(got) != 0 {
		t.Fatalf("got %+v", got)
	}
}
