package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/cmd/internal/cliflag"
	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/store"
)

// The flags come in groups, one per concern; each command's config lists
// the groups it reads (serveConfig, dispatchConfig, amiConfig, toolConfig)
// and registers only those. Defaults are documented in the README.

// dbFlags is the database: every command but fire.
type dbFlags struct {
	DSN string
}

func (f *dbFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.DSN, "db", store.DSNDefault, "database: sqlite:PATH (embedded) or mysql://user:pass@host:3306/name")
}

// logFlags is the logger (see newLogger): every command that opens the
// database.
type logFlags struct {
	Format, Level string
}

func (f *logFlags) register(fs *flag.FlagSet) {
	cliflag.Text(fs, &f.Format, "log-format", "json", cliflag.OneOf("a log format", "json", "text"), "log format: json (one object per line) or text")
	cliflag.Text(fs, &f.Level, "log-level", "info", cliflag.OneOf("a log level", "debug", "info", "warn", "error"), "log level: debug, info, warn or error")
}

// tlsFlags is the certificate of a listener (see tlsFlags.config): serve's
// --listen, or the --metrics-listen of dispatch and ami.
type tlsFlags struct {
	Cert, Key string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.Cert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS instead of HTTP (with --tls-key)")
	fs.StringVar(&f.Key, "tls-key", "", "PEM private key file of --tls-cert")
}

// listenDefault is serve's --listen.
const listenDefault = ":8080"

// apiFlags is serve's HTTP API (see newAPI): where it listens, and the
// limits of its edges.
type apiFlags struct {
	Listen          string
	TLS             tlsFlags
	MaxPerExtension int
	TokenTTL        time.Duration
	TrustedProxies  string // whose forwarding headers the edges believe
	Console         bool
	ConsoleTTL      time.Duration
}

func (f *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.Listen, "listen", listenDefault, "HTTP listen address")
	f.TLS.register(fs)
	cliflag.Int(fs, &f.MaxPerExtension, "max-per-extension", callevents.MaxCallEventsPerExtensionDefault, 0, "", "most Call Events one extension may have")
	cliflag.Duration(fs, &f.TokenTTL, "token-ttl", callevents.TokenTTLDefault, "lifetime of issued access tokens")
	cliflag.Bool(fs, &f.Console, "console", true, "serve the admin console at /console/")
	cliflag.Duration(fs, &f.ConsoleTTL, "console-session-ttl", callevents.ConsoleSessionTTLDefault, "how long a console session lasts without use (each use extends it)")
	cliflag.List(fs, &f.TrustedProxies, "trusted-proxies", "", checkTrustedProxies, "comma-separated CIDRs or addresses of reverse proxies whose X-Forwarded-For names the caller for the rate limits (e.g. 10.0.0.5,192.168.0.0/24)")
}

// metricsFlags is the operator listener (/metrics, /healthz, /readyz; see
// startOpsServer) of the processes without an API: dispatch and ami.
type metricsFlags struct {
	Listen string // empty: none
	TLS    tlsFlags
}

func (f *metricsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.Listen, "metrics-listen", "", "address to serve /metrics, /healthz and /readyz on, e.g. :9090 (empty: none)")
	f.TLS.register(fs)
}

// outboundFlags is where Call Event URLs may point: the API checks a URL
// when it is added or edited, the dispatcher again when it connects, so
// serve and dispatch both read it.
type outboundFlags struct {
	AllowTargets string
}

func (f *outboundFlags) register(fs *flag.FlagSet) {
	cliflag.List(fs, &f.AllowTargets, "allow-targets", "", checkAllowTargets, "comma-separated CIDRs and host names that Call Event URLs may reach although private or loopback (e.g. 10.0.0.0/8,crm.internal)")
}

// policy is the outbound policy of --allow-targets.
func (f outboundFlags) policy() (*dispatcher.OutboundPolicy, error) {
	policy, err := dispatcher.ParseAllowTargets(f.AllowTargets)
	if err != nil {
		return nil, fmt.Errorf("--allow-targets: %w", err)
	}
	return policy, nil
}

