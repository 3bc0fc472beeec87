package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/store"
)

// benchReport is what `callevents bench` measures.
type benchReport struct {
	Dialect          string  `json:"dialect"`
	CeilingPerSec    float64 `json:"ceilingPerSec"`
	Events           int     `json:"events"`
	DeliveriesPerSec float64 `json:"deliveriesPerSec"`
	VersusCeiling    float64 `json:"versusCeiling"`
	Rate             int     `json:"rate"`
	RateEvents       int     `json:"rateEvents"`
	P50Ms            float64 `json:"p50Ms"`
	P95Ms            float64 `json:"p95Ms"`
	P99Ms            float64 `json:"p99Ms"`
	MaxMs            float64 `json:"maxMs"`
	// IntakeP99Ms is the p99 of the intake's own answer (send to 202) in the
	// latency phase: the part of the latency spent before delivery starts.
	IntakeP99Ms float64 `json:"intakeP99Ms"`
}

const benchUsage = `usage: callevents bench [--db DSN] [flags]

Starts the service in this process (intake, store, dispatcher) with a
receiver on loopback, and measures, in one run:
  ceiling     a plain Go client posting the same form to the same receiver
  throughput  deliveries per second while --events are reported at once
  latency     from the intake request to the receiver, at a steady --rate
Without --db it uses a fresh SQLite file in a temporary folder. A MySQL DSN
must name a scratch database: bench adds its own clients and Call Events.
`

// benchOptions are the flags of `callevents bench`.
type benchOptions struct {
	dsn, cpuProfile           string
	events, rate, concurrency int
	rateFor, ceilingFor       time.Duration
}

// newBenchFlagSet declares the flags of `callevents bench` into o.
func newBenchFlagSet(o *benchOptions, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage); printDefaults(fs) }
	fs.StringVar(&o.dsn, "db", "", "database (default: a temporary SQLite file)")
	intVar(fs, &o.events, "events", 20000, 1, "", "events reported at once for the throughput phase")
	intVar(fs, &o.rate, "rate", 1000, 1, "", "events per second in the latency phase")
	durationVar(fs, &o.rateFor, "rate-duration", 10*time.Second, "length of the latency phase")
	durationVar(fs, &o.ceilingFor, "ceiling-duration", 3*time.Second, "length of the ceiling phase")
	intVar(fs, &o.concurrency, "concurrency", 0, 0, "128", "dispatcher concurrency (0: the default)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the throughput and latency phases to this file")
	return fs
}

// runBench runs the delivery benchmark and prints a table and a JSON line.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o benchOptions
	if err := parseFlags(newBenchFlagSet(&o, stderr), args); err != nil {
		return err
	}
	dsn, events, rate, concurrency := o.dsn, o.events, o.rate, o.concurrency
	rateFor, ceilingFor, cpuProfile := o.rateFor, o.ceilingFor, o.cpuProfile
	if dsn == "" {
		dir, err := os.MkdirTemp("", "callevents-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dsn = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	db, err := openStore(ctx, config{DB: dsn}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer db.Close()
	b, err := newBenchRig(ctx, db, concurrency)
	if err != nil {
		return err
	}
	defer b.close()

	rep := benchReport{Dialect: db.Dialect(), Events: events, Rate: rate}
	fmt.Fprintf(stderr, "bench: ceiling for %v …\n", ceilingFor)
	rep.CeilingPerSec = b.ceiling(ctx, ceilingFor, b.concurrency)
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(stderr, "bench: %d events at once …\n", events)
	if rep.DeliveriesPerSec, err = b.throughput(ctx, events); err != nil {
		return err
	}
	rep.VersusCeiling = rep.DeliveriesPerSec / rep.CeilingPerSec
	fmt.Fprintf(stderr, "bench: %d events/s for %v …\n", rate, rateFor)
	lat, intake, err := b.latency(ctx, rate, rateFor)
	if err != nil {
		return err
	}
	rep.IntakeP99Ms = percentileMs(intake, 0.99)
	rep.RateEvents = len(lat)
	rep.P50Ms, rep.P95Ms, rep.P99Ms, rep.MaxMs = percentileMs(lat, 0.50), percentileMs(lat, 0.95), percentileMs(lat, 0.99), percentileMs(lat, 1)

	fmt.Fprintf(stdout, "store %s, dispatcher concurrency %d\n", rep.Dialect, b.concurrency)
	fmt.Fprintf(stdout, "  loopback ceiling      %8.0f requests/s\n", rep.CeilingPerSec)
	fmt.Fprintf(stdout, "  sustained deliveries  %8.0f /s  (%.2f× the ceiling, %d events)\n", rep.DeliveriesPerSec, rep.VersusCeiling, rep.Events)
	fmt.Fprintf(stdout, "  latency at %d/s       p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms  (%d events; intake alone p99 %.1f ms)\n", rep.Rate, rep.P50Ms, rep.P95Ms, rep.P99Ms, rep.MaxMs, rep.RateEvents, rep.IntakeP99Ms)
	return json.NewEncoder(stdout).Encode(rep)
}

// benchRig is the service under test, its receiver and an admin token.
type benchRig struct {
	app         *app
	api         *httptest.Server
	rcv         *httptest.Server
	token       string
	concurrency int
	payload     string

	mu      sync.Mutex
	arrived map[string]time.Time // CallID → when the receiver got it
	count   atomic.Int64
	signal  chan struct{}
}

func newBenchRig(ctx context.Context, db *store.DB, concurrency int) (*benchRig, error) {
	b := &benchRig{arrived: map[string]time.Time{}, signal: make(chan struct{}, 1)}
	b.rcv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		if err := r.ParseForm(); err == nil {
			if id := r.PostForm.Get("CallID"); id != "" && !strings.HasPrefix(id, "ceiling") {
				b.mu.Lock()
				b.arrived[id] = now
				b.mu.Unlock()
				b.count.Add(1)
				select {
				case b.signal <- struct{}{}:
				default:
				}
			}
		}
	}))
	// The defaults of serve, but for the loopback receiver.
	a, err := newApp(db, config{AllowTargets: "127.0.0.0/8", Concurrency: concurrency, OrderHold: dispatcher.OrderHoldDefault}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.rcv.Close()
		return nil, err
	}
	b.app, b.concurrency = a, a.dispatcher.Config().Concurrency
	b.api = httptest.NewServer(a.handler)
	if err := a.dispatcher.Start(context.WithoutCancel(ctx)); err != nil {
		b.close()
		return nil, err
	}
	c, secret, err := callevents.NewClient("bench", callevents.ScopeAdmin, time.Now())
	if err == nil {
		err = db.CreateClient(ctx, c)
	}
	if err == nil {
		b.token, _, err = (&callevents.Authenticator{Store: db}).IssueToken(ctx, c.ID, secret)
	}
	if err == nil {
		svc := &callevents.CallEventService{Store: db}
		url, post := b.rcv.URL+"/hook", callevents.MethodPOST
		_, err = svc.AddCallEvent(ctx, callevents.Principal{Scope: callevents.ScopeAdmin}, "0009*001", callevents.DialIn,
			callevents.CallEventUpdate{URL: &url, Method: &post})
	}
	if err != nil {
		b.close()
		return nil, err
	}
	b.payload = benchActivity("ceiling", 0).params().Encode()
	return b, nil
}

