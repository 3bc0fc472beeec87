package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/callevents/callevents"
)

// jsonErrorKind is how a code of SPEC.md §4 looks on a JSON edge: its HTTP
// status and its string code. 301–306 use the UnifiedAPI names (SPEC.md §5);
// a 301 whose Field is the {type} path segment is pcet_type_invalid. An
// expired token (102) is unauthorized too, as SPEC.md §5 has no code of its
// own for it: the message says it expired.
type jsonErrorKind struct {
	status int
	code   string
}

var jsonErrorKinds = map[callevents.Code]jsonErrorKind{
	callevents.CodeAuthInvalid:       {http.StatusUnauthorized, "unauthorized"},
	callevents.CodeTokenExpired:      {http.StatusUnauthorized, "unauthorized"},
	callevents.CodeAccessDenied:      {http.StatusForbidden, "forbidden"},
	callevents.CodeMissingParameter:  {http.StatusBadRequest, "missing_parameter"},
	callevents.CodeRetrieveFailed:    {http.StatusInternalServerError, "internal_error"},
	callevents.CodeUpdateFailed:      {http.StatusInternalServerError, "internal_error"},
	callevents.CodeExtensionInvalid:  {http.StatusBadRequest, "extension_invalid"},
	callevents.CodeCallEventNotFound: {http.StatusNotFound, "pce_id_invalid"},
	callevents.CodeDeliveryNotFound:  {http.StatusNotFound, "not_found"},
	callevents.CodeTypeInvalid:       {http.StatusBadRequest, "pce_type_invalid"},
	callevents.CodeMethodInvalid:     {http.StatusBadRequest, "pce_method_invalid"},
	callevents.CodeURLInvalid:        {http.StatusBadRequest, "pce_url_invalid"},
	callevents.CodeStatusInvalid:     {http.StatusBadRequest, "pce_status_invalid"},
	callevents.CodeNoteInvalid:       {http.StatusBadRequest, "pce_note_invalid"},
	callevents.CodeSecretInvalid:     {http.StatusBadRequest, "pce_secret_invalid"},
	callevents.CodePagingInvalid:     {http.StatusBadRequest, "paging_invalid"},
	callevents.CodeLimitReached:      {http.StatusBadRequest, "pce_limit_reached"},
	callevents.CodeTargetNotAllowed:  {http.StatusBadRequest, "pce_url_not_allowed"},
	callevents.CodeMalformedRequest:  {http.StatusBadRequest, "invalid_request"},
}

// retryAfterUnavailable is the Retry-After of a 503 answered while the
// database is unavailable: long enough not to hammer a database on its way
// back, short enough that a PBX queue drains soon after it is.
const retryAfterUnavailable = "5"

// Public messages of a 503 (the cause is only logged).
const (
	messageUnavailable = "The database is unavailable; retry later."
	messageNotWritable = "The database is full or read-only and cannot store the request; retry later."
)

type jsonErrorBody struct {
	Error jsonErrorDetail `json:"error"`
}

type jsonErrorDetail struct {
	Code      string `json:"code"`
	Field     string `json:"field,omitempty"`
	Message   string `json:"message"`
	RequestID string `json:"requestId,omitempty"`
}

// writeJSONError is the error writer of the JSON edges (the UnifiedAPI
// facade and the intake), as writeFault is SOAP's: {"error":{"code","field","message",
// "requestId"}}. A coded client error keeps its public message and field;
// anything internal (151/152, an uncoded error, a code with no JSON form) is
// a 500 logged once with the request id, shown only by its public message,
// except that a failure of the database itself (callevents.ErrUnavailable)
// is a 503 service_unavailable with Retry-After, also logged once: the
// client did nothing wrong and the same request will succeed later. An
// httpError answers its own status and name.
func (s *Server) writeJSONError(w http.ResponseWriter, r *http.Request, err error) {
	code := errorCode(r, err) // what the answer is counted under
	detail := jsonErrorDetail{RequestID: requestID(r.Context())}
	var status int
	var he *httpError
	switch {
	case errors.As(err, &he):
		status, detail.Code, detail.Message = he.status, he.name, he.err.Message
		setRetryAfter(w, err)
	case code.Internal() && errors.Is(err, callevents.ErrUnavailable):
		s.logFailure(r, code, err) // counted under its internal code, 151 or 152
		status, detail.Code, detail.Message = http.StatusServiceUnavailable, "service_unavailable", messageUnavailable
		if errors.Is(err, callevents.ErrNotWritable) {
			detail.Message = messageNotWritable
		}
		w.Header().Set("Retry-After", retryAfterUnavailable)
	default:
		kind, known := jsonErrorKinds[code]
		if !known || code.Internal() {
			s.logFailure(r, code, err)
			kind = jsonErrorKinds[callevents.CodeRetrieveFailed]
			if !known {
				code = callevents.CodeRetrieveFailed
			}
		}
		status, detail.Code = kind.status, kind.code
		if code == callevents.CodeTypeInvalid && callevents.ErrorField(err) == fieldPathType {
			detail.Code = "pcet_type_invalid" // the UnifiedAPI's name for a bad {type} segment
		}
		detail.Message = callevents.ErrorMessage(err)
		if known && !code.Internal() {
			detail.Field = callevents.ErrorField(err)
		}
		if status == http.StatusUnauthorized {
			challenge := `Bearer realm="callevents"`
			if code == callevents.CodeTokenExpired || r.Header.Get("Authorization") != "" {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
		}
	}
	s.served(r, code)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, jsonErrorBody{Error: detail})
}

// jsonObject is a JSON object that keeps its keys in order.
type jsonObject []jsonPair

type jsonPair struct {
	key   string
	value any
}

func (o jsonObject) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, p := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(p.key)
		buf.Write(k)
		buf.WriteByte(':')
		v, err := marshalNoEscape(p.value)
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// marshalNoEscape is json.Marshal without HTML escaping: messages quote
// <access token> and URLs carry &.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// writeJSON is the one writer of a JSON answer (REST, the intake and
// their errors): v and a newline, with its length.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	out, err := marshalNoEscape(v)
	if err != nil {
		return err
	}
	out = append(out, '\n')
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(status)
	w.Write(out)
	return nil
}

// jsonField is a member of a JSON object.
type jsonField struct {
	name  string
	value json.RawMessage
}

// sortedFields returns the members of obj by name, so that the first bad
// one, the one reported, is the same on every request.
func sortedFields(obj map[string]json.RawMessage) []jsonField {
	out := make([]jsonField, 0, len(obj))
	for name, value := range obj {
		out = append(out, jsonField{name, value})
	}
	slices.SortFunc(out, func(a, b jsonField) int { return strings.Compare(a.name, b.name) })
	return out
}

// decodeJSON decodes exactly one JSON value from raw into v.
func decodeJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return callevents.Errorf(callevents.CodeMalformedRequest, "The body is not valid JSON (%s).", jsonErrorText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return callevents.Errorf(callevents.CodeMalformedRequest, "The body has data after its JSON value.")
	}
	return nil
}

// jsonErrorText describes what is wrong with the client's own document.
func jsonErrorText(err error) string {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Sprintf("%s at byte %d", syntaxErr.Error(), syntaxErr.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of input"
	}
	return "unreadable value"
}
