package dispatcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/callevents/callevents"
)

var _ callevents.CallEventTester = (*Dispatcher)(nil)

// TestCallEvent sends a synthetic event of c's type to c right away,
// outside the queue, through the same client and outbound policy as
// deliveries: the ten parameters with recognisable sample values (CallID
// "test-" and 12 hex digits, caller "Call Events Test"), signed when c has
// a secret, with the header X-CallEvents-Test: true and attempt 1. A
// failed request is a result (StatusCode 0 or the status, ErrorClass), not
// an error; the error is ctx's when ctx ends first.
//
// At most MaxConcurrentTests tests are in flight at once, and at most
// MaxConcurrentTestsPerOrganization of one organization's: tests are
// outside the queue and its Concurrency bound, and a flood of them
// (against a receiver that hangs, say) would otherwise hold a socket and a
// request's buffers each, and keep other tenants from testing. One that
// finds no slot waits for one for up to testSlotWait (or until ctx ends),
// then returns code 151 with a public message saying to try again; the
// receiver never sees it.
func (d *Dispatcher) TestCallEvent(ctx context.Context, c callevents.CallEvent) (callevents.TestResult, error) {
	release, err := d.sender.tests.take(ctx, c.Extension.Organization())
	if err != nil {
		return callevents.TestResult{}, err
	}
	defer release()
	p := SampleParams(c.Extension, c.Type)
	res := d.sender.send(ctx, request{
		id: callevents.NewDeliveryID(), typ: c.Type, attempt: 1,
		url: c.URL, method: c.Method, secret: c.Secret, payload: p.Encode(), test: true, at: d.cfg.Now(),
	})
	if res.status == 0 && ctx.Err() != nil {
		return callevents.TestResult{}, ctx.Err()
	}
	return callevents.TestResult{StatusCode: res.status, ErrorClass: string(res.class), Latency: res.latency}, nil
}

// testSlotWait is how long a test waits for a free slot. Slots free as
// tests end (each within Config.Timeout), so a burst of a few more than
// MaxConcurrentTests is served in turn, while under a flood the waiters
// give up after a second: they hold no socket to a receiver meanwhile.
const testSlotWait = time.Second

// errTestsBusy is the internal cause of a test refused for want of a slot.
var errTestsBusy = errors.New("dispatcher: every test slot is taken")

// testSlots are the slots of the tests in flight: MaxConcurrentTests in
// all, MaxConcurrentTestsPerOrganization of them for one organization.
type testSlots struct {
	all  chan struct{}
	mu   sync.Mutex
	orgs map[string]*organizationTests
}

// organizationTests are one organization's slots, and how many tests
// hold or wait for one (the entry goes when none does).
type organizationTests struct {
	slots chan struct{}
	users int
}

func newTestSlots() *testSlots {
	return &testSlots{all: make(chan struct{}, MaxConcurrentTests), orgs: map[string]*organizationTests{}}
}

// take takes one of organization's slots and one of all, waiting up to
// testSlotWait for both, and returns the function that gives them back.
func (t *testSlots) take(ctx context.Context, organization string) (release func(), err error) {
	t.mu.Lock()
	o := t.orgs[organization]
	if o == nil {
		o = &organizationTests{slots: make(chan struct{}, MaxConcurrentTestsPerOrganization)}
		t.orgs[organization] = o
	}
	o.users++
	t.mu.Unlock()
	leave := func() {
		t.mu.Lock()
		if o.users--; o.users == 0 {
			delete(t.orgs, organization)
		}
		t.mu.Unlock()
	}
	wait := time.NewTimer(testSlotWait)
	defer wait.Stop()
	for _, slots := range []chan struct{}{o.slots, t.all} {
		select {
		case slots <- struct{}{}:
			continue
		case <-ctx.Done():
			err = ctx.Err()
		case <-wait.C:
			err = &callevents.Error{
				Code:    callevents.CodeRetrieveFailed,
				Message: "Too many Call Event tests are in progress. Try again in a few seconds.",
				Err:     errTestsBusy,
			}
		}
		if slots == t.all {
			<-o.slots
		}
		leave()
		return nil, err
	}
	return func() {
		<-t.all
		<-o.slots
		leave()
	}, nil
}

// SampleParams returns the parameters of a synthetic event of type typ on
// ext, as TestCallEvent sends them: a call from +1 555 0100 ("Call Events
// Test") to ext's DID +1 555 0199 for the incoming types (Dial-In,
// Answer-In, Hangup), and from ext to +1 555 0100 for the outgoing ones;
// CallStatus CALLING, ANSWER, or ANSWER on Hangup. CallID is "test-" and
// 12 random hex digits, CallAPIID "test".
func SampleParams(ext callevents.Extension, typ callevents.EventType) callevents.Params {
	var b [6]byte
	rand.Read(b[:])
	p := callevents.Params{
		CallID:       "test-" + hex.EncodeToString(b[:]),
		CallerIDName: "Call Events Test",
		CallAPIID:    "test",
		CallStatus:   "CALLING",
	}
	if typ == callevents.AnswerIn || typ == callevents.AnswerOut || typ == callevents.Hangup {
		p.CallStatus = "ANSWER"
	}
	switch typ {
	case callevents.DialOut, callevents.AnswerOut:
		p.CallFlow = "OUT"
		p.CallerExtension = string(ext)
		p.CallerIDNum = string(ext)
		p.CalledNumber = "15550100"
	default:
		p.CallFlow = "IN"
		p.CallerIDNum = "15550100"
		p.CalledDID = "15550199"
		p.CalledNumber = "15550199"
		p.CalledExtension = string(ext)
	}
	return p
}
