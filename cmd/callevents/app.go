package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/cmd/internal/cliflag"
	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/service"
	"github.com/callevents/callevents/service/ami"
	"github.com/callevents/callevents/store"
)

// The constructors below turn flag groups into the packages' plain
// configs, one part of the service each, so that a command builds only
// the parts it runs: serve all three, dispatch the dispatcher, ami the
// source. None of them starts anything.

// newDispatcher builds the dispatcher of f, sending only where policy
// allows; m sees its attempts and breakers.
func newDispatcher(db *store.DB, f deliveryFlags, policy *dispatcher.OutboundPolicy, m *metrics, log *slog.Logger) (*dispatcher.Dispatcher, error) {
	disp, err := dispatcher.New(dispatcher.Config{
		Store:               db,
		Logger:              log,
		Observer:            m,
		Concurrency:         f.Concurrency,
		ReceiverConcurrency: f.ReceiverConcurrency,
		OrderHold:           orderHold(f.OrderHold),
		BreakerFailures:     f.BreakerFailures,
		Timeout:             f.Timeout,
		Lease:               f.Lease,
		RescueInterval:      f.RescueInterval,
		Retention:           f.Retention,
		Policy:              policy,
		UserAgent:           build.UserAgent(),
	})
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	return disp, nil
}

// orderHold maps --order-hold to dispatcher.Config.OrderHold: 0 is no
// limit there, a negative value in the config.
func orderHold(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// api is serve's HTTP side: its routes, and the activity service behind
// the intake, which an AMI source in the same process shares.
type api struct {
	handler    http.Handler
	activities *callevents.ActivityService
}

// newAPI wires the domain services and the HTTP routes of f: SOAP, REST,
// OAuth, intake, and the operator's /metrics (of m), /healthz and /readyz.
// Call Event URLs are checked against policy; disp is told of every
// delivery queued, takes those it has room for as they are accepted
// (callevents.Handoff), and sends TestPhoneCallEvent's request, whether or not
// it is started in this process.
func newAPI(db *store.DB, f apiFlags, policy *dispatcher.OutboundPolicy, disp *dispatcher.Dispatcher, m *metrics, log *slog.Logger) (*api, error) {
	proxies, err := parseTrustedProxies(f.TrustedProxies)
	if err != nil {
		return nil, err
	}
	callEvents := &callevents.CallEventService{Store: db, MaxPerExtension: f.MaxPerExtension, CheckTarget: policy.CheckURL}
	queued := func(int) { disp.Notify() }
	activities := &callevents.ActivityService{Store: db, Queued: queued, Handoff: disp, Observer: m}
	auth := &callevents.Authenticator{Store: db, TokenTTL: f.TokenTTL}
	var console service.ConsoleConfig
	if f.Console {
		console = service.ConsoleConfig{Sessions: &callevents.ConsoleSessions{Store: db, Auth: auth, TTL: f.ConsoleTTL}, Queue: db, Outcomes: db, Breakers: &m.breakers}
	}
	srv := service.New(service.Config{
		CallEvents: callEvents,
		Auth:       auth,
		Activities: activities,
		Deliveries: &callevents.DeliveryService{Store: db, CallEvents: db, Tester: disp, Queued: queued},
		Logger:     log,
		Observer:   m,
		Limits:     service.Limits{TrustedProxies: proxies},
		Console:    console,
	})
	mux := http.NewServeMux()
	srv.Register(mux)
	opsRoutes(mux, db, m, log)
	return &api{handler: mux, activities: activities}, nil
}

// amiPrincipal is who the AMI source reports as: a pbx client, so its
// activity takes exactly the intake's path (validation, dedupe, durability).
var amiPrincipal = callevents.Principal{ClientID: "ami", Scope: callevents.ScopePBX}

// newAMI builds the AMI source of f, submitting through activities; obs
// (nil: none) sees its connection state.
func newAMI(f amiFlags, activities *callevents.ActivityService, obs callevents.Observer, log *slog.Logger) (*ami.Source, error) {
	if f.User == "" || f.Secret == "" {
		return nil, errors.New("the AMI source needs a user and a secret")
	}
	extensions, err := ami.ParseExtensionMap(f.Org, f.Map)
	if err != nil {
		return nil, err
	}
	dids := map[string]bool{}
	for _, d := range strings.Split(f.DIDs, ",") {
		if d = strings.TrimSpace(d); d != "" {
			dids[d] = true
		}
	}
	return ami.New(ami.Config{
		Addr:       f.Addr,
		Username:   f.User,
		Secret:     f.Secret,
		Extensions: extensions,
		DIDs:       dids,
		Logger:     log,
		Observer:   obs,
		Submit: func(ctx context.Context, acts []callevents.CallActivity) (callevents.ActivityResult, error) {
			return activities.AcceptActivity(ctx, amiPrincipal, acts)
		},
	})
}

// parseCommand parses a command's flags and builds its logger (of lf, one
// of the groups fs holds).
func parseCommand(fs *flag.FlagSet, args []string, lf *logFlags, stderr io.Writer) (*slog.Logger, error) {
	if err := cliflag.Parse(fs, args); err != nil {
		return nil, err
	}
	return newLogger(*lf, stderr)
}

// openStore opens and migrates the database of f.
func openStore(ctx context.Context, f dbFlags, log *slog.Logger) (*store.DB, error) {
	db, err := store.Open(ctx, f.DSN, store.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return db, nil
}

// toolConfig is what the one-shot tools (migrate, clients) read.
type toolConfig struct {
	DB  dbFlags
	Log logFlags
}

// flagSet declares the tool's flags into c.
func (c *toolConfig) flagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := newFlagSet(name, stderr)
	c.DB.register(fs)
	c.Log.register(fs)
	return fs
}

// openTool parses a tool's flags (fs, holding c's) and opens its database.
// It first says on stderr which database that is, since the default is a
// file in the working directory, which may not be the one serve uses.
func openTool(ctx context.Context, fs *flag.FlagSet, args []string, c *toolConfig, stderr io.Writer) (*store.DB, error) {
	log, err := parseCommand(fs, args, &c.Log, stderr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "callevents: database %s\n", store.Describe(c.DB.DSN))
	return openStore(ctx, c.DB, log)
}
