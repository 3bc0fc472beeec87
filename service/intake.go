package service

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/callevents/callevents"
)

// intakeEndpoint is the PBX call activity intake: it writes, so an
// uncoded error is 152.
var intakeEndpoint = endpoint{edge: "intake", operation: "events", fallback: callevents.CodeUpdateFailed, writeError: (*Server).writeJSONError}

// serveEvents is the PBX call activity intake (SPEC.md §7):
// POST /pbx/v1/events with a Bearer token of a pbx or admin client and a
// JSON object or array of objects. It answers 202 {"queued": N,
// "accepted": A, "duplicates": D} (callevents.ActivityResult) once the
// deliveries are durably queued, and a JSON error (writeJSONError)
// otherwise; a request that fails stores nothing.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	s.serve(w, r, intakeEndpoint, s.handleEvents)
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, "POST", "method_not_allowed", "POST call activity as JSON.")
	}
	if s.activities == nil {
		return notConfigured("Call activity intake")
	}
	token, err := bearerToken(r)
	if err != nil {
		return err
	}
	principal, err := s.authenticate(r, callevents.Credentials{AccessToken: token})
	if err != nil {
		return err
	}
	// The scope is checked before the body is read, so that a client that
	// may not report calls learns nothing from validation errors.
	if !principal.Scope.CanReportCalls() {
		return callevents.Errorf(callevents.CodeAccessDenied, "Access denied: only pbx and admin clients may report call activity.")
	}
	raw, err := readBody(r, s.maxBody)
	if err != nil {
		return err
	}
	activities, err := decodeActivities(raw)
	if err != nil {
		return err
	}
	res, err := s.activities.AcceptActivity(r.Context(), principal, activities)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, jsonObject{{"queued", res.Queued}, {"accepted", res.Accepted}, {"duplicates", res.Duplicates}})
}

// activityFields are the intake's JSON fields, each setting one string of
// a CallActivity; time is read apart.
var activityFields = map[string]func(a *callevents.CallActivity, v string){
	"callId":          func(a *callevents.CallActivity, v string) { a.CallID = v },
	"phase":           func(a *callevents.CallActivity, v string) { a.Phase = callevents.CallPhase(v) },
	"callerExtension": func(a *callevents.CallActivity, v string) { a.CallerExtension = v },
	"callerIdNum":     func(a *callevents.CallActivity, v string) { a.CallerIDNum = v },
	"callerIdName":    func(a *callevents.CallActivity, v string) { a.CallerIDName = v },
	"calledNumber":    func(a *callevents.CallActivity, v string) { a.CalledNumber = v },
	"calledExtension": func(a *callevents.CallActivity, v string) { a.CalledExtension = v },
	"calledDid":       func(a *callevents.CallActivity, v string) { a.CalledDID = v },
	"status":          func(a *callevents.CallActivity, v string) { a.Status = v },
	"callApiId":       func(a *callevents.CallActivity, v string) { a.CallAPIID = v },
}

const fieldTime = "time"