// deliveryFlags tunes the dispatcher (see newDispatcher): serve and
// dispatch.
type deliveryFlags struct {
	Concurrency int
	// ReceiverConcurrency 0 is a quarter of Concurrency; OrderHold 0 is
	// no limit (the flag defaults to 60 s); BreakerFailures 0 is 5.
	ReceiverConcurrency int
	OrderHold           time.Duration
	BreakerFailures     int
	Timeout             time.Duration
	Lease               time.Duration
	RescueInterval      time.Duration
	Retention           time.Duration
}

func (f *deliveryFlags) register(fs *flag.FlagSet) {
	cliflag.Int(fs, &f.Concurrency, "concurrency", dispatcher.ConcurrencyDefault, 0, "", "deliveries in flight at once, per process")
	cliflag.Int(fs, &f.ReceiverConcurrency, "receiver-concurrency", 0, 0, "32", "deliveries in flight at once to one receiver origin (scheme, host, port), per process; one that answers fast may borrow slots no other origin can use (0: a quarter of --concurrency, 32 by default)")
	cliflag.Duration(fs, &f.OrderHold, "order-hold", dispatcher.OrderHoldDefault, "how long a due delivery waits behind an unfinished earlier one of its order key before it goes out anyway (0: no limit)")
	cliflag.Int(fs, &f.BreakerFailures, "breaker-failures", dispatcher.BreakerFailuresDefault, 0, "", "failed attempts in a row (no answer, timeout, 5xx) that pause an organization's deliveries to a receiver origin until a probe gets an answer, per process")
	cliflag.Duration(fs, &f.Timeout, "delivery-timeout", dispatcher.TimeoutDefault, "HTTP timeout of one delivery attempt")
	cliflag.Duration(fs, &f.Lease, "lease", dispatcher.LeaseDefault, "how long a claimed delivery stays with its process before another may take it (more than --delivery-timeout)")
	cliflag.Duration(fs, &f.RescueInterval, "rescue-interval", dispatcher.RescueIntervalDefault, "how often expired leases are freed")
	cliflag.Duration(fs, &f.Retention, "retention", dispatcher.RetentionDefault, "how long finished deliveries stay in the delivery log")
}

// shutdownTimeoutDefault is --shutdown-timeout.
const shutdownTimeoutDefault = 15 * time.Second

// shutdownFlags is the budget of a graceful stop: serve and dispatch. It
// is one deadline for every step of the stop, not one per step (see
// runServe).
type shutdownFlags struct {
	Timeout time.Duration
}

func (f *shutdownFlags) register(fs *flag.FlagSet) {
	cliflag.Duration(fs, &f.Timeout, "shutdown-timeout", shutdownTimeoutDefault, "how long a graceful shutdown waits for requests and deliveries in flight")
}

// amiFlags is the Asterisk Manager Interface source (see newAMI): ami, and
// serve with --ami-addr.
type amiFlags struct {
	Addr, User, Secret string
	Org, Map, DIDs     string
}

// register declares the flags with prefix ("ami-" for serve, which has
// other flags; none for ami) and note added to --addr's help.
func (f *amiFlags) register(fs *flag.FlagSet, prefix, note string) {
	fs.StringVar(&f.Addr, prefix+"addr", "", "Asterisk Manager Interface host:port, e.g. 127.0.0.1:5038"+note)
	fs.StringVar(&f.User, prefix+"user", "", "AMI user (manager.conf, with read = call)")
	fs.StringVar(&f.Secret, prefix+"secret", "", "AMI secret")
	cliflag.Text(fs, &f.Org, prefix+"org", "", checkOrg, "organization code: endpoint 210 becomes <org>*210")
	cliflag.List(fs, &f.Map, prefix+"map", "", checkAMIMap, "explicit endpoint map, e.g. 210=0003*210,alice=0003*211 (wins over --"+prefix+"org)")
	cliflag.List(fs, &f.DIDs, prefix+"dids", "", checkDIDs, "comma-separated public numbers (DIDs): a call dialled to one gets CalledDID")
}
