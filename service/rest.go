package service

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callevents/callevents"
)

// The UnifiedAPI REST facade (SPEC.md §5): PhoneCallEvents over JSON for
// legacy UnifiedAPI clients. It only turns paths, queries and JSON bodies into
// domain values and calls CallEventService, as the SOAP edge does, so both
// edges share every rule; errors go through writeJSONError.

// Paths of the UnifiedAPI facade.
const (
	PathUAPIPhoneCallEvents = "/uapi/extensions/{userId}/{extension}/phoneCallEvents"
	PathUAPIOpenAPI         = "/uapi/openapi.json"
)

//go:embed openapi.json
var openAPIDocument []byte

// fieldPathType is the Field of a 301 about the {type} path segment; the
// JSON writer names it pcet_type_invalid, as the UnifiedAPI does.
const fieldPathType = "{type}"

// uapiRoutes are the facade's routes, method and pattern.
var uapiRoutes = []string{
	"GET " + PathUAPIPhoneCallEvents,
	"POST " + PathUAPIPhoneCallEvents,
	"DELETE " + PathUAPIPhoneCallEvents,
	"GET " + PathUAPIPhoneCallEvents + "/{$}",
	"POST " + PathUAPIPhoneCallEvents + "/{$}",
	"DELETE " + PathUAPIPhoneCallEvents + "/{$}",
	"GET " + PathUAPIPhoneCallEvents + "/{type}",
	"POST " + PathUAPIPhoneCallEvents + "/{type}",
	"DELETE " + PathUAPIPhoneCallEvents + "/{type}",
	"GET " + PathUAPIPhoneCallEvents + "/{type}/{id}",
	"PUT " + PathUAPIPhoneCallEvents + "/{type}/{id}",
	"DELETE " + PathUAPIPhoneCallEvents + "/{type}/{id}",
}

// uapiMethods are the facade's handlers by method, each with the code of
// its uncoded errors: 151 for the read, 152 for the writes.
var uapiMethods = map[string]struct {
	fallback callevents.Code
	handle   func(s *Server, w http.ResponseWriter, r *http.Request, rr restRequest) error
}{
	http.MethodGet:    {callevents.CodeRetrieveFailed, (*Server).restGet},
	http.MethodPost:   {callevents.CodeUpdateFailed, (*Server).restCreate},
	http.MethodPut:    {callevents.CodeUpdateFailed, (*Server).restUpdate},
	http.MethodDelete: {callevents.CodeUpdateFailed, (*Server).restDelete},
}

// registerUAPI adds the facade's routes to mux, each counted under its
// route (method and pattern).
func (s *Server) registerUAPI(mux *http.ServeMux) {
	for _, route := range uapiRoutes {
		method, _, _ := strings.Cut(route, " ")
		m := uapiMethods[method]
		e := endpoint{edge: "rest", operation: route, fallback: m.fallback, writeError: (*Server).writeJSONError}
		mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
			s.serve(w, r, e, func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Cache-Control", "no-store") // every answer is one client's
				rr, err := s.restAuthenticate(r)
				if err != nil {
					return err
				}
				return m.handle(s, w, r, rr)
			})
		})
	}
	mux.HandleFunc("GET "+PathUAPIOpenAPI, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(openAPIDocument)))
		w.Write(openAPIDocument)
	})
}

// restRequest is one authenticated facade request, its path read.
type restRequest struct {
	p   callevents.Principal
	ext callevents.Extension
	// typ is the {type} path segment, nil when the path has none.
	typ *callevents.EventType
	// id is the {id} path segment, "" when the path has none.
	id string
}

// restAuthenticate reads the Bearer token, then userId, the extension
// (and its scope) and the type from the path.
func (s *Server) restAuthenticate(r *http.Request) (restRequest, error) {
	var rr restRequest
	token, err := bearerToken(r)
	if err != nil {
		return rr, err
	}
	rr.p, err = s.authenticate(r, callevents.Credentials{AccessToken: token})
	if err != nil {
		return rr, err
	}
	switch user := r.PathValue("userId"); user {
	case "@me", "@viewer", "@owner":
	default:
		// A client id names the caller itself; only an admin may name another.
		if user != rr.p.ClientID && rr.p.Scope != callevents.ScopeAdmin {
			return rr, callevents.Errorf(callevents.CodeAccessDenied, "Access denied: userId %q is not this client.", callevents.Truncate(user, 64))
		}
	}
	rr.ext, err = callevents.ParseExtension(r.PathValue("extension"))
	if err != nil {
		return rr, err
	}
	if err := callevents.Authorize(rr.p, rr.ext); err != nil {
		return rr, err
	}
	if t := r.PathValue("type"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return rr, callevents.FieldError(callevents.CodeTypeInvalid, fieldPathType, fmt.Sprintf("Type %q in the path is invalid: expected 0 (Dial-In), 1 (Dial-Out), 2 (Hangup), 3 (Answer-In) or 4 (Answer-Out).", callevents.Truncate(t, 32)))
		}
		typ := callevents.EventType(n)
		rr.typ = &typ
	}
	rr.id = r.PathValue("id")
	return rr, nil
}

