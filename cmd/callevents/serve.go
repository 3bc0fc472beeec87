package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/cmd/internal/cliflag"
	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/service"
	"github.com/callevents/callevents/service/ami"
	"github.com/callevents/callevents/store"
)

// runServe binds its listener, opens and migrates the database, creates
// the bootstrap admin client on an empty database, and serves (and, unless
// --dispatch=false, delivers) until ctx is cancelled. Whatever can fail
// (flags, TLS files, the address, the database, the wiring) fails before
// the admin is created: a start that fails prints no secret, and one that
// cannot bind creates no database. Shutdown is ordered: stop accepting and
// finish requests in flight, then let deliveries in flight finish and give
// back what was claimed, then close the database.
func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg config
	log, err := parseCommand(newFlagSet("serve", &cfg, cmdServe, stderr), args, &cfg, stderr)
	if err != nil {
		return err
	}
	tlsConf, err := tlsConfig(cfg)
	if err != nil {
		return err
	}
	ln, err := listen(cfg.Listen, tlsConf)
	if err != nil {
		return err
	}
	defer ln.Close() // on an early return; Serve closes it otherwise
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := newApp(db, cfg, log)
	if err != nil {
		return err
	}
	var src *ami.Source
	if cfg.AMIAddr != "" {
		if src, err = newAMISource(cfg, a.activities, a.metrics, log); err != nil {
			return fmt.Errorf("--ami-addr: %w", err)
		}
	}
	dbName := store.Describe(cfg.DB)
	if err := bootstrapAdmin(ctx, db, dbName, stderr); err != nil {
		return err
	}

	srv := newHTTPServer(a.handler, log)
	if cfg.Dispatch {
		// Not ctx: cancelling Start's context stops the dispatcher abruptly;
		// the signal must lead to the graceful Stop below instead.
		if err := a.dispatcher.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("start the dispatcher: %w", err)
		}
	}
	// The AMI source, when configured, reads calls until shutdown starts;
	// it stops first, so nothing is taken in that cannot be queued.
	amiCtx, stopAMI := context.WithCancel(ctx)
	defer stopAMI()
	amiDone := make(chan struct{})
	if src != nil {
		go func() {
			defer close(amiDone)
			if err := src.Run(amiCtx); err != nil {
				log.Error("callevents: AMI source stopped", "error", err.Error())
			}
		}()
	} else {
		close(amiDone)
	}
	log.Info("callevents: listening", "addr", ln.Addr().String(), "tls", tlsConf != nil, "db", dbName, "dispatch", cfg.Dispatch, "ami_addr", cfg.AMIAddr,
		"allow_targets", a.policy.String(), "version", build.String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
	}
	log.Info("callevents: shutting down")
	stopAMI()
	<-amiDone
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("callevents: requests in flight did not finish in time", "error", err.Error())
	}
	if serveErr == nil {
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	if cfg.Dispatch {
		if err := a.dispatcher.Stop(shutdownCtx); err != nil {
			log.Warn("callevents: dispatcher stop", "error", err.Error())
		}
	}
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	log.Info("callevents: stopped")
	return nil
}

// app is the wired service: the HTTP handler and the dispatcher behind it.
type app struct {
	handler    http.Handler
	dispatcher *dispatcher.Dispatcher
	policy     *dispatcher.OutboundPolicy
	activities *callevents.ActivityService
	metrics    *metrics // served at GET /metrics
}

