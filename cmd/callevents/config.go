package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/cmd/internal/cliflag"
	"github.com/callevents/callevents/dispatcher"
)

// config is every setting of the command, from flags and CALLEVENTS_* env.
type config struct {
	Listen          string
	DB              string
	MaxPerExtension int
	TokenTTL        time.Duration
	LogFormat       string
	LogLevel        string
	ShutdownTimeout time.Duration
	TLSCert         string // serve's listener, or --metrics-listen's
	TLSKey          string
	MetricsListen   string // dispatch and ami: /metrics, /healthz, /readyz
	TrustedProxies  string // serve: whose X-Forwarded-For the rate limits believe

	// Delivery (serve and dispatch).
	Dispatch     bool // serve: run the dispatcher in this process
	AllowTargets string
	Concurrency  int
	// ReceiverConcurrency 0 is a quarter of Concurrency; OrderHold 0 is
	// no limit (the flag defaults to 60 s); BreakerFailures 0 is 5.
	ReceiverConcurrency int
	OrderHold           time.Duration
	BreakerFailures     int
	DeliveryTimeout     time.Duration
	Lease               time.Duration
	Retention           time.Duration
	RescueInterval      time.Duration

	// Asterisk Manager Interface source (serve with --ami-addr, and ami).
	AMIAddr   string
	AMIUser   string
	AMISecret string
	AMIOrg    string
	AMIMap    string
	AMIDIDs   string
}

// Defaults (documented in the README).
const (
	listenDefault          = ":8080"
	dbDefault              = "sqlite:callevents.db"
	shutdownTimeoutDefault = 15 * time.Second
)

// Commands, for the flags they take.
const (
	cmdOther = iota
	cmdServe
	cmdDispatch
	cmdAMI
)

// newFlagSet declares the flags shared by the commands that open the
// database, and those of serve and dispatch.
func newFlagSet(name string, cfg *config, command int, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, "usage: callevents %s [flags]\n", name); cliflag.PrintDefaults(fs) }
	fs.StringVar(&cfg.DB, "db", dbDefault, "database: sqlite:PATH (embedded) or mysql://user:pass@host:3306/name")
	cliflag.Text(fs, &cfg.LogFormat, "log-format", "json", cliflag.OneOf("a log format", "json", "text"), "log format: json (one object per line) or text")
	cliflag.Text(fs, &cfg.LogLevel, "log-level", "info", cliflag.OneOf("a log level", "debug", "info", "warn", "error"), "log level: debug, info, warn or error")
	if command == cmdServe {
		fs.StringVar(&cfg.Listen, "listen", listenDefault, "HTTP listen address")
		cliflag.Int(fs, &cfg.MaxPerExtension, "max-per-extension", callevents.MaxCallEventsPerExtensionDefault, 0, "", "most Call Events one extension may have")
		cliflag.Duration(fs, &cfg.TokenTTL, "token-ttl", callevents.TokenTTLDefault, "lifetime of issued access tokens")
		cliflag.List(fs, &cfg.TrustedProxies, "trusted-proxies", "", checkTrustedProxies, "comma-separated CIDRs or addresses of reverse proxies whose X-Forwarded-For names the caller for the rate limits (e.g. 10.0.0.5,192.168.0.0/24)")
		cliflag.Bool(fs, &cfg.Dispatch, "dispatch", true, "also deliver call events from this process (false: API only, with separate dispatch processes)")
	}
	if command == cmdServe || command == cmdDispatch || command == cmdAMI {
		fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS instead of HTTP (with --tls-key)")
		fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key file of --tls-cert")
	}
	if command == cmdDispatch || command == cmdAMI {
		fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "address to serve /metrics, /healthz and /readyz on, e.g. :9090 (empty: none)")
	}
	if command == cmdServe || command == cmdDispatch {
		cliflag.Duration(fs, &cfg.ShutdownTimeout, "shutdown-timeout", shutdownTimeoutDefault, "how long a graceful shutdown waits for requests and deliveries in flight")
		cliflag.List(fs, &cfg.AllowTargets, "allow-targets", "", checkAllowTargets, "comma-separated CIDRs and host names that Call Event URLs may reach although private or loopback (e.g. 10.0.0.0/8,crm.internal)")
		cliflag.Int(fs, &cfg.Concurrency, "concurrency", dispatcher.ConcurrencyDefault, 0, "", "deliveries in flight at once, per process")
		cliflag.Int(fs, &cfg.ReceiverConcurrency, "receiver-concurrency", 0, 0, "32", "deliveries in flight at once to one receiver origin (scheme, host, port), per process; one that answers fast may borrow slots no other origin can use (0: a quarter of --concurrency, 32 by default)")
		cliflag.Duration(fs, &cfg.OrderHold, "order-hold", dispatcher.OrderHoldDefault, "how long a due delivery waits behind an unfinished earlier one of its order key before it goes out anyway (0: no limit)")
		cliflag.Int(fs, &cfg.BreakerFailures, "breaker-failures", dispatcher.BreakerFailuresDefault, 0, "", "failed attempts in a row (no answer, timeout, 5xx) that pause an organization's deliveries to a receiver origin until a probe gets an answer, per process")
		cliflag.Duration(fs, &cfg.DeliveryTimeout, "delivery-timeout", dispatcher.TimeoutDefault, "HTTP timeout of one delivery attempt")
		cliflag.Duration(fs, &cfg.Lease, "lease", dispatcher.LeaseDefault, "how long a claimed delivery stays with its process before another may take it (more than --delivery-timeout)")
		cliflag.Duration(fs, &cfg.RescueInterval, "rescue-interval", dispatcher.RescueIntervalDefault, "how often expired leases are freed")
		cliflag.Duration(fs, &cfg.Retention, "retention", dispatcher.RetentionDefault, "how long finished deliveries stay in the delivery log")
	}
	switch command {
	case cmdServe:
		declareAMIFlags(fs, cfg, "ami-", " (serve: read calls from Asterisk when set)")
	case cmdAMI:
		declareAMIFlags(fs, cfg, "", "")
	}
	return fs
}

// declareAMIFlags declares the AMI source's flags, with prefix for serve.
func declareAMIFlags(fs *flag.FlagSet, cfg *config, prefix, note string) {
	fs.StringVar(&cfg.AMIAddr, prefix+"addr", "", "Asterisk Manager Interface host:port, e.g. 127.0.0.1:5038"+note)
	fs.StringVar(&cfg.AMIUser, prefix+"user", "", "AMI user (manager.conf, with read = call)")
	fs.StringVar(&cfg.AMISecret, prefix+"secret", "", "AMI secret")
	cliflag.Text(fs, &cfg.AMIOrg, prefix+"org", "", checkOrg, "organization code: endpoint 210 becomes <org>*210")
	cliflag.List(fs, &cfg.AMIMap, prefix+"map", "", checkAMIMap, "explicit endpoint map, e.g. 210=0003*210,alice=0003*211 (wins over --"+prefix+"org)")
	cliflag.List(fs, &cfg.AMIDIDs, prefix+"dids", "", checkDIDs, "comma-separated public numbers (DIDs): a call dialled to one gets CalledDID")
}

// newLogger builds the command's logger. Every attribute passes through
// redactAttr first: whatever a component logs, a secret does not reach the
// log.
func newLogger(cfg config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: expected debug, info, warn or error", cfg.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr}
	switch cfg.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: expected json or text", cfg.LogFormat)
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