// pathTypeError names a 301 from the service as the path's, when the type
// came from the path.
func pathTypeError(err error, fromPath bool) error {
	if fromPath && callevents.ErrorCode(err, 0) == callevents.CodeTypeInvalid && callevents.ErrorField(err) == "" {
		return callevents.FieldError(callevents.CodeTypeInvalid, fieldPathType, callevents.ErrorMessage(err))
	}
	return err
}

// restBody is a decoded PhoneCallEvent body; nil fields were absent (or null).
type restBody struct {
	typ    *callevents.EventType
	method *callevents.Method
	status *callevents.Status
	url    *string
	note   *string
	secret *string
}

// update is the body as the root takes it, to add or to change a Call
// Event: the rules (trimming, the empty URL) are the root's.
func (b restBody) update() callevents.CallEventUpdate {
	return callevents.CallEventUpdate{URL: b.url, Method: b.method, Status: b.status, Note: b.note, Secret: b.secret}
}

// restNumberFields and restStringFields are the body's fields by JSON
// type; a value of the wrong type is refused with the field's code
// (callevents.FieldCode).
var (
	restNumberFields = []string{"type", "method", "status"}
	restStringFields = []string{"url", "note", "secret"}
)

// decodeRestBody reads a JSON object of PhoneCallEvent fields. Numbers may
// be JSON numbers or strings; an unknown field is a 400 naming it.
func (s *Server) decodeRestBody(r *http.Request) (restBody, error) {
	var out restBody
	raw, err := readBody(r, s.maxBody)
	if err != nil {
		return out, err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return out, callevents.Errorf(callevents.CodeMalformedRequest, "The body is empty: send a PhoneCallEvent as a JSON object.")
	}
	if bytes.TrimSpace(raw)[0] != '{' {
		return out, callevents.Errorf(callevents.CodeMalformedRequest, "The body must be a JSON object.")
	}
	var fields map[string]json.RawMessage
	if err := decodeJSON(raw, &fields); err != nil {
		return out, err
	}
	if fields == nil {
		return out, callevents.Errorf(callevents.CodeMalformedRequest, "The body must be a JSON object.")
	}
	for _, field := range sortedFields(fields) {
		name, value := field.name, field.value
		if string(bytes.TrimSpace(value)) == "null" {
			continue
		}
		if slices.Contains(restNumberFields, name) {
			n, err := restNumber(value)
			if err != nil {
				return out, callevents.FieldError(callevents.FieldCode(name), name, fmt.Sprintf("%s is invalid: expected a number, as a JSON number or string.", name))
			}
			switch name {
			case "type":
				t := callevents.EventType(n)
				out.typ = &t
			case "method":
				m := callevents.Method(n)
				out.method = &m
			case "status":
				st := callevents.Status(n)
				out.status = &st
			}
			continue
		}
		if slices.Contains(restStringFields, name) {
			var v string
			if err := json.Unmarshal(value, &v); err != nil {
				return out, callevents.FieldError(callevents.FieldCode(name), name, name+" is invalid: expected a JSON string.")
			}
			switch name {
			case "url":
				out.url = &v
			case "note":
				out.note = &v
			case "secret":
				out.secret = &v
			}
			continue
		}
		return out, callevents.FieldError(callevents.CodeMalformedRequest, name, fmt.Sprintf("Unknown field %q: the fields are type, method, url, status, note and secret.", callevents.Truncate(name, 64)))
	}
	return out, nil
}

