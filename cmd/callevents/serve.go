package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/cmd/internal/cliflag"
	"github.com/callevents/callevents/service/ami"
	"github.com/callevents/callevents/store"
)

// serveConfig is what serve reads.
type serveConfig struct {
	DB       dbFlags
	Log      logFlags
	API      apiFlags
	Outbound outboundFlags
	Delivery deliveryFlags
	Shutdown shutdownFlags
	AMI      amiFlags // read calls from Asterisk when AMI.Addr is set
	Dispatch bool     // also deliver from this process
}

// flagSet declares serve's flags into c.
func (c *serveConfig) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := newFlagSet("serve", stderr)
	c.DB.register(fs)
	c.Log.register(fs)
	c.API.register(fs)
	c.Outbound.register(fs)
	c.Delivery.register(fs)
	c.Shutdown.register(fs)
	c.AMI.register(fs, "ami-", " (serve: read calls from Asterisk when set)")
	cliflag.Bool(fs, &c.Dispatch, "dispatch", true, "also deliver call events from this process (false: API only, with separate dispatch processes)")
	return fs
}

// runServe binds its listener, opens and migrates the database, creates
// the bootstrap admin client on an empty database, and serves (and, unless
// --dispatch=false, delivers) until ctx is cancelled. Whatever can fail
// (flags, TLS files, the address, the database, the wiring) fails before
// the admin is created: a start that fails prints no secret, and one that
// cannot bind creates no database.
//
// The stop is ordered from where work comes in to where it ends:
//
//  1. the AMI source stops reading calls, so nothing is taken in that
//     cannot be queued;
//  2. the HTTP server stops accepting and lets requests in flight finish;
//  3. the dispatcher claims nothing more, lets deliveries in flight finish
//     and gives back what it had claimed, attempts unspent;
//  4. the database closes.
//
// Steps 2 and 3 share one budget, --shutdown-timeout: what requests in
// flight take is not left for deliveries. A delivery still running when
// the budget ends is interrupted and goes back to the queue, its attempt
// not counted, for the next process that claims it.
func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg serveConfig
	log, err := parseCommand(cfg.flagSet(stderr), args, &cfg.Log, stderr)
	if err != nil {
		return err
	}
	tlsConf, err := cfg.API.TLS.config()
	if err != nil {
		return err
	}
	ln, err := listen(cfg.API.Listen, tlsConf)
	if err != nil {
		return err
	}
	defer ln.Close() // on an early return; Serve closes it otherwise
	db, err := openStore(ctx, cfg.DB, log)
	if err != nil {
		return err
	}
	defer db.Close()
	m := newMetrics(db, log)
	policy, err := cfg.Outbound.policy()
	if err != nil {
		return err
	}
	// Built even with --dispatch=false: the API notifies it (a no-op
	// unless started) and TestPhoneCallEvent sends through it.
	disp, err := newDispatcher(db, cfg.Delivery, policy, m, log)
	if err != nil {
		return err
	}
	a, err := newAPI(db, cfg.API, policy, disp, m, log)
	if err != nil {
		return err
	}
	var src *ami.Source
	if cfg.AMI.Addr != "" {
		if src, err = newAMI(cfg.AMI, a.activities, m, log); err != nil {
			return fmt.Errorf("--ami-addr: %w", err)
		}
	}
	dbName := store.Describe(cfg.DB.DSN)
	if err := bootstrapAdmin(ctx, db, dbName, stderr); err != nil {
		return err
	}

	srv := newHTTPServer(a.handler, log)
	if cfg.Dispatch {
		// Not ctx: cancelling Start's context stops the dispatcher abruptly;
		// the signal must lead to the graceful Stop below instead.
		if err := disp.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("start the dispatcher: %w", err)
		}
	}
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
	log.Info("callevents: listening", "addr", ln.Addr().String(), "tls", tlsConf != nil, "db", dbName, "dispatch", cfg.Dispatch, "ami_addr", cfg.AMI.Addr,
		"allow_targets", policy.String(), "version", build.String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
	}
	log.Info("callevents: shutting down")
	stopAMI() // 1
	<-amiDone
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil { // 2
		log.Warn("callevents: requests in flight did not finish in time", "error", err.Error())
	}
	if serveErr == nil {
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	if cfg.Dispatch {
		if err := disp.Stop(shutdownCtx); err != nil { // 3, in what is left of the budget
			log.Warn("callevents: dispatcher stop", "error", err.Error())
		}
	}
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	log.Info("callevents: stopped")
	return nil // 4: the deferred db.Close
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
