package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callevents/callevents"
)

// rig is the service under test, in a process of its own (serviceMain),
// its receiver in this process, and the service's admin token.
type rig struct {
	rcv         *receiver
	cmd         *exec.Cmd
	commands    io.WriteCloser // the service's stdin
	exited      chan error     // the service process's end
	api         string
	token       string
	concurrency int    // the dispatcher's, resolved
	dialect     string // the store's
	payload     string // the ceiling's form: what a delivery posts
	extensions  int
}

// benchExtension is the i-th of the extensions that bench activities
// call, each with one Dial-In Call Event to the receiver.
func benchExtension(i int) string { return fmt.Sprintf("0009*%03d", i+1) }

// callerExtension places every bench call.
const callerExtension = "0009*900"

// startRig starts the receiver and the service process on dsn with a
// dispatcher of concurrency (0: the default) and a Call Event on each of
// extensions; close stops them.
func startRig(ctx context.Context, dsn string, concurrency, extensions int) (*rig, error) {
	r := &rig{rcv: newReceiver(), extensions: extensions, exited: make(chan error, 1)}
	cfg, _ := json.Marshal(serviceConfig{DSN: dsn, ReceiverURL: r.rcv.url(), Concurrency: concurrency, Extensions: extensions})
	self, err := os.Executable()
	if err != nil {
		r.close()
		return nil, err
	}
	r.cmd = exec.Command(self)
	r.cmd.Env = append(os.Environ(), serviceEnv+"="+string(cfg))
	r.cmd.Stderr = os.Stderr
	out, err := r.cmd.StdoutPipe()
	if err == nil {
		r.commands, err = r.cmd.StdinPipe()
	}
	if err == nil {
		err = r.cmd.Start()
	}
	if err != nil {
		r.cmd = nil
		r.close()
		return nil, fmt.Errorf("start the service process: %w", err)
	}
	go func() { r.exited <- r.cmd.Wait() }()
	lines := make(chan serviceReady, 1)
	go func() {
		var ready serviceReady
		if err := json.NewDecoder(out).Decode(&ready); err != nil {
			ready.Error = "the service process ended before it served: " + err.Error()
		}
		lines <- ready
		io.Copy(io.Discard, out)
	}()
	var ready serviceReady
	select {
	case ready = <-lines:
	case <-ctx.Done():
		r.close()
		return nil, ctx.Err()
	}
	if ready.Error != "" {
		r.close()
		return nil, errors.New(ready.Error)
	}
	r.api, r.token, r.concurrency, r.dialect = ready.API, ready.Token, ready.Concurrency, ready.Dialect
	r.payload = benchActivity(ceilingPrefix, 0, extensions).params().Encode()
	return r, nil
}

// startProfile has the service write a CPU profile to file until
// stopProfile.
func (r *rig) startProfile(file string) error {
	_, err := fmt.Fprintf(r.commands, "%s%s\n", cmdStartProfile, file)
	return err
}

func (r *rig) stopProfile() error {
	_, err := fmt.Fprintln(r.commands, cmdStopProfile)
	return err
}

// measure runs phase and returns the CPU time, user and system, the
// service process used meanwhile (from /proc/<pid>/stat); with a profile
// file, the service writes a CPU profile of the phase there.
func (r *rig) measure(profile string, phase func() error) (time.Duration, error) {
	if profile != "" {
		file, err := filepath.Abs(profile)
		if err == nil {
			err = r.startProfile(file)
		}
		if err != nil {
			return 0, err
		}
	}
	before, err := processCPU(r.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	if err := phase(); err != nil {
		return 0, err
	}
	after, err := processCPU(r.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	if profile != "" {
		if err := r.stopProfile(); err != nil {
			return 0, err
		}
	}
	return after - before, nil
}

// close stops the service process (gracefully: its dispatcher finishes
// what it holds) and the receiver.
func (r *rig) close() {
	if r.cmd != nil {
		r.commands.Close()
		select {
		case <-r.exited:
		case <-time.After(30 * time.Second):
			r.cmd.Process.Kill()
			<-r.exited
		}
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

// benchActivity is the i-th dial of a phase, from callerExtension to the
// bench extensions in turn (of extensions in all).
func benchActivity(prefix string, i, extensions int) activity {
	called := benchExtension(i % max(extensions, 1))
	return activity{CallID: fmt.Sprintf("%s-%07d", prefix, i), Phase: "dial", CallerExtension: callerExtension, CallerIDNum: "900",
		CallerIDName: "Bench Caller", CalledExtension: called, CalledNumber: called[len("0009*"):]}
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
	req, _ := http.NewRequest(http.MethodPost, r.api+"/pbx/v1/events", bytes.NewReader(body))
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

// throughput reports events in batches of batch from 4 posters at once and
// returns deliveries per second, first post to last arrival.
func (r *rig) throughput(ctx context.Context, events, batch int) (float64, error) {
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
				acts := make([]activity, 0, batch)
				for i := from; i < min(from+batch, events); i++ {
					acts = append(acts, benchActivity(throughputPrefix, i, r.extensions))
				}
				if err := r.post(client, acts); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for from := 0; from < events; from += batch {
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
			if err := r.post(client, benchActivity(latencyPrefix, i, r.extensions)); err != nil {
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
		at, ok := r.rcv.arrivedAt(benchActivity(latencyPrefix, i, r.extensions).CallID)
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
