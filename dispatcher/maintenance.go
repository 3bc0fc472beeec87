package dispatcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Queue maintenance (River's internal/maintenance): a rescuer and a
// cleaner, each a goroutine that calls the store every interval. Several
// processes may run both against one database; each run is one statement.

// leaseRescuer is what the rescuer needs of the store.
type leaseRescuer interface {
	RescueExpired(ctx context.Context, now time.Time) (int, error)
}

// rescuerConfig configures a rescuer. The zero value of every field but
// Store means its default.
type rescuerConfig struct {
	Store leaseRescuer // required
	// Interval is how often expired leases are rescued. 0 means
	// RescueIntervalDefault (10 s).
	Interval time.Duration
	// Rescued, when set, is told how many deliveries a run made pending
	// again, when any: the dispatcher then claims at once.
	Rescued func(n int)
	Logger  *slog.Logger     // nil discards
	Worker  string           // names the dispatcher in messages
	Now     func() time.Time // nil means time.Now
}

func (c rescuerConfig) withDefaults() rescuerConfig {
	c.Interval = cmp.Or(c.Interval, RescueIntervalDefault)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	if c.Rescued == nil {
		c.Rescued = func(int) {}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c rescuerConfig) validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("Store is required"))
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("Interval must be positive, got %s", c.Interval))
	}
	if len(errs) > 0 {
		return fmt.Errorf("rescuer: %w", errors.Join(errs...))
	}
	return nil
}

// rescuer makes deliveries whose lease expired (their worker died)
// pending again, every Interval.
type rescuer struct {
	rescuerConfig
	startStop
	failing streak // only the rescuer's goroutine uses it
}

func newRescuer(cfg rescuerConfig) (*rescuer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &rescuer{rescuerConfig: cfg}, nil
}

// Start runs the rescuer in a goroutine of its own until Stop, or until
// ctx ends. A run in progress at Stop is let finish, until hardStop.
func (r *rescuer) Start(ctx context.Context) {
	ctx, ok := r.startInit(ctx)
	if !ok {
		return
	}
	go func() {
		defer r.stopDone()
		periodic(ctx, r.Stopping(), r.Interval, r.runOnce)
	}()
}

// Stop asks the rescuer to stop after the run in progress and returns a
// channel closed once it has.
func (r *rescuer) Stop() <-chan struct{} {
	_, stopped := r.stop()
	return stopped
}

func (r *rescuer) runOnce(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	n, err := r.Store.RescueExpired(sctx, r.Now())
	if err != nil {
		if ctx.Err() == nil && r.failing.fail() {
			r.Logger.Error("dispatcher: cannot rescue expired leases; retrying", "worker", r.Worker, "error", err)
		}
		return
	}
	r.failing.recover()
	if n > 0 {
		r.Logger.Info("dispatcher: rescued deliveries whose lease expired", "count", n)
		r.Rescued(n)
	}
}

// finishedCleaner is what the cleaner needs of the store.
type finishedCleaner interface {
	CleanFinished(ctx context.Context, before time.Time) (int, error)
}

// cleanerConfig configures a cleaner. The zero value of every field but
// Store means its default.
type cleanerConfig struct {
	Store finishedCleaner // required
	// Interval is how often finished deliveries are deleted. 0 means
	// CleanIntervalDefault (1 min).
	Interval time.Duration
	// Retention is how long finished deliveries are kept. 0 means
	// RetentionDefault (7 days).
	Retention time.Duration
	Logger    *slog.Logger     // nil discards
	Worker    string           // names the dispatcher in messages
	Now       func() time.Time // nil means time.Now
}

func (c cleanerConfig) withDefaults() cleanerConfig {
	c.Interval = cmp.Or(c.Interval, CleanIntervalDefault)
	c.Retention = cmp.Or(c.Retention, RetentionDefault)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c cleanerConfig) validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("Store is required"))
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("Interval must be positive, got %s", c.Interval))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("Retention must be positive, got %s", c.Retention))
	}
	if len(errs) > 0 {
		return fmt.Errorf("cleaner: %w", errors.Join(errs...))
	}
	return nil
}

// cleaner deletes deliveries finished more than Retention ago, every
// Interval.
type cleaner struct {
	cleanerConfig
	startStop
	failing streak // only the cleaner's goroutine uses it
}

func newCleaner(cfg cleanerConfig) (*cleaner, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cleaner{cleanerConfig: cfg}, nil
}

// Start runs the cleaner in a goroutine of its own until Stop, or until
// ctx ends. A run in progress at Stop is let finish, until hardStop.
func (c *cleaner) Start(ctx context.Context) {
	ctx, ok := c.startInit(ctx)
	if !ok {
		return
	}
	go func() {
		defer c.stopDone()
		periodic(ctx, c.Stopping(), c.Interval, c.runOnce)
	}()
}

// Stop asks the cleaner to stop after the run in progress and returns a
// channel closed once it has.
func (c *cleaner) Stop() <-chan struct{} {
	_, stopped := c.stop()
	return stopped
}

func (c *cleaner) runOnce(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	n, err := c.Store.CleanFinished(sctx, c.Now().Add(-c.Retention))
	if err != nil {
		if ctx.Err() == nil && c.failing.fail() {
			c.Logger.Error("dispatcher: cannot delete old deliveries; retrying", "worker", c.Worker, "error", err)
		}
		return
	}
	c.failing.recover()
	if n > 0 {
		c.Logger.Debug("dispatcher: deleted old deliveries", "count", n)
	}
}

// periodic calls runOnce with ctx now and then every interval, until
// stopping is closed. A run in progress then is let finish: cancelling it
// would only waste the work and, on MySQL, the connection; ctx ending
// interrupts it.
func periodic(ctx context.Context, stopping <-chan struct{}, interval time.Duration, runOnce func(context.Context)) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		runOnce(ctx)
		select {
		case <-stopping:
			return
		case <-ticker.C:
		}
	}
}

// streak counts consecutive failures, so that an outage is logged once.
type streak struct{ count int }

// fail counts a failure and reports whether it is the first of a streak.
func (s *streak) fail() bool {
	s.count++
	return s.count == 1
}

// recover ends a streak and returns how long it was.
func (s *streak) recover() int {
	n := s.count
	s.count = 0
	return n
}
