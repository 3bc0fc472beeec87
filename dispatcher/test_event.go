package dispatcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"

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
func (d *Dispatcher) TestCallEvent(ctx context.Context, c callevents.CallEvent) (callevents.TestResult, error) {
	p := SampleParams(c.Extension, c.Type)
	res := d.sender.send(ctx, request{
		id: callevents.NewDeliveryID(), typ: c.Type, attempt: 1,
		url: c.URL, method: c.Method, secret: c.Secret, payload: p.Encode(), test: true,
	})
	if res.status == 0 && ctx.Err() != nil {
		return callevents.TestResult{}, ctx.Err()
	}
	return callevents.TestResult{StatusCode: res.status, ErrorClass: res.class, Latency: res.latency}, nil
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