// orderHold maps --order-hold to dispatcher.Config.OrderHold: 0 is no
// limit there, a negative value in the config.
func orderHold(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// newApp wires the domain services, the dispatcher (not started) and the
// HTTP routes: SOAP, OAuth, intake, health, readiness and metrics.
func newApp(db *store.DB, cfg config, log *slog.Logger) (*app, error) {
	m := newMetrics(db, log)
	policy, err := dispatcher.ParseAllowTargets(cfg.AllowTargets)
	if err != nil {
		return nil, fmt.Errorf("--allow-targets: %w", err)
	}
	disp, err := dispatcher.New(dispatcher.Config{
		Store:               db,
		Logger:              log,
		Observer:            m,
		Concurrency:         cfg.Concurrency,
		ReceiverConcurrency: cfg.ReceiverConcurrency,
		OrderHold:           orderHold(cfg.OrderHold),
		BreakerFailures:     cfg.BreakerFailures,
		Timeout:             cfg.DeliveryTimeout,
		Lease:               cfg.Lease,
		RescueInterval:      cfg.RescueInterval,
		Retention:           cfg.Retention,
		Policy:              policy,
		UserAgent:           build.UserAgent(),
	})
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	proxies, err := parseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	callEvents := &callevents.CallEventService{Store: db, MaxPerExtension: cfg.MaxPerExtension, CheckTarget: policy.CheckURL}
	queued := func(int) { disp.Notify() }
	activities := &callevents.ActivityService{Store: db, Queued: queued, Observer: m}
	soap := service.New(service.Config{
		CallEvents: callEvents,
		Auth:       &callevents.Authenticator{Store: db, TokenTTL: cfg.TokenTTL},
		Activities: activities,
		Deliveries: &callevents.DeliveryService{Store: db, CallEvents: db, Tester: disp, Queued: queued},
		Logger:     log,
		Observer:   m,
		Limits:     service.Limits{TrustedProxies: proxies},
	})
	mux := http.NewServeMux()
	soap.Register(mux)
	opsRoutes(mux, db, m, log)
	return &app{handler: mux, dispatcher: disp, policy: policy, activities: activities, metrics: m}, nil
}

// openCommand parses a command's flags, then builds its logger and opens and
// migrates its database: the start of every command that uses the store.
func openCommand(ctx context.Context, fs *flag.FlagSet, args []string, cfg *config, stderr io.Writer) (*slog.Logger, *store.DB, error) {
	log, err := parseCommand(fs, args, cfg, stderr)
	if err != nil {
		return nil, nil, err
	}
	db, err := openStore(ctx, *cfg, log)
	if err != nil {
		return nil, nil, err
	}
	return log, db, nil
}

// parseCommand parses a command's flags and builds its logger.
func parseCommand(fs *flag.FlagSet, args []string, cfg *config, stderr io.Writer) (*slog.Logger, error) {
	if err := cliflag.Parse(fs, args); err != nil {
		return nil, err
	}
	return newLogger(*cfg, stderr)
}

// openTool is openCommand for the one-shot tools (migrate, clients): it
// first says on stderr which database they use, since the default is a
// file in the working directory, which may not be the one serve uses.
func openTool(ctx context.Context, fs *flag.FlagSet, args []string, cfg *config, stderr io.Writer) (*store.DB, error) {
	log, err := parseCommand(fs, args, cfg, stderr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "callevents: database %s\n", store.Describe(cfg.DB))
	return openStore(ctx, *cfg, log)
}

func openStore(ctx context.Context, cfg config, log *slog.Logger) (*store.DB, error) {
	db, err := store.Open(ctx, cfg.DB, store.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return db, nil
}

// bootstrapAdmin creates an admin client when the database (dbName) has
// none and prints its credentials once, on stderr.
func bootstrapAdmin(ctx context.Context, db *store.DB, dbName string, stderr io.Writer) error {
	c, secret, err := callevents.NewClient("bootstrap admin", callevents.ScopeAdmin, time.Now())
	if err != nil {
		return err
	}
	created, err := db.CreateFirstClient(ctx, c)
	if err != nil {
		return fmt.Errorf("create the bootstrap admin client: %w", err)
	}
	if !created {
		return nil
	}
	line, _ := json.Marshal(clientJSON{ClientID: c.ID, ClientSecret: secret, Scope: string(c.Scope), Name: c.Name})
	// One notice line, then the JSON line: scripts take the line after it.
	fmt.Fprintf(stderr, "callevents: created the bootstrap admin client in %s; keep the secret now, it is not shown again (another: callevents clients add --name NAME --scope admin):\n%s\n", dbName, line)
	return nil
}
