package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/store"
)

// amiConfig is what ami reads.
type amiConfig struct {
	DB      dbFlags
	Log     logFlags
	Metrics metricsFlags
	AMI     amiFlags
}

// flagSet declares ami's flags into c.
func (c *amiConfig) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := newFlagSet("ami", stderr)
	c.DB.register(fs)
	c.Log.register(fs)
	c.Metrics.register(fs)
	c.AMI.register(fs, "", "")
	return fs
}

// runAMI reads calls from Asterisk and queues their deliveries in the
// database, without serving HTTP or delivering (pair it with serve or
// dispatch on the same database).
func runAMI(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg amiConfig
	log, err := parseCommand(cfg.flagSet(stderr), args, &cfg.Log, stderr)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg.DB, log)
	if err != nil {
		return err
	}
	defer db.Close()
	if cfg.AMI.Addr == "" {
		return errors.New("ami: --addr is required")
	}
	m := newMetrics(db, log)
	// No Queued: the dispatchers, in other processes, find the deliveries
	// by polling.
	src, err := newAMI(cfg.AMI, &callevents.ActivityService{Store: db, Observer: m}, m, log)
	if err != nil {
		return err
	}
	stopOps, err := startOpsServer(cfg.Metrics, db, m, log)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopOps(ctx)
	}()
	log.Info("callevents: reading calls from Asterisk", "ami_addr", cfg.AMI.Addr, "db", store.Describe(cfg.DB.DSN), "version", build.String())
	err = src.Run(ctx)
	log.Info("callevents: stopped")
	return err
}
