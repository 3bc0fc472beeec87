package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/service/ami"
	"github.com/callevents/callevents/store"
)

// amiPrincipal is who the AMI source reports as: a pbx client, so its
// activity takes exactly the intake's path (validation, dedupe, durability).
var amiPrincipal = callevents.Principal{ClientID: "ami", Scope: callevents.ScopePBX}

// newAMISource builds the AMI source of cfg, submitting through activities;
// obs (nil: none) sees its connection state.
func newAMISource(cfg config, activities *callevents.ActivityService, obs callevents.Observer, log *slog.Logger) (*ami.Source, error) {
	if cfg.AMIUser == "" || cfg.AMISecret == "" {
		return nil, errors.New("the AMI source needs a user and a secret")
	}
	extensions, err := ami.ParseExtensionMap(cfg.AMIOrg, cfg.AMIMap)
	if err != nil {
		return nil, err
	}
	dids := map[string]bool{}
	for _, d := range strings.Split(cfg.AMIDIDs, ",") {
		if d = strings.TrimSpace(d); d != "" {
			dids[d] = true
		}
	}
	return ami.New(ami.Config{
		Addr:       cfg.AMIAddr,
		Username:   cfg.AMIUser,
		Secret:     cfg.AMISecret,
		Extensions: extensions,
		DIDs:       dids,
		Logger:     log,
		Observer:   obs,
		Submit: func(ctx context.Context, acts []callevents.CallActivity) (callevents.ActivityResult, error) {
			return activities.AcceptActivity(ctx, amiPrincipal, acts)
		},
	})
}

// runAMI reads calls from Asterisk and queues their deliveries in the
// database, without serving HTTP or delivering (pair it with serve or
// dispatch on the same database).
func runAMI(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg config
	log, db, err := openCommand(ctx, newFlagSet("ami", &cfg, cmdAMI, stderr), args, &cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	if cfg.AMIAddr == "" {
		return errors.New("ami: --addr is required")
	}
	m := newMetrics(db, log)
	src, err := newAMISource(cfg, &callevents.ActivityService{Store: db, Observer: m}, m, log)
	if err != nil {
		return err
	}
	stopOps, err := startOpsServer(cfg, db, m, log)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopOps(ctx)
	}()
	log.Info("callevents: reading calls from Asterisk", "ami_addr", cfg.AMIAddr, "db", store.Describe(cfg.DB), "version", build.String())
	err = src.Run(ctx)
	log.Info("callevents: stopped")
	return err
}