func (b *benchRig) close() {
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if b.app != nil {
		b.app.dispatcher.Stop(stopCtx)
	}
	if b.api != nil {
		b.api.Close()
	}
	b.rcv.Close()
}

func benchActivity(prefix string, i int) fireActivity {
	return fireActivity{CallID: fmt.Sprintf("%s-%07d", prefix, i), Phase: "dial", CallerExtension: "0009*100", CallerIDNum: "100",
		CallerIDName: "Bench Caller", CalledExtension: "0009*001", CalledNumber: "001"}
}

// params is the activity's parameters as the Call Event of 0009*001 gets them.
func (a fireActivity) params() callevents.Params {
	return callevents.Params{CallID: a.CallID, CallerIDNum: a.CallerIDNum, CallerIDName: a.CallerIDName, CalledExtension: a.CalledExtension,
		CallStatus: "CALLING", CallFlow: "IN", CallerExtension: a.CallerExtension, CalledNumber: a.CalledNumber}
}

// ceiling posts the same form to the same receiver from n goroutines with a
// plain client and returns requests per second.
func (b *benchRig) ceiling(ctx context.Context, d time.Duration, n int) float64 {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	defer client.CloseIdleConnections()
	var done atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				resp, err := client.Post(b.rcv.URL+"/hook", "application/x-www-form-urlencoded", strings.NewReader(b.payload))
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds()
}

// post sends activities to the intake.
func (b *benchRig) post(client *http.Client, v any) error {
	body, _ := json.Marshal(v)
	req, _ := http.NewRequest(http.MethodPost, b.api.URL+"/pbx/v1/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("intake answered HTTP %d: %s", resp.StatusCode, out)
	}
	return nil
}

// waitCount waits until the receiver has n bench deliveries in all.
func (b *benchRig) waitCount(ctx context.Context, n int64, timeout time.Duration) error {
	deadline := time.After(timeout)
	for b.count.Load() < n {
		select {
		case <-b.signal:
		case <-deadline:
			return fmt.Errorf("only %d of %d deliveries arrived within %v", b.count.Load(), n, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// throughput reports events in batches of 200 from 4 posters at once and
// returns deliveries per second, first post to last arrival.
func (b *benchRig) throughput(ctx context.Context, events int) (float64, error) {
	base := b.count.Load()
	client := &http.Client{}
	start := time.Now()
	batches := make(chan int)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for from := range batches {
				acts := make([]fireActivity, 0, 200)
				for i := from; i < min(from+200, events); i++ {
					acts = append(acts, benchActivity("tput", i))
				}
				if err := b.post(client, acts); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for from := 0; from < events; from += 200 {
		batches <- from
	}
	close(batches)
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	if err := b.waitCount(ctx, base+int64(events), 5*time.Minute); err != nil {
		return 0, err
	}
	return float64(events) / time.Since(start).Seconds(), nil
}

// latency reports one event at a time at a steady rate and returns, for
// each, the time from sending it to the intake until the receiver had it,
// and until the intake answered.
func (b *benchRig) latency(ctx context.Context, rate int, d time.Duration) ([]time.Duration, []time.Duration, error) {
	base := b.count.Load()
	n := int(float64(rate) * d.Seconds())
	sent := make([]time.Time, n)
	answered := make([]time.Duration, n)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := 0; i < n; i++ {
		// Pace by the schedule, not by the previous send, so a slow
		// answer does not lower the rate.
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		sent[i] = time.Now()
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := b.post(client, benchActivity("rate", i)); err != nil {
				failed.Store(err)
			}
			answered[i] = time.Since(sent[i])
		}(i)
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return nil, nil, err
	}
	if err := b.waitCount(ctx, base+int64(n), time.Minute); err != nil {
		return nil, nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	lat := make([]time.Duration, n)
	for i := range lat {
		at, ok := b.arrived[benchActivity("rate", i).CallID]
		if !ok {
			return nil, nil, errors.New("a delivery of the latency phase is missing")
		}
		lat[i] = at.Sub(sent[i])
	}
	return lat, answered, nil
}

func percentileMs(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return float64(s[i].Microseconds()) / 1000
}
