package main

import (
	"context"
	"io"

	"github.com/callevents/callevents/store"
)

// runDispatch runs delivery workers only, on the same database as serve:
// several dispatch (and serve) processes on one MySQL/MariaDB database split
// the work. It stops on ctx cancellation, letting deliveries in flight
// finish (up to --shutdown-timeout) and giving back what it had claimed.
func runDispatch(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg config
	log, db, err := openCommand(ctx, newFlagSet("dispatch", &cfg, cmdDispatch, stderr), args, &cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := newApp(db, cfg, log)
	if err != nil {
		return err
	}
	stopOps, err := startOpsServer(cfg, db, a.metrics, log)
	if err != nil {
		return err
	}
	// Not ctx: cancelling Start's context stops the dispatcher abruptly
	// (requests in flight aborted). The signal must lead to Stop below,
	// which drains them.
	if err := a.dispatcher.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	log.Info("callevents: dispatching", "db", store.Describe(cfg.DB), "allow_targets", a.policy.String(), "version", build.String())
	<-ctx.Done()
	log.Info("callevents: shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := a.dispatcher.Stop(stopCtx); err != nil {
		log.Warn("callevents: dispatcher stop", "error", err.Error())
	}
	stopOps(stopCtx)
	log.Info("callevents: stopped")
	return nil
}
