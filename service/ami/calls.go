package ami

import (
	"strconv"
	"strings"
	"time"

	"github.com/callevents/callevents"
)

// Bounds on tracked state besides the TTL, so that a flood of events
// cannot grow memory without limit.
const (
	maxCalls   = 100000
	maxPerCall = 1000 // legs, and dials, of one call
)

// leg is one channel of a call, by Uniqueid.
type leg struct {
	channel    string
	exten      string // the Exten of its first event (the dialled number on a caller leg)
	dialStatus string // last VarSet DIALSTATUS on it (read = call,dialplan only)
	hungUp     bool
}

// dial is one caller→callee pair of a call, by the callee's Uniqueid.
type dial struct {
	callerUID, destUID string
	destChannel        string
	activity           callevents.CallActivity // the dial activity: who and what
	status             string                  // DialEnd's DialStatus, "" until then
	hungUp             bool                    // hangup reported (or skipped)
}

// call is what is known of one call, by Linkedid.
type call struct {
	id       string
	legs     map[string]*leg
	dials    []*dial
	sent     map[string]bool // DedupeKeys already produced
	lastSeen time.Time
	done     bool // every leg seen has hung up
}

// tracker turns AMI events into call activity. It is used by one goroutine.
type tracker struct {
	ext   ExtensionMap
	dids  map[string]bool
	ttl   time.Duration
	keep  time.Duration // how long a finished call is kept to absorb late events
	now   func() time.Time
	debug func(msg string, args ...any)
	calls map[string]*call
	swept time.Time
}

func newTracker(ext ExtensionMap, dids map[string]bool, ttl time.Duration, now func() time.Time, debug func(string, ...any)) *tracker {
	keep := time.Minute
	if ttl < keep {
		keep = ttl
	}
	return &tracker{ext: ext, dids: dids, ttl: ttl, keep: keep, now: now, debug: debug, calls: map[string]*call{}}
}

// handle processes one event and returns the activities it completes, in
// order. Every returned activity passes Validate.
func (t *tracker) handle(m message) []callevents.CallActivity {
	now := t.now()
	t.sweep(now)
	ev := m.get("Event")
	switch ev {
	case "Newchannel", "DialBegin", "DialEnd", "Hangup", "VarSet":
	default:
		return nil
	}
	lid := m.get("Linkedid")
	uid := m.get("Uniqueid")
	if lid == "" || uid == "" {
		t.debug("ami event without Linkedid/Uniqueid skipped", "event", ev)
		return nil
	}
	c := t.calls[lid]
	if c == nil {
		if ev == "DialEnd" { // its DialBegin was missed or expired: nothing to pair it with
			return nil
		}
		if len(t.calls) >= maxCalls {
			t.debug("ami call not tracked: too many calls in progress", "call_id", lid, "calls", len(t.calls))
			return nil
		}
		c = &call{id: lid, legs: map[string]*leg{}, sent: map[string]bool{}}
		t.calls[lid] = c
	}
	if len(c.legs) >= maxPerCall && c.legs[uid] == nil {
		t.debug("ami leg not tracked: too many legs in one call", "call_id", lid)
		return nil
	}
	c.lastSeen = now
	l := c.leg(uid, m)
	at := eventTime(m)
	var out []callevents.CallActivity
	switch ev {
	case "VarSet":
		if strings.EqualFold(m.get("Variable"), "DIALSTATUS") {
			l.dialStatus = strings.ToUpper(m.get("Value"))
		}
	case "DialBegin":
		dest := m.get("DestUniqueid")
		if dest == "" || c.dialTo(dest) != nil {
			return nil
		}
		if len(c.dials) >= maxPerCall {
			t.debug("ami dial not tracked: too many dials in one call", "call_id", lid)
			return nil
		}
		c.legs[dest] = c.legOf(dest, m.get("DestChannel"))
		exten := m.get("Exten")
		dialled := exten
		if t.dids[l.exten] {
			dialled = l.exten // the DID the call came in on, before the dialplan moved on
		}
		a := callevents.CallActivity{
			CallID:          lid,
			Phase:           callevents.PhaseDial,
			CallerExtension: t.lookup(channelEndpoint(m.get("Channel"))),
			CallerIDNum:     callerID(m.get("CallerIDNum")),
			CallerIDName:    callerID(m.get("CallerIDName")),
			CalledNumber:    dialled,
			CalledExtension: t.lookup(channelEndpoint(m.get("DestChannel"))),
			Time:            at,
		}
		if t.dids[dialled] {
			a.CalledDID = dialled
		}
		d := &dial{callerUID: uid, destUID: dest, destChannel: m.get("DestChannel"), activity: a}
		c.dials = append(c.dials, d)
		out = t.emit(c, out, a)
	case "DialEnd":
		d := c.dialTo(m.get("DestUniqueid"))
		if d == nil {
			d = c.dialToChannel(m.get("DestChannel"))
		}
		if d == nil || d.status != "" {
			return nil
		}
		d.status = strings.ToUpper(m.get("DialStatus"))
		if d.status == "ANSWER" {
			a := d.activity
			a.Phase, a.Time = callevents.PhaseAnswer, at
			out = t.emit(c, out, a)
		}
	case "Hangup":
		l.hungUp = true
		reported := false
		for _, d := range c.dials {
			if d.callerUID != uid && d.destUID != uid {
				continue
			}
			reported = true
			if d.hungUp {
				continue
			}
			d.hungUp = true
			a := d.activity
			status := d.status
			if status == "" { // no DialEnd seen: the dialplan's DIALSTATUS, if it was sent
				if cl := c.legs[d.callerUID]; cl != nil {
					status = cl.dialStatus
				}
			}
			a.Phase, a.Time, a.Status = callevents.PhaseHangup, at, hangupStatus(status)
			out = t.emit(c, out, a)
		}
		if !reported {
			out = t.undialled(c, l, m, at, out)
		}
		c.done = true
		for _, x := range c.legs {
			if !x.hungUp {
				c.done = false
			}
		}
	}
	return out
}