// decodeActivities reads one JSON object or an array of them. Field names
// are exact (case matters); an unknown field, a value that is not a string
// (null counts as absent), a string that is not UTF-8 text (a raw invalid
// byte, or a \u escape of half a surrogate pair) or a time that is not
// RFC 3339 is a 400 naming the field, so that a typo such as
// calledExtention never silently drops data and no text is altered.
// With several items the field is prefixed with the item's index ("[2].time"),
// as the root does for its own validation.
func decodeActivities(raw []byte) ([]callevents.CallActivity, error) {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, callevents.Errorf(callevents.CodeMalformedRequest, "The body is empty: send a JSON object or an array of objects.")
	}
	var items []json.RawMessage
	switch trimmed[0] {
	case '{':
		items = []json.RawMessage{nil}
		if err := decodeJSON(raw, &items[0]); err != nil {
			return nil, err
		}
	case '[':
		if err := decodeJSON(raw, &items); err != nil {
			return nil, err
		}
	default:
		return nil, callevents.Errorf(callevents.CodeMalformedRequest, "The body is not a JSON object or an array of objects.")
	}
	if len(items) > callevents.MaxActivitiesPerRequest {
		return nil, callevents.Errorf(callevents.CodeMalformedRequest, "At most %d activities per request.", callevents.MaxActivitiesPerRequest)
	}
	out := make([]callevents.CallActivity, len(items))
	for i, item := range items {
		index := ""
		if trimmed[0] == '[' {
			index = "[" + strconv.Itoa(i) + "]"
		}
		prefix := ""
		if len(items) > 1 {
			prefix = index
		}
		if err := decodeActivity(item, &out[i], index, prefix); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeActivity decodes one item; index names it in an array ("[0]"),
// prefix is put before its field names ("" for a lone item).
func decodeActivity(item json.RawMessage, a *callevents.CallActivity, index, prefix string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(item, &fields); err != nil || fields == nil {
		return callevents.FieldError(callevents.CodeMalformedRequest, index, "Each call activity must be a JSON object.")
	}
	for _, f := range sortedFields(fields) {
		name, value := f.name, f.value
		field := fieldName(prefix, name)
		set, known := activityFields[name]
		if !known && name != fieldTime {
			return callevents.FieldError(callevents.CodeMalformedRequest, field, fmt.Sprintf("Unknown field %q: the fields are callId, phase, callerExtension, callerIdNum, callerIdName, calledNumber, calledExtension, calledDid, status, callApiId and time.", callevents.Truncate(name, 64)))
		}
		var s *string
		if err := json.Unmarshal(value, &s); err != nil {
			return callevents.FieldError(callevents.CodeMalformedRequest, field, name+" must be a JSON string.")
		}
		if s == nil { // null: absent
			continue
		}
		// encoding/json turns what is not text into U+FFFD without a word,
		// so distinct call ids could become one: the raw value is checked.
		if !utf8.Valid(value) || unpairedSurrogate(value) {
			return callevents.FieldError(callevents.CodeMalformedRequest, field, name+` must be UTF-8 text: it has a byte that is not UTF-8, or a \u escape of half a surrogate pair.`)
		}
		if name == fieldTime {
			t, err := time.Parse(time.RFC3339Nano, *s)
			if err != nil {
				return callevents.FieldError(callevents.CodeMalformedRequest, field, "time must be an RFC 3339 date and time such as 2026-01-02T15:04:05Z.")
			}
			if t.IsZero() { // the zero time means "not reported" past here
				return callevents.FieldError(callevents.CodeMalformedRequest, field, "time must be within 24 hours of the server's clock.")
			}
			a.Time = t.UTC()
			continue
		}
		set(a, *s)
	}
	return nil
}

// unpairedSurrogate reports whether lit, a JSON string literal (quotes
// included) that encoding/json has accepted, escapes half of a UTF-16
// surrogate pair without the other half ("\ud800"), which decodes to
// U+FFFD as an invalid byte does.
func unpairedSurrogate(lit []byte) bool {
	for i := 0; i < len(lit); i++ {
		if lit[i] != '\\' {
			continue
		}
		i++ // the escaped character
		if lit[i] != 'u' {
			continue
		}
		r := hexRune(lit[i+1 : i+5])
		i += 4
		if !utf16.IsSurrogate(r) {
			continue
		}
		// A valid literal has four hex digits after any \u, so a
		// following escape is whole.
		if i+2 >= len(lit) || lit[i+1] != '\\' || lit[i+2] != 'u' ||
			utf16.DecodeRune(r, hexRune(lit[i+3:i+7])) == utf8.RuneError {
			return true
		}
		i += 6
	}
	return false
}

// hexRune reads the four hex digits of a \u escape.
func hexRune(digits []byte) rune {
	n, _ := strconv.ParseUint(string(digits), 16, 16)
	return rune(n)
}

func fieldName(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}
