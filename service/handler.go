package service

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/callevents/callevents"
)

// Every endpoint has one shape (tailscale's return handler): a handler
// writes its success and returns anything else as an error, and serve,
// the one wrapper, decides what the client sees through the error writer
// of the endpoint's wire format (writeFault, writeJSONError,
// writeOAuthError), each of which counts the answer once.

// handler serves one request: it writes a success itself and returns
// every failure, unwritten.
type handler func(w http.ResponseWriter, r *http.Request) error

// endpoint is what serve needs to know of an endpoint beyond its handler.
type endpoint struct {
	// edge and operation are what its answers are counted under; the
	// handler may name the operation once it knows it (setOperation).
	edge, operation string
	// fallback is the code of an uncoded error (an operation may set its
	// own) and of the answer to a panic.
	fallback callevents.Code
	// writeError answers a failure in the endpoint's wire format and
	// counts it.
	writeError func(s *Server, w http.ResponseWriter, r *http.Request, err error)
}

// serve runs h for one request of e: the request id, panic recovery, and
// the one answer to a failure. A success is counted when h starts writing
// it, before the client can see any of it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, e endpoint, h handler) {
	r, info := withRequestID(w, r, e)
	aw := &answerWriter{ResponseWriter: w, s: s, r: r}
	defer s.recoverPanic(r, info.id, func() {
		e.writeError(s, w, r, callevents.Errorf(e.fallback, "Internal error. Quote request id %s.", info.id))
	})
	err := h(aw, r)
	switch {
	case err == nil:
		aw.start() // a success with nothing to write is still counted
	case aw.started:
		// Too late to answer it: the success is out (and counted).
		s.logFailure(r, errorCode(r, err), err)
	default:
		e.writeError(s, w, r, err)
	}
}

// answerWriter counts a success (served, code 0) the first time its
// handler writes a header or a byte.
type answerWriter struct {
	http.ResponseWriter
	s       *Server
	r       *http.Request
	started bool
}

func (w *answerWriter) start() {
	if !w.started {
		w.started = true
		w.s.served(w.r, 0)
	}
}

func (w *answerWriter) WriteHeader(status int) {
	w.start()
	w.ResponseWriter.WriteHeader(status)
}

func (w *answerWriter) Write(b []byte) (int, error) {
	w.start()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *answerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// httpError is a refusal about the HTTP exchange rather than the request's
// content: a wrong method (405) or a rate limit (429). Its coded error,
// 400 or 100 as SPEC.md §4 has no code of its own for either, is what the
// answer is counted under and what a SOAP fault shows; the JSON edges
// answer status with name as their error code. Retry-After is sent when
// retryAfter is set.
type httpError struct {
	status     int
	name       string
	err        *callevents.Error
	retryAfter time.Duration
}

func (e *httpError) Error() string { return e.err.Message }

func (e *httpError) Unwrap() error { return e.err }

// methodNotAllowed is the 405 of an endpoint that takes only allow; w
// gets the Allow header.
func methodNotAllowed(w http.ResponseWriter, allow, name, message string) error {
	w.Header().Set("Allow", allow)
	return &httpError{status: http.StatusMethodNotAllowed, name: name, err: callevents.Errorf(callevents.CodeMalformedRequest, "%s", message)}
}

// setRetryAfter sets Retry-After for an httpError that asks for it.
func setRetryAfter(w http.ResponseWriter, err error) {
	var he *httpError
	if errors.As(err, &he) && he.retryAfter > 0 {
		// Whole seconds, at least 1.
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(he.retryAfter.Seconds())))))
	}
}

// served tells the Observer that r was answered with code (0: success),
// and logs it at debug level (an access log, off by default): called once
// per request, where the answer is written.
func (s *Server) served(r *http.Request, code callevents.Code) {
	if info, ok := r.Context().Value(requestIDKey{}).(*requestInfo); ok {
		s.obs.RequestServed(info.edge, info.operation, code)
		if !s.log.Enabled(r.Context(), slog.LevelDebug) {
			return // spares building the record on every request
		}
		s.log.DebugContext(r.Context(), "service: request served", "request_id", info.id, "edge", info.edge, "operation", info.operation,
			"code", int(code), "remote_addr", r.RemoteAddr, "duration_ms", time.Since(info.start).Milliseconds())
	}
}

// logFailure logs, once per request, a failure whose details the client
// does not see: at Warn when the database is unavailable (it heals by
// itself; metrics and /readyz tell the story), at Info when the client had
// already gone (nobody waits for the answer), else at Error.
func (s *Server) logFailure(r *http.Request, code callevents.Code, err error) {
	ctx := r.Context()
	attrs := []any{"request_id", requestID(ctx), "code", int(code), "error", err.Error()}
	switch {
	case ctx.Err() != nil:
		s.log.InfoContext(ctx, "service: client went away before the answer", attrs...)
	case errors.Is(err, callevents.ErrUnavailable):
		s.log.WarnContext(ctx, "service: database unavailable", attrs...)
	default:
		s.log.ErrorContext(ctx, "service: internal error", attrs...)
	}
}

// recoverPanic, deferred by a handler, turns a panic into that handler's
// internal-error answer, logged once with the request id and the stack.
// http.ErrAbortHandler is passed on: it is net/http's way to abort.
func (s *Server) recoverPanic(r *http.Request, id string, answer func()) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	s.log.ErrorContext(r.Context(), "service: panic", "request_id", id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	answer()
}
