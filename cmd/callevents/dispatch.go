package main

import (
	"context"
	"flag"
	"io"

	"github.com/callevents/callevents/store"
)

// dispatchConfig is what dispatch reads.
type dispatchConfig struct {
	DB       dbFlags
	Log      logFlags
	Metrics  metricsFlags
	Outbound outboundFlags
	Delivery deliveryFlags
	Shutdown shutdownFlags
}

// flagSet declares dispatch's flags into c.
func (c *dispatchConfig) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := newFlagSet("dispatch", stderr)
	c.DB.register(fs)
	c.Log.register(fs)
	c.Metrics.register(fs)
	c.Outbound.register(fs)
	c.Delivery.register(fs)
	c.Shutdown.register(fs)
	return fs
}

// runDispatch runs delivery workers only, on the same database as serve:
// several dispatch (and serve) processes on one MySQL/MariaDB database split
// the work. It builds no HTTP API. It stops on ctx cancellation, letting
// deliveries in flight finish and giving back what it had claimed, then
// stops its --metrics-listen, all within one --shutdown-timeout.
func runDispatch(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg dispatchConfig
	log, err := parseCommand(cfg.flagSet(stderr), args, &cfg.Log, stderr)
	if err != nil {
		return err
	}
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
	disp, err := newDispatcher(db, cfg.Delivery, policy, m, log)
	if err != nil {
		return err
	}
	stopOps, err := startOpsServer(cfg.Metrics, db, m, log)
	if err != nil {
		return err
	}
	// Not ctx: cancelling Start's context stops the dispatcher abruptly
	// (requests in flight aborted). The signal must lead to Stop below,
	// which drains them.
	if err := disp.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	log.Info("callevents: dispatching", "db", store.Describe(cfg.DB.DSN), "allow_targets", policy.String(), "version", build.String())
	<-ctx.Done()
	log.Info("callevents: shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Timeout)
	defer cancel()
	if err := disp.Stop(stopCtx); err != nil {
		log.Warn("callevents: dispatcher stop", "error", err.Error())
	}
	stopOps(stopCtx)
	log.Info("callevents: stopped")
	return nil
}