// restNumber reads an integer written as a JSON number or a JSON string.
func restNumber(value json.RawMessage) (int, error) {
	var s string
	if json.Unmarshal(value, &s) != nil {
		var num json.Number
		if err := json.Unmarshal(value, &num); err != nil {
			return 0, err
		}
		s = num.String()
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	return int(n), err
}

// typeOf returns the create's type: the path's or the body's; both must agree.
func typeOf(rr restRequest, body restBody) (callevents.EventType, bool, error) {
	switch {
	case rr.typ != nil && body.typ != nil && *rr.typ != *body.typ:
		return 0, false, callevents.FieldError(callevents.CodeTypeInvalid, fieldPathType, fmt.Sprintf("Type %d in the body differs from type %d in the path.", *body.typ, *rr.typ))
	case rr.typ != nil:
		return *rr.typ, true, nil
	case body.typ != nil:
		return *body.typ, false, nil
	}
	return 0, false, callevents.FieldError(callevents.CodeTypeInvalid, fieldPathType, "Type is missing: give it in the path (…/phoneCallEvents/{type}) or in the body.")
}

func (s *Server) restCreate(w http.ResponseWriter, r *http.Request, rr restRequest) error {
	body, err := s.decodeRestBody(r)
	if err != nil {
		return err
	}
	typ, fromPath, err := typeOf(rr, body)
	if err != nil {
		return err
	}
	c, err := s.callEvents.AddCallEvent(r.Context(), rr.p, rr.ext, typ, body.update())
	if err != nil {
		return pathTypeError(err, fromPath)
	}
	return writeJSON(w, http.StatusOK, restEvent(s.origin(r), c, nil))
}

func (s *Server) restUpdate(w http.ResponseWriter, r *http.Request, rr restRequest) error {
	body, err := s.decodeRestBody(r)
	if err != nil {
		return err
	}
	if body.typ != nil && *body.typ != *rr.typ {
		return callevents.FieldError(callevents.CodeTypeInvalid, fieldPathType, "The type of a phone call event cannot change: it is the one in the path.")
	}
	c, err := s.callEvents.EditCallEvent(r.Context(), rr.p, rr.ext, *rr.typ, rr.id, body.update())
	if err != nil {
		return pathTypeError(err, true)
	}
	return writeJSON(w, http.StatusOK, restEvent(s.origin(r), c, nil))
}

func (s *Server) restDelete(w http.ResponseWriter, r *http.Request, rr restRequest) error {
	f := callevents.CallEventFilter{Extension: rr.ext, Type: rr.typ}
	if rr.id != "" {
		f.ID = &rr.id
	}
	ids, err := s.callEvents.DeleteCallEvents(r.Context(), rr.p, f)
	if err != nil {
		return pathTypeError(err, true)
	}
	if ids == nil {
		ids = []string{}
	}
	return writeJSON(w, http.StatusOK, map[string][]string{"deleted": ids})
}

// restFieldNames are the PhoneCallEvent fields, in the order they are written.
var restFieldNames = []string{"id", "type", "method", "url", "status", "note", "modified"}

// restGet lists the extension's Call Events (of the path's type, and with
// its id when given) as a UnifiedAPI Collection: entry, startIndex,
// itemsPerPage, totalResults, links. One by id is the List narrowed to
// that id, as in the UnifiedAPI: the same Collection envelope (a client
// reads entry either way), paging and filter included. The store pages
// and filters, so totalResults counts every match.
func (s *Server) restGet(w http.ResponseWriter, r *http.Request, rr restRequest) error {
	q := r.URL.Query()
	var fields []string
	if v := q.Get("fields"); v != "" {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(restFieldNames, name) {
				return callevents.FieldError(callevents.CodeMalformedRequest, "fields", fmt.Sprintf("fields: unknown field %q: the fields are %s.", callevents.Truncate(name, 64), strings.Join(restFieldNames, ", ")))
			}
			fields = append(fields, name)
		}
	}
	start, count, err := restPaging(q)
	if err != nil {
		return err
	}
	match, matchable, err := restMatch(q)
	if err != nil {
		return err
	}
	f := callevents.CallEventFilter{Extension: rr.ext, Type: rr.typ, Match: match, Offset: start, Limit: count}
	if rr.id != "" {
		f.ID = &rr.id
	}
	items, total, err := s.callEvents.FindCallEvents(r.Context(), rr.p, f)
	if err != nil {
		return pathTypeError(err, true)
	}
	if !matchable {
		// Asked all the same, for its refusals (an unknown id is 255).
		items, total = nil, 0
	}
	origin := s.origin(r)
	entry := make([]jsonObject, len(items))
	for i, c := range items {
		entry[i] = restEvent(origin, c, fields)
	}
	links := jsonObject{{"self", pageURL(origin, r, start)}}
	// start+count cannot overflow: ValidatePaging bounds both.
	if start+count < total {
		links = append(links, jsonPair{"next", pageURL(origin, r, start+count)})
	}
	if start > 0 {
		links = append(links, jsonPair{"prev", pageURL(origin, r, max(0, start-count))})
	}
	return writeJSON(w, http.StatusOK, jsonObject{
		{"entry", entry},
		{"startIndex", strconv.Itoa(start)},
		{"itemsPerPage", strconv.Itoa(count)},
		{"totalResults", strconv.Itoa(total)},
		{"links", links},
	})
}

