package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/service"
	"github.com/callevents/callevents/store"
)

// rig is the service under test (intake, store, dispatcher, with serve's
// defaults but no metrics), its receiver and an admin token.
type rig struct {
	disp        *dispatcher.Dispatcher
	api         *httptest.Server
	rcv         *receiver
	token       string
	concurrency int    // the dispatcher's, resolved
	payload     string // the ceiling's form: what a delivery posts
}

// benchExtension has the one Call Event (Dial-In, to the receiver) that
// each bench activity triggers.
const benchExtension = "0009*001"

// newRig starts the rig on db with a dispatcher of concurrency (0: the
// default); close stops it.
func newRig(ctx context.Context, db *store.DB, concurrency int) (*rig, error) {
	log := slog.New(slog.DiscardHandler)
	r := &rig{rcv: newReceiver()}
	// serve's defaults, but for the receiver on loopback, which the
	// outbound policy refuses unless allowed.
	policy, err := dispatcher.ParseAllowTargets("127.0.0.0/8")
	if err != nil {
		r.close()
		return nil, err
	}
	cfg := dispatcher.Config{Store: db, Logger: log, Concurrency: concurrency, Policy: policy}
	r.concurrency = cfg.WithDefaults().Concurrency
	if r.disp, err = dispatcher.New(cfg); err != nil {
		r.close()
		return nil, err
	}
	queued := func(int) { r.disp.Notify() }
	mux := http.NewServeMux()
	service.New(service.Config{
		CallEvents: &callevents.CallEventService{Store: db, CheckTarget: policy.CheckURL},
		Auth:       &callevents.Authenticator{Store: db},
		Activities: &callevents.ActivityService{Store: db, Queued: queued},
		Logger:     log,
	}).Register(mux)
	r.api = httptest.NewServer(mux)
	if err := r.disp.Start(context.WithoutCancel(ctx)); err != nil {
		r.close()
		return nil, err
	}
	c, secret, err := callevents.NewClient("bench", callevents.ScopeAdmin, time.Now())
	if err == nil {
		err = db.CreateClient(ctx, c)
	}
	if err == nil {
		r.token, _, err = (&callevents.Authenticator{Store: db}).IssueToken(ctx, c.ID, secret)
	}
	svc := &callevents.CallEventService{Store: db}
	if err == nil {
		// A database that held a run before has its Call Event and its
		// call ids: this run's reports would be duplicates, and the bench
		// would wait for deliveries that never come.
		var n int
		_, n, err = svc.FindCallEvents(ctx, callevents.Principal{Scope: callevents.ScopeAdmin}, callevents.CallEventFilter{Extension: benchExtension, Limit: 1})
		if err == nil && n > 0 {
			err = fmt.Errorf("the database already holds a bench run (Call Events on %s): give a fresh scratch database", benchExtension)
		}
	}
	if err == nil {
		url, post := r.rcv.url(), callevents.MethodPOST
		_, err = svc.AddCallEvent(ctx, callevents.Principal{Scope: callevents.ScopeAdmin}, benchExtension, callevents.DialIn,
			callevents.CallEventUpdate{URL: &url, Method: &post})
	}
	if err != nil {
		r.close()
		return nil, err
	}
	r.payload = benchActivity(ceilingPrefix, 0).params().Encode()
	return r, nil
}

// close stops the dispatcher (gracefully), the API and the receiver.
func (r *rig) close() {
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r.disp != nil {
		r.disp.Stop(stopCtx)
	}
	if r.api != nil {
		r.api.Close()
	}
	r.rcv.close()
}

// activity is the intake's JSON form of one call activity (SPEC §7), with
// the fields the bench sets.
type activity struct {
	CallID          string `json:"callId"`
	Phase           string `json:"phase"`
	CallerExtension string `json:"callerExtension,omitempty"`
	CallerIDNum     string `json:"callerIdNum,omitempty"`
	CallerIDName    string `json:"callerIdName,omitempty"`
	CalledNumber    string `json:"calledNumber,omitempty"`
	CalledExtension string `json:"calledExtension,omitempty"`
}

// CallID prefixes of the phases.
const (
	ceilingPrefix    = "ceiling"
	throughputPrefix = "tput"
	latencyPrefix    = "rate"
)

// benchActivity is the i-th dial of a phase, from 0009*100 to benchExtension.
func benchActivity(prefix string, i int) activity {
	return activity{CallID: fmt.Sprintf("%s-%07d", prefix, i), Phase: "dial", CallerExtension: "0009*100", CallerIDNum: "100",
		CallerIDName: "Bench Caller", CalledExtension: benchExtension, CalledNumber: "001"}
}

// params is the activity's parameters as the Call Event of benchExtension
// gets them.
func (a activity) params() callevents.Params {
	return callevents.Params{CallID: a.CallID, CallerIDNum: a.CallerIDNum, CallerIDName: a.CallerIDName, CalledExtension: a.CalledExtension,
		CallStatus: "CALLING", CallFlow: "IN", CallerExtension: a.CallerExtension, CalledNumber: a.CalledNumber}
}

// ceiling posts the same form to the same receiver from n goroutines with a
// plain client and returns requests per second.
func (r *rig) ceiling(ctx context.Context, d time.Duration, n int) float64 {
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
				resp, err := client.Post(r.rcv.url(), "application/x-www-form-urlencoded", strings.NewReader(r.payload))
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
func (r *rig) post(client *http.Client, v any) error {
	body, _ := json.Marshal(v)
	req, _ := http.NewRequest(http.MethodPost, r.api.URL+"/pbx/v1/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.token)
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

// throughput reports events in batches of 200 from 4 posters at once and
// returns deliveries per second, first post to last arrival.
func (r *rig) throughput(ctx context.Context, events int) (float64, error) {
	base := r.rcv.count.Load()
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
				acts := make([]activity, 0, 200)
				for i := from; i < min(from+200, events); i++ {
					acts = append(acts, benchActivity(throughputPrefix, i))
				}
				if err := r.post(client, acts); err != nil {
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
	if err := r.rcv.waitCount(ctx, base+int64(events), 5*time.Minute); err != nil {
		return 0, err
	}
	return float64(events) / time.Since(start).Seconds(), nil
}

// latency reports one event at a time at a steady rate and returns, for
// each, the time from sending it to the intake until the receiver had it,
// and until the intake answered.
func (r *rig) latency(ctx context.Context, rate int, d time.Duration) ([]time.Duration, []time.Duration, error) {
	base := r.rcv.count.Load()
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
			if err := r.post(client, benchActivity(latencyPrefix, i)); err != nil {
				failed.Store(err)
			}
			answered[i] = time.Since(sent[i])
		}(i)
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return nil, nil, err
	}
	if err := r.rcv.waitCount(ctx, base+int64(n), time.Minute); err != nil {
		return nil, nil, err
	}
	lat := make([]time.Duration, n)
	for i := range lat {
		at, ok := r.rcv.arrivedAt(benchActivity(latencyPrefix, i).CallID)
		if !ok {
			return nil, nil, errors.New("a delivery of the latency phase is missing")
		}
		lat[i] = at.Sub(sent[i])
	}
	return lat, answered, nil
}

// percentileMs is the p-quantile of d (nearest rank), in milliseconds.
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
