package main

import (
	"bufio"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// Ensure GET /metrics reports what serve did: one SOAP Add, one SOAP fault,
// one intake post whose delivery reaches a receiver, and the queue gauges.
func TestMetricsEndpoint(t *testing.T) {
	db, token := openTestStore(t, "sqlite:"+filepath.Join(t.TempDir(), "metrics.db"))
	api := startTestApp(t, db, token, slog.New(slog.DiscardHandler), "--allow-targets", "127.0.0.0/8")
	rcv := newReceiver(t)

	api.addCallEvent("0003*211", int(callevents.DialIn), rcv.URL+"/in", "")
	fault := `<v1:AddPhoneCallEvent><v1:extension>0003*211</v1:extension><v1:type>99</v1:type><v1:url>` + rcv.URL + `/x</v1:url></v1:AddPhoneCallEvent>`
	resp, err := http.Post(api.base+"/soap/PhoneCallEvents", "text/xml; charset=utf-8", strings.NewReader(benchEnvelope(token, fault)))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("the bad Add answered HTTP %d, want a SOAP 1.1 fault (500)", resp.StatusCode)
	}
	if n := api.postActivities([]fireActivity{{CallID: "m1", Phase: "dial", CallerExtension: "0003*210", CalledExtension: "0003*211"}}); n != 1 {
		t.Fatalf("intake queued %d, want 1", n)
	}
	rcv.waitDistinct(t, 1, 30*time.Second)

	// The outcome is counted once it is recorded, just after the receiver
	// answered: scrape until it shows, within a deadline.
	var got map[string]float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = scrape(t, api.base+"/metrics")
		if got[`callevents_deliveries_total{error_class="",outcome="delivered"}`] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivered outcome counted after 30s; scraped:\n%v", got)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
	for series, want := range map[string]float64{
		`callevents_requests_total{code="0",edge="soap",operation="AddPhoneCallEvent"}`:   1,
		`callevents_requests_total{code="301",edge="soap",operation="AddPhoneCallEvent"}`: 1,
		`callevents_requests_total{code="0",edge="intake",operation="events"}`:            1,
		`callevents_intake_activities_total{result="accepted"}`:                           1,
		`callevents_intake_activities_total{result="rejected"}`:                           0,
		`callevents_intake_queued_total`:                                                  1,
		`callevents_delivery_attempt_seconds_count`:                                       1,
		`callevents_queue_pending`:                                                        0,
		`callevents_queue_running`:                                                        0,
		`callevents_queue_oldest_due_seconds`:                                             0,
		`callevents_ami_connected`:                                                        0,
	} {
		v, ok := got[series]
		if !ok {
			t.Errorf("%s is missing", series)
		} else if v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
	for _, series := range []string{"go_goroutines", "process_start_time_seconds"} {
		if _, ok := got[series]; !ok {
			t.Errorf("%s is missing: no Go or process collector", series)
		}
	}
}

// scrape reads a text exposition into series (name and labels as written)
// and values.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A receiver that answers 500 opens its breaker after --breaker-failures
// failures: /metrics shows one breaker open and the transition counted.
func TestMetricsBreaker(t *testing.T) {
	db, token := openTestStore(t, "sqlite:"+filepath.Join(t.TempDir(), "breaker.db"))
	api := startTestApp(t, db, token, slog.New(slog.DiscardHandler), "--allow-targets", "127.0.0.0/8", "--breaker-failures", "1")
	failing := dispatchertest.NewReceiver(t, dispatchertest.Status(http.StatusInternalServerError))
	api.addCallEvent("0003*211", int(callevents.DialIn), failing.URL+"/in", "")
	if n := api.postActivities([]fireActivity{{CallID: "b1", Phase: "dial", CallerExtension: "0003*210", CalledExtension: "0003*211"}}); n != 1 {
		t.Fatalf("intake queued %d, want 1", n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := scrape(t, api.base+"/metrics")
		if got[`callevents_dispatch_breakers_open`] == 1 && got[`callevents_dispatch_breaker_transitions_total{state="open"}`] == 1 {
			if v := got[`callevents_dispatch_breaker_transitions_total{state="closed"}`]; v != 0 {
				t.Errorf(`transitions{state="closed"} = %v, want 0`, v)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no open breaker after 30s; scraped breakers_open %v, transitions open %v", got[`callevents_dispatch_breakers_open`],
				got[`callevents_dispatch_breaker_transitions_total{state="open"}`])
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}
