package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/callevents/callevents"
)

// newLogger builds the command's logger. Every attribute passes through
// redactAttr first: whatever a component logs, a secret does not reach the
// log.
func newLogger(f logFlags, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.Level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: expected debug, info, warn or error", f.Level)
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr}
	switch f.Format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: expected json or text", f.Format)
}

// redactAttr hides secrets in a log attribute: the whole value of one
// named like a secret (password, client_secret, access_token, …), and URL
// passwords and credential query values inside any other text or error.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindGroup {
		return a
	}
	if callevents.SensitiveName(a.Key) {
		return slog.String(a.Key, callevents.Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); strings.Contains(s, "://") {
			return slog.String(a.Key, callevents.RedactText(s))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			return slog.String(a.Key, callevents.RedactText(err.Error()))
		}
	}
	return a
}
