package callevents

import (
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// CallPhase is the stage of a call that a PBX reports.
type CallPhase string

// Phases (SPEC.md §7).
const (
	PhaseDial   CallPhase = "dial"
	PhaseAnswer CallPhase = "answer"
	PhaseHangup CallPhase = "hangup"
)

// Hangup statuses a receiver may see in CallStatus (Asterisk DIALSTATUS).
var hangupStatuses = map[string]bool{
	"ANSWER": true, "BUSY": true, "NOANSWER": true, "CANCEL": true,
	"CONGESTION": true, "CHANUNAVAIL": true, "UNKNOWN": true,
}

// MaxActivityFieldLength bounds every text field of a CallActivity.
const MaxActivityFieldLength = 256

// CallActivity is one piece of call activity reported by the PBX.
type CallActivity struct {
	CallID          string
	Phase           CallPhase
	CallerExtension string
	CallerIDNum     string
	CallerIDName    string
	CalledNumber    string
	CalledExtension string
	CalledDID       string
	// Status is the hangup status (CallStatus); empty means UNKNOWN.
	Status    string
	CallAPIID string
	// Time is when it happened; zero means when it was accepted. It is
	// checked by ValidateTime, not by Validate, which has no clock.
	Time time.Time
}

// Validate checks a as reported (names are the intake's JSON fields).
// Returns 117 for a missing field and 400 for an invalid one, with Field set.
func (a CallActivity) Validate() error {
	if strings.TrimSpace(a.CallID) == "" {
		return FieldError(CodeMissingParameter, "callId", "callId is required: the same value for the whole call.")
	}
	switch a.Phase {
	case PhaseDial, PhaseAnswer, PhaseHangup:
	case "":
		return FieldError(CodeMissingParameter, "phase", "phase is required: dial, answer or hangup.")
	default:
		return FieldError(CodeMalformedRequest, "phase", "phase must be dial, answer or hangup.")
	}
	if a.CallerExtension == "" && a.CalledExtension == "" {
		return FieldError(CodeMissingParameter, "callerExtension", "callerExtension or calledExtension is required.")
	}
	for _, f := range []struct{ name, value string }{{"callerExtension", a.CallerExtension}, {"calledExtension", a.CalledExtension}} {
		if f.value != "" && !extensionPattern.MatchString(f.value) {
			return FieldError(CodeExtensionInvalid, f.name, f.name+" must be an extended number such as 0003*210.")
		}
	}
	if a.Status != "" {
		if a.Phase != PhaseHangup {
			return FieldError(CodeMalformedRequest, "status", "status is only for the hangup phase.")
		}
		if !hangupStatuses[a.Status] {
			return FieldError(CodeMalformedRequest, "status", "status must be ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL or UNKNOWN.")
		}
	}
	for _, f := range []struct{ name, value string }{
		{"callId", a.CallID}, {"callerIdNum", a.CallerIDNum}, {"callerIdName", a.CallerIDName},
		{"calledNumber", a.CalledNumber}, {"calledDid", a.CalledDID}, {"callApiId", a.CallAPIID},
	} {
		if len(f.value) > MaxActivityFieldLength || !utf8.ValidString(f.value) {
			return FieldError(CodeMalformedRequest, f.name, f.name+" must be UTF-8 text of at most 256 bytes.")
		}
	}
	return nil
}

// MaxActivityTimeSkew is how far a reported Time may be from the time the
// activity is accepted, in the past or in the future.
const MaxActivityTimeSkew = 24 * time.Hour

// ValidateTime checks a.Time against now, the time the activity is being
// accepted. A zero Time (not reported) passes: it means now. Any other
// Time must lie within MaxActivityTimeSkew of now, either way, or it is
// refused with 400 and Field "time". Time is not delivered (receivers get
// the parameters of SPEC.md §6 and the delivery log shows when the activity
// was accepted), so a report from further away can only come from a PBX
// whose clock is wrong, or a report replayed long after its call; a real
// call's report arrives within seconds.
func (a CallActivity) ValidateTime(now time.Time) error {
	if a.Time.IsZero() {
		return nil
	}
	if d := a.Time.Sub(now); d > MaxActivityTimeSkew || d < -MaxActivityTimeSkew {
		return FieldError(CodeMalformedRequest, "time", "time must be within 24 hours of the server's clock, now "+now.UTC().Format(time.RFC3339)+".")
	}
	return nil
}

// DedupeKey identifies a report: the same (callId, phase, callerExtension,
// calledExtension) reported twice is queued once.
func (a CallActivity) DedupeKey() string {
	return strings.Join([]string{a.CallID, string(a.Phase), a.CallerExtension, a.CalledExtension}, "\x00")
}

// ActivityResult is what accepting a request's call activity did, as the
// intake answers it (SPEC.md §7): every activity counts once, as accepted
// or as a duplicate, so Accepted+Duplicates is the number reported, and a
// PBX can tell "already reported" (Duplicates) from "no enabled Call Event
// matched" (Accepted with nothing Queued).
type ActivityResult struct {
	// Queued is the number of deliveries queued.
	Queued int
	// Accepted is the number of activities that were new and are now stored.
	Accepted int
	// Duplicates is the number of activities whose DedupeKey was accepted
	// before: by an earlier request, or earlier in the same one. They
	// queue nothing.
	Duplicates int
	// Claimed is how many of the queued deliveries the Handoff took (not
	// part of the intake's answer).
	Claimed int
}

// ExtensionEvent is what a CallActivity means for one extension: the event
// type that fires there and the parameters its receivers get.
type ExtensionEvent struct {
	Extension Extension
	Type      EventType
	Params    Params
}

// ExtensionEvents fans a validated activity out (SPEC.md §7): dial is
// Dial-Out on the caller and Dial-In on the called extension, answer is
// Answer-Out and Answer-In, hangup is Hangup on both; each when set.
func (a CallActivity) ExtensionEvents() []ExtensionEvent {
	var callerType, calledType EventType
	status := "CALLING"
	switch a.Phase {
	case PhaseDial:
		callerType, calledType = DialOut, DialIn
	case PhaseAnswer:
		callerType, calledType, status = AnswerOut, AnswerIn, "ANSWER"
	case PhaseHangup:
		callerType, calledType, status = Hangup, Hangup, a.Status
		if status == "" {
			status = "UNKNOWN"
		}
	}
	base := Params{
		CallID: a.CallID, CallerIDNum: a.CallerIDNum, CallerIDName: a.CallerIDName,
		CalledDID: a.CalledDID, CalledExtension: a.CalledExtension, CallStatus: status,
		CallerExtension: a.CallerExtension, CalledNumber: a.CalledNumber, CallAPIID: a.CallAPIID,
	}
	var out []ExtensionEvent
	if a.CallerExtension != "" {
		p := base
		p.CallFlow = "OUT"
		out = append(out, ExtensionEvent{Extension: Extension(a.CallerExtension), Type: callerType, Params: p})
	}
	if a.CalledExtension != "" {
		p := base
		p.CallFlow = "IN"
		out = append(out, ExtensionEvent{Extension: Extension(a.CalledExtension), Type: calledType, Params: p})
	}
	return out
}

// Params are the ten parameters every request carries (SPEC.md §6).
type Params struct {
	CallID          string
	CallerIDNum     string
	CallerIDName    string
	CalledDID       string
	CalledExtension string
	CallStatus      string
	CallFlow        string
	CallerExtension string
	CalledNumber    string
	CallAPIID       string
}

// Encode returns the parameters as application/x-www-form-urlencoded, all
// ten, in the SPEC's order, empty when unknown. It is the signed payload.
func (p Params) Encode() string {
	var b strings.Builder
	for i, kv := range [...][2]string{
		{"CallID", p.CallID}, {"CallerIDNum", p.CallerIDNum}, {"CallerIDName", p.CallerIDName},
		{"CalledDID", p.CalledDID}, {"CalledExtension", p.CalledExtension}, {"CallStatus", p.CallStatus},
		{"CallFlow", p.CallFlow}, {"CallerExtension", p.CallerExtension}, {"CalledNumber", p.CalledNumber},
		{"CallAPIID", p.CallAPIID},
	} {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv[1]))
	}
	return b.String()
}