// restMatch reads filterBy and filterValue: the Call Events whose field,
// written as the facade writes it (restFieldValue), is exactly the value.
// A value that no Call Event's field is written as ("01" for a number, a
// time in another form) matches nothing: matchable is false.
func restMatch(q url.Values) (m callevents.CallEventMatch, matchable bool, err error) {
	by := q.Get("filterBy")
	if by == "" {
		return m, true, nil
	}
	if !slices.Contains(restFieldNames, by) {
		return m, false, callevents.FieldError(callevents.CodeMalformedRequest, "filterBy", fmt.Sprintf("filterBy %q is invalid: expected one of %s.", callevents.Truncate(by, 64), strings.Join(restFieldNames, ", ")))
	}
	value := q.Get("filterValue")
	switch by {
	case "id":
		m.ID = &value
	case "url":
		m.URL = &value
	case "note":
		m.Note = &value
	case "type", "method", "status":
		n, ok := restDecimal(value)
		if !ok {
			return m, false, nil
		}
		t, me, st := callevents.EventType(n), callevents.Method(n), callevents.Status(n)
		switch by {
		case "type":
			m.Type = &t
		case "method":
			m.Method = &me
		case "status":
			m.Status = &st
		}
	case "modified":
		t, err := time.Parse(restTimeLayout, value)
		if err != nil || t.UTC().Format(restTimeLayout) != value {
			return m, false, nil
		}
		m.Modified = &t
	}
	return m, true, nil
}

// restDecimal reads s as a number written the facade's way, in decimal
// without sign or leading zeros; false for anything else ("01", "+1").
func restDecimal(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && strconv.Itoa(n) == s
}

// restPaging reads the startIndex (default 0) and count (default
// PageCountDefault) query parameters, for the one paging rule,
// callevents.ValidatePaging, which FindCallEvents holds them to: a
// refusal is 400 paging_invalid.
func restPaging(q url.Values) (start, count int, err error) {
	if start, err = queryInt(q, "startIndex", 0); err != nil {
		return 0, 0, err
	}
	if count, err = queryInt(q, "count", callevents.PageCountDefault); err != nil {
		return 0, 0, err
	}
	return start, count, nil
}

// queryInt reads an integer query parameter; a non-number is a paging
// error. A number too large for an int reads as the largest (or the
// smallest) int, as strconv.ParseInt saturates it, for ValidatePaging to
// refuse: nothing wraps around.
func queryInt(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, strconv.IntSize)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, callevents.FieldError(callevents.CodePagingInvalid, name, fmt.Sprintf("Paging is invalid: %s %q is not a number.", name, callevents.Truncate(v, 32)))
	}
	return int(n), nil
}

// pageURL is the request's own URL, under origin, with startIndex set.
func pageURL(origin string, r *http.Request, start int) string {
	q := r.URL.Query()
	q.Set("startIndex", strconv.Itoa(start))
	return origin + r.URL.EscapedPath() + "?" + q.Encode()
}

// restTimeLayout is how the facade writes a time: ISO 8601 with the
// offset, +00:00, as the UnifiedAPI does.
const restTimeLayout = "2006-01-02T15:04:05-07:00"

// restFieldValue is a field of c as the facade writes it.
func restFieldValue(c callevents.CallEvent, name string) string {
	switch name {
	case "id":
		return c.ID
	case "type":
		return strconv.Itoa(int(c.Type))
	case "method":
		return strconv.Itoa(int(c.Method))
	case "url":
		return c.URL
	case "status":
		return strconv.Itoa(int(c.Status))
	case "note":
		return c.Note
	case "modified":
		return c.Modified.UTC().Format(restTimeLayout)
	}
	return ""
}

// restEvent is c as a UnifiedAPI PhoneCallEvent (numbers as strings, no
// secret), with only fields when given, and always links.self under origin
// (Server.origin).
func restEvent(origin string, c callevents.CallEvent, fields []string) jsonObject {
	if fields == nil {
		fields = restFieldNames
	}
	out := make(jsonObject, 0, len(restFieldNames)+1)
	for _, name := range restFieldNames {
		if slices.Contains(fields, name) {
			out = append(out, jsonPair{name, restFieldValue(c, name)})
		}
	}
	self := fmt.Sprintf("%s/uapi/extensions/@me/%s/phoneCallEvents/%d/%s", origin, c.Extension, c.Type, url.PathEscape(c.ID))
	return append(out, jsonPair{"links", jsonObject{{"self", self}}})
}
