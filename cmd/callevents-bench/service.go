package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/service"
	"github.com/callevents/callevents/store"
)

// serviceEnv carries a serviceConfig to the bench's own executable started
// again as the service under test: the service runs in a process of its
// own, so that its CPU time is read apart from the load and the receiver.
const serviceEnv = "CALLEVENTS_BENCH_SERVICE"

// serviceConfig is what the service process is started with.
type serviceConfig struct {
	DSN         string `json:"dsn"`
	ReceiverURL string `json:"receiverUrl"`
	Concurrency int    `json:"concurrency"`
	Extensions  int    `json:"extensions"`
}

// serviceReady is the one JSON line the service process prints once it
// serves, or Error when it could not start.
type serviceReady struct {
	API         string `json:"api"`
	Token       string `json:"token"`
	Concurrency int    `json:"concurrency"`
	Dialect     string `json:"dialect"`
	Error       string `json:"error,omitempty"`
}

// Commands the bench writes to the service's stdin, one a line; at EOF the
// service stops gracefully and exits.
const (
	cmdStartProfile = "profile " // + file
	cmdStopProfile  = "stop-profile"
)

// serviceMain is the service process: the intake, store and dispatcher
// wired as serve wires them (serve's defaults, no metrics, logs
// discarded), with one Dial-In Call Event to the receiver on each of the
// bench extensions.
func serviceMain(ctx context.Context, env string, stdin io.Reader, stdout io.Writer) int {
	var cfg serviceConfig
	ready := serviceReady{}
	svc, err := func() (*benchService, error) {
		if err := json.Unmarshal([]byte(env), &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", serviceEnv, err)
		}
		return startService(ctx, cfg)
	}()
	if err != nil {
		ready.Error = err.Error()
		json.NewEncoder(stdout).Encode(ready)
		return 1
	}
	defer svc.close()
	ready.API, ready.Token, ready.Concurrency, ready.Dialect = svc.api.URL, svc.token, svc.concurrency, svc.db.Dialect()
	if err := json.NewEncoder(stdout).Encode(ready); err != nil {
		return 1
	}
	var profile *os.File
	lines := bufio.NewScanner(stdin)
	for lines.Scan() {
		switch line := lines.Text(); {
		case strings.HasPrefix(line, cmdStartProfile) && profile == nil:
			if f, err := os.Create(strings.TrimPrefix(line, cmdStartProfile)); err == nil && pprof.StartCPUProfile(f) == nil {
				profile = f
			}
		case line == cmdStopProfile && profile != nil:
			pprof.StopCPUProfile()
			profile.Close()
			profile = nil
		}
	}
	if profile != nil {
		pprof.StopCPUProfile()
		profile.Close()
	}
	return 0
}

// benchService is the running service of serviceMain.
type benchService struct {
	db          *store.DB
	disp        *dispatcher.Dispatcher
	api         *httptest.Server
	token       string
	concurrency int // the dispatcher's, resolved
}

// startService opens and migrates the database, refuses one that held a
// run, adds the bench's client and Call Events and starts serving.
func startService(ctx context.Context, cfg serviceConfig) (*benchService, error) {
	log := slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, cfg.DSN, store.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	s := &benchService{db: db}
	if err := db.Migrate(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	// serve's defaults, but for the receiver on loopback, which the
	// outbound policy refuses unless allowed.
	policy, err := dispatcher.ParseAllowTargets("127.0.0.0/8")
	if err != nil {
		s.close()
		return nil, err
	}
	dcfg := dispatcher.Config{Store: db, Logger: log, Concurrency: cfg.Concurrency, Policy: policy}
	s.concurrency = dcfg.WithDefaults().Concurrency
	if s.disp, err = dispatcher.New(dcfg); err != nil {
		s.close()
		return nil, err
	}
	if err := s.setUp(ctx, cfg); err != nil {
		s.close()
		return nil, err
	}
	queued := func(int) { s.disp.Notify() }
	mux := http.NewServeMux()
	service.New(service.Config{
		CallEvents: &callevents.CallEventService{Store: db, CheckTarget: policy.CheckURL},
		Auth:       &callevents.Authenticator{Store: db},
		Activities: &callevents.ActivityService{Store: db, Queued: queued, Handoff: s.disp},
		Logger:     log,
	}).Register(mux)
	s.api = httptest.NewServer(mux)
	if err := s.disp.Start(context.WithoutCancel(ctx)); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// setUp adds the bench's admin client (its token in s.token) and a Dial-In
// Call Event to the receiver on each bench extension.
func (s *benchService) setUp(ctx context.Context, cfg serviceConfig) error {
	admin := callevents.Principal{Scope: callevents.ScopeAdmin}
	svc := &callevents.CallEventService{Store: s.db}
	// A database that held a run before has its Call Events and its call
	// ids: this run's reports would be duplicates, and the bench would wait
	// for deliveries that never come.
	_, n, err := svc.FindCallEvents(ctx, admin, callevents.CallEventFilter{Extension: callevents.Extension(benchExtension(0)), Limit: 1})
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("the database already holds a bench run (Call Events on %s): give a fresh scratch database", benchExtension(0))
	}
	c, secret, err := callevents.NewClient("bench", callevents.ScopeAdmin, time.Now())
	if err != nil {
		return err
	}
	if err := s.db.CreateClient(ctx, c); err != nil {
		return err
	}
	if s.token, _, err = (&callevents.Authenticator{Store: s.db}).IssueToken(ctx, c.ID, secret); err != nil {
		return err
	}
	url, post := cfg.ReceiverURL, callevents.MethodPOST
	for i := range cfg.Extensions {
		if _, err := svc.AddCallEvent(ctx, admin, callevents.Extension(benchExtension(i)), callevents.DialIn, callevents.CallEventUpdate{URL: &url, Method: &post}); err != nil {
			return err
		}
	}
	return nil
}

// close stops the dispatcher (gracefully), the API and the database.
func (s *benchService) close() {
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.disp != nil {
		s.disp.Stop(stopCtx)
	}
	if s.api != nil {
		s.api.Close()
	}
	s.db.Close()
}
