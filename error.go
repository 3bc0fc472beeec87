package callevents

import (
	"errors"
	"fmt"
)

// Code is the numeric error code of SPEC.md §4, the same on every edge.
type Code int

// Error codes (SPEC.md §4).
const (
	CodeAuthInvalid       Code = 100 // missing or wrong credentials
	CodeTokenExpired      Code = 102 // access token expired
	CodeAccessDenied      Code = 103 // outside the client's scope
	CodeMissingParameter  Code = 117 // "Request invalid. Missing parameter <name>"
	CodeRetrieveFailed    Code = 151 // internal error while reading
	CodeUpdateFailed      Code = 152 // internal error while writing
	CodeExtensionInvalid  Code = 254
	CodeCallEventNotFound Code = 255 // also: not visible in the scope
	CodeDeliveryNotFound  Code = 256
	CodeTypeInvalid       Code = 301
	CodeMethodInvalid     Code = 302
	CodeURLInvalid        Code = 303
	CodeStatusInvalid     Code = 304
	CodeNoteInvalid       Code = 305
	CodeSecretInvalid     Code = 306
	CodePagingInvalid     Code = 307
	CodeLimitReached      Code = 308
	CodeTargetNotAllowed  Code = 309
	CodeMalformedRequest  Code = 400
)

// ErrUnavailable marks a failure of the database itself rather than of
// the request: it cannot be reached, went away mid-request, or will not
// take writes. A store wraps it into the chain of its coded error, whose
// code stays 151 or 152, so errors.Is finds it; the edges answer "try again
// later" (HTTP 503 with Retry-After on the JSON edges, a fault saying the
// service is unavailable on SOAP) instead of an internal error, and the
// dispatcher backs off. Nothing of a failed request is stored.
var ErrUnavailable = errors.New("the database is unavailable")

// ErrNotWritable is the ErrUnavailable of a database that answers but takes
// no writes: its disk is full or it is read-only. Unlike a lost connection
// it lasts until an operator acts.
var ErrNotWritable = fmt.Errorf("%w: its disk is full or it is read-only", ErrUnavailable)

// fieldCodes are the codes of an invalid value, by request field name.
var fieldCodes = map[string]Code{
	"extension":  CodeExtensionInvalid,
	"type":       CodeTypeInvalid,
	"method":     CodeMethodInvalid,
	"url":        CodeURLInvalid,
	"status":     CodeStatusInvalid,
	"note":       CodeNoteInvalid,
	"secret":     CodeSecretInvalid,
	"startIndex": CodePagingInvalid,
	"count":      CodePagingInvalid,
}

// FieldCode returns the code of an invalid value of the request field
// name (SPEC.md §4): the one every edge answers when it cannot even decode
// the value, as the root does when it refuses one. A field without a code
// of its own is a malformed request (400).
func FieldCode(name string) Code {
	if code, ok := fieldCodes[name]; ok {
		return code
	}
	return CodeMalformedRequest
}

// Internal reports whether the code stands for a server-side failure, whose
// details are logged and never shown to a client.
func (c Code) Internal() bool { return c == CodeRetrieveFailed || c == CodeUpdateFailed }

// Error is an error with a code and a message that is safe to show a client.
// Err, when set, is the internal cause: it is logged, never shown.
type Error struct {
	Code    Code
	Message string
	// Field names the request field at fault, when there is one.
	Field string
	Err   error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns a coded error with a public message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns a coded error about one request field.
func FieldError(code Code, field, message string) *Error {
	return &Error{Code: code, Field: field, Message: message}
}

// ErrorField returns the field of the first *Error in err's chain, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// MissingParameter returns the 117 error for a required parameter.
func MissingParameter(name string) *Error {
	e := Errorf(CodeMissingParameter, "Request invalid. Missing parameter %s", name)
	e.Field = name
	return e
}

// RetrieveFailed wraps an internal read failure as code 151.
func RetrieveFailed(err error) *Error {
	return &Error{Code: CodeRetrieveFailed, Message: "Unable to retrieve data. Try again later.", Err: err}
}

// UpdateFailed wraps an internal write failure as code 152.
func UpdateFailed(err error) *Error {
	return &Error{Code: CodeUpdateFailed, Message: "Unable to update data. Try again later.", Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, or fallback
// when there is none (an uncoded error is always internal).
func ErrorCode(err error, fallback Code) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return fallback
}

// ErrorMessage returns the public message of err, or a generic one for an
// uncoded error so that no internal text can reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