// undialled handles the Hangup of a leg that neither dialled nor was
// dialled: a Dial that failed before creating a callee channel. With
// read = call it shows only as Cause 3 (No route to destination, SIP 404)
// on the caller; with read = call,dialplan also as VarSet DIALSTATUS.
func (t *tracker) undialled(c *call, l *leg, m message, at time.Time, out []callevents.CallActivity) []callevents.CallActivity {
	status := l.dialStatus
	switch {
	case status == "" && m.get("Cause") == "3":
		status = "CHANUNAVAIL"
	case status == "", status == "ANSWER", status == "UNKNOWN":
		return out
	}
	if hangupStatus(status) != status {
		return out
	}
	exten := m.get("Exten")
	if exten == "" || exten == "s" {
		exten = l.exten
	}
	called := ""
	if exten != "" {
		called = t.lookup(exten)
	}
	a := callevents.CallActivity{
		CallID:          c.id,
		Phase:           callevents.PhaseHangup,
		CallerExtension: t.lookup(channelEndpoint(m.get("Channel"))),
		CallerIDNum:     callerID(m.get("CallerIDNum")),
		CallerIDName:    callerID(m.get("CallerIDName")),
		CalledNumber:    exten,
		CalledExtension: called,
		Status:          status,
		Time:            at,
	}
	if t.dids[exten] {
		a.CalledDID = exten
	}
	return t.emit(c, out, a)
}

// emit appends a unless it was produced before for this call or is invalid.
func (t *tracker) emit(c *call, out []callevents.CallActivity, a callevents.CallActivity) []callevents.CallActivity {
	if a.CallerExtension == "" && a.CalledExtension == "" {
		t.debug("ami activity skipped: neither side maps to an extension", "call_id", a.CallID, "phase", string(a.Phase), "called_number", a.CalledNumber)
		return out
	}
	if err := a.Validate(); err != nil {
		t.debug("ami activity skipped: invalid", "call_id", a.CallID, "phase", string(a.Phase), "error", err.Error())
		return out
	}
	k := a.DedupeKey()
	if c.sent[k] {
		return out
	}
	c.sent[k] = true
	return append(out, a)
}

func (t *tracker) lookup(endpoint string) string {
	e, ok := t.ext.Lookup(endpoint)
	if !ok {
		return ""
	}
	return string(e)
}

// sweep forgets calls idle for the TTL and finished calls after keep.
// It runs at most every keep/4 (and at least every 15 s of events).
func (t *tracker) sweep(now time.Time) {
	every := t.keep / 4
	if every > 15*time.Second {
		every = 15 * time.Second
	}
	if now.Sub(t.swept) < every {
		return
	}
	t.swept = now
	for id, c := range t.calls {
		idle := now.Sub(c.lastSeen)
		if idle >= t.ttl || (c.done && idle >= t.keep) {
			if !c.done {
				t.debug("ami call expired without hangup", "call_id", id, "idle", idle.String())
			}
			delete(t.calls, id)
		}
	}
}

func (c *call) leg(uid string, m message) *leg {
	l := c.legs[uid]
	if l == nil {
		l = &leg{channel: m.get("Channel"), exten: m.get("Exten")}
		c.legs[uid] = l
	}
	if l.exten == "" || l.exten == "s" {
		l.exten = m.get("Exten")
	}
	return l
}

func (c *call) legOf(uid, channel string) *leg {
	if l := c.legs[uid]; l != nil {
		return l
	}
	return &leg{channel: channel}
}

func (c *call) dialToChannel(channel string) *dial {
	if channel == "" {
		return nil
	}
	for _, d := range c.dials {
		if d.destChannel == channel {
			return d
		}
	}
	return nil
}

func (c *call) dialTo(destUID string) *dial {
	if destUID == "" {
		return nil
	}
	for _, d := range c.dials {
		if d.destUID == destUID {
			return d
		}
	}
	return nil
}

// hangupStatus returns s when it is a DIALSTATUS the intake knows, else ""
// (reported as UNKNOWN).
func hangupStatus(s string) string {
	switch s {
	case "ANSWER", "BUSY", "NOANSWER", "CANCEL", "CONGESTION", "CHANUNAVAIL":
		return s
	}
	return ""
}

// callerID drops Asterisk's placeholder for an unknown caller id.
func callerID(s string) string {
	if s == "<unknown>" {
		return ""
	}
	return s
}

// eventTime is the event's Timestamp (manager.conf timestampevents = yes),
// zero when absent: the intake then uses the time it accepts the activity.
func eventTime(m message) time.Time {
	ts := m.get("Timestamp")
	if ts == "" {
		return time.Time{}
	}
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s <= 0 {
		return time.Time{}
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}
		}
	}
	return time.Unix(s, ns).UTC()
}
