package ami

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/callevents/callevents"
)

// Config configures a Source.
type Config struct {
	Addr     string // host:port of AMI, e.g. 127.0.0.1:5038
	Username string
	Secret   string
	// Submit hands activities to the intake path (cmd passes a func calling
	// ActivityService.AcceptActivity with a pbx principal): same validation,
	// dedupe and durability as POST /pbx/v1/events.
	Submit func(ctx context.Context, activities []callevents.CallActivity) (callevents.ActivityResult, error)
	// Extensions maps an Asterisk endpoint (the PJSIP/SIP/IAX2 channel's peer name, e.g. "210"
	// from "PJSIP/210-00000004") to an extended number.
	Extensions ExtensionMap
	// DIDs: dialled numbers (Exten) that are public numbers; a call dialled to one gets CalledDID set.
	DIDs   map[string]bool
	Logger *slog.Logger // nil = discard; snake_case attributes
	// CallTTL: a call with no hangup is forgotten after this; 0 = 4h.
	CallTTL time.Duration
	// MinBackoff, MaxBackoff bound the reconnect backoff; 0 = 500ms / 30s.
	MinBackoff, MaxBackoff time.Duration
	Dial                   func(ctx context.Context, network, addr string) (net.Conn, error) // nil = net.Dialer
	// Observer, when set, sees the connection go up (logged in) and down.
	Observer callevents.Observer
}

// Defaults.
const (
	CallTTLDefault    = 4 * time.Hour
	MinBackoffDefault = 500 * time.Millisecond
	MaxBackoffDefault = 30 * time.Second
	loginTimeout      = 10 * time.Second
	submitAttempts    = 5
)

// Source reads one AMI connection and submits the call activity it sees.
type Source struct {
	cfg     Config
	log     *slog.Logger
	tracker *tracker
	// submitBackoff is the first pause between Submit attempts.
	submitBackoff time.Duration
	actionSeq     atomic.Uint64
}

// WithDefaults returns c with every zero field but the required ones (Addr,
// Username, Submit) set to its documented default.
func (c Config) WithDefaults() Config {
	if c.CallTTL == 0 {
		c.CallTTL = CallTTLDefault
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = MinBackoffDefault
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = MaxBackoffDefault
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.Dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}
		c.Dial = d.DialContext
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Observer = callevents.ObserverOrNop(c.Observer)
	return c
}

// validate reports a Config New cannot run with.
func (c Config) validate() error {
	if c.Addr == "" {
		return errors.New("ami: Addr is required (host:port of the Asterisk Manager Interface)")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("ami: Addr %q: %w", c.Addr, err)
	}
	if c.Username == "" {
		return errors.New("ami: Username is required (a manager.conf user with read = call)")
	}
	if c.Submit == nil {
		return errors.New("ami: Submit is required")
	}
	if c.CallTTL < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 {
		return errors.New("ami: CallTTL and backoffs must not be negative")
	}
	return nil
}

// New checks cfg and returns a Source; Run starts it.
func New(cfg Config) (*Source, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	s := &Source{cfg: cfg, log: cfg.Logger, submitBackoff: 200 * time.Millisecond}
	s.tracker = newTracker(cfg.Extensions, cfg.DIDs, cfg.CallTTL, time.Now, func(msg string, args ...any) {
		s.log.Debug(msg, args...)
	})
	return s, nil
}

// errLogin is a login refused by Asterisk.
var errLogin = errors.New("AMI login refused")

