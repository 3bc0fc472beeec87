package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/callevents/callevents"
)

var errUsage = errors.New("usage")

// config is every setting of the command, from flags and CALLEVENTS_* env.
type config struct {
	Listen          string
	DB              string
	MaxPerExtension int
	TokenTTL        time.Duration
	LogFormat       string
	LogLevel        string
	ShutdownTimeout time.Duration
}

// Defaults (documented in the README).
const (
	listenDefault          = ":8080"
	dbDefault              = "sqlite:callevents.db"
	shutdownTimeoutDefault = 15 * time.Second
)

// newFlagSet declares the flags shared by the commands that open the
// database, and the serve flags when serve is true.
func newFlagSet(name string, cfg *config, serve bool, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.DB, "db", dbDefault, "database: sqlite:PATH (embedded) or mysql://user:pass@host:3306/name")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	if serve {
		fs.StringVar(&cfg.Listen, "listen", listenDefault, "HTTP listen address")
		fs.IntVar(&cfg.MaxPerExtension, "max-per-extension", callevents.MaxCallEventsPerExtensionDefault, "most Call Events one extension may have")
		fs.DurationVar(&cfg.TokenTTL, "token-ttl", callevents.TokenTTLDefault, "lifetime of issued access tokens")
		fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", shutdownTimeoutDefault, "how long a graceful shutdown waits for requests in flight")
	}
	return fs
}

// parseFlags sets each flag from CALLEVENTS_<NAME> first (dashes become
// underscores), so that command-line flags win over the environment.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := "CALLEVENTS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %v", key, v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage
		}
		return errUsage
	}
	return nil
}

func newLogger(cfg config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: expected debug, info, warn or error", cfg.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: expected text or json", cfg.LogFormat)
}

// redactDSN hides the password of a mysql:// DSN for logging.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