// Run connects, logs in (Action: Login, Events: on), reads events and
// submits activities until ctx is done; on a lost connection or failed login
// it reconnects with exponential backoff (jittered), logging once per
// outage. Returns nil when ctx is done. Call state survives reconnects, so
// an activity is not submitted twice. Run must not be called concurrently.
func (s *Source) Run(ctx context.Context) error {
	backoff := s.cfg.MinBackoff
	var outageSince time.Time
	failures := 0
	for ctx.Err() == nil {
		loggedIn, err := s.session(ctx, func() {
			s.cfg.Observer.AMIConnected(true)
			if failures > 0 {
				s.log.Info("ami reconnected", "addr", s.cfg.Addr, "attempts", failures, "outage", time.Since(outageSince).Round(time.Millisecond).String())
			} else {
				s.log.Info("ami connected", "addr", s.cfg.Addr)
			}
			failures, backoff = 0, s.cfg.MinBackoff
		})
		if loggedIn {
			s.cfg.Observer.AMIConnected(false)
		}
		if ctx.Err() != nil {
			return nil
		}
		if loggedIn && failures == 0 {
			// A working connection was lost: a new outage starts.
			outageSince = time.Now()
			s.log.Warn("ami connection lost; reconnecting", "addr", s.cfg.Addr, "error", errString(err))
		} else {
			if failures == 0 {
				outageSince = time.Now()
				lvl := slog.LevelWarn
				if errors.Is(err, errLogin) {
					lvl = slog.LevelError
				}
				s.log.Log(ctx, lvl, "ami unavailable; retrying with backoff", "addr", s.cfg.Addr, "error", errString(err))
			} else {
				s.log.Debug("ami attempt failed", "addr", s.cfg.Addr, "attempt", failures+1, "error", errString(err))
			}
		}
		failures++
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, s.cfg.MaxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

// session runs one connection: dial, login, events. loggedIn tells whether
// the login succeeded (onLogin was called) before the error.
func (s *Source) session(ctx context.Context, onLogin func()) (loggedIn bool, err error) {
	conn, err := s.cfg.Dial(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return false, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	r := newReader(conn)
	_ = conn.SetDeadline(time.Now().Add(loginTimeout))
	if _, err := r.readBanner(); err != nil {
		return false, fmt.Errorf("greeting: %w", err)
	}
	id := "callevents-login-" + strconv.FormatUint(s.actionSeq.Add(1), 10)
	if err := writeAction(conn,
		field{"Action", "Login"}, field{"ActionID", id},
		field{"Username", s.cfg.Username}, field{"Secret", s.cfg.Secret}, field{"Events", "on"},
	); err != nil {
		return false, fmt.Errorf("login: %w", err)
	}
	for {
		m, err := s.nextMessage(r)
		if err != nil {
			return false, fmt.Errorf("login: %w", err)
		}
		if !m.has("Response") || (m.has("ActionID") && m.get("ActionID") != id) {
			continue
		}
		if !strings.EqualFold(m.get("Response"), "Success") {
			return false, fmt.Errorf("%w: %s %s", errLogin, m.get("Response"), m.get("Message"))
		}
		break
	}
	_ = conn.SetDeadline(time.Time{})
	onLogin()

	for {
		m, err := s.nextMessage(r)
		if err != nil {
			if err == io.EOF {
				err = errors.New("connection closed by Asterisk")
			}
			return true, err
		}
		if !m.has("Event") {
			continue
		}
		for _, a := range s.tracker.handle(m) {
			s.submit(ctx, a)
		}
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
	}
}

// submit hands one activity to the intake, retrying transient errors a few
// times (the intake dedupes a retried activity); it gives up when ctx is done.
func (s *Source) submit(ctx context.Context, a callevents.CallActivity) {
	wait := s.submitBackoff
	attrs := []any{"call_id", a.CallID, "phase", string(a.Phase), "caller_extension", a.CallerExtension, "called_extension", a.CalledExtension, "status", a.Status}
	for attempt := 1; ; attempt++ {
		res, err := s.cfg.Submit(ctx, []callevents.CallActivity{a})
		if err == nil {
			// A duplicate is this activity accepted before: by an attempt
			// whose answer was lost, or reported twice by Asterisk.
			msg := "ami activity submitted"
			if res.Duplicates > 0 {
				msg = "ami activity already accepted; nothing queued"
			}
			s.log.Debug(msg, append(attrs, "attempt", attempt, "queued", res.Queued, "accepted", res.Accepted, "duplicates", res.Duplicates)...)
			return
		}
		var ce *callevents.Error
		permanent := errors.As(err, &ce) && !ce.Code.Internal() // refused, not failed
		if permanent || attempt >= submitAttempts || ctx.Err() != nil {
			s.log.Error("ami activity dropped", append(attrs, "attempts", attempt, "error", err.Error())...)
			return
		}
		s.log.Warn("ami activity submit failed; retrying", append(attrs, "attempt", attempt, "error", err.Error())...)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			s.log.Error("ami activity dropped", append(attrs, "attempts", attempt, "error", ctx.Err().Error())...)
			return
		case <-t.C:
		}
		wait *= 2
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// nextMessage reads the next well-formed block, logging and skipping
// malformed ones (an unreadable event must not cost the connection).
func (s *Source) nextMessage(r *reader) (message, error) {
	for {
		m, err := r.readMessage()
		if errors.Is(err, errMalformed) {
			s.log.Warn("ami malformed block skipped", "error", err.Error())
			continue
		}
		return m, err
	}
}
