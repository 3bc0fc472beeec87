package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// requireFaultTool skips a fault test that cannot run here, except under
// CI=true, where it fails: CI must not pass by skipping them.
func requireFaultTool(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (required under CI=true)", why)
	}
	t.Skip(why)
}

// callCounts returns how many deliveries each CallID got.
func (r *receiver) callCounts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.calls)
}

// waitEvery waits until every call in ids has been delivered, and then
// checks that none was delivered twice.
func (r *receiver) waitEvery(t *testing.T, ids []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		got := r.callCounts()
		var missing []string
		for _, id := range ids {
			if got[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged calls not delivered %v after the database came back, e.g. %v",
				len(missing), len(ids), timeout, missing[:min(5, len(missing))])
		}
		<-tick.C
	}
	got := r.callCounts()
	var dups []string
	for _, id := range ids {
		if got[id] > 1 {
			dups = append(dups, fmt.Sprintf("%s×%d", id, got[id]))
		}
	}
	sort.Strings(dups)
	if len(dups) > 0 {
		t.Errorf("%d calls delivered more than once, e.g. %v", len(dups), dups[:min(5, len(dups))])
	}
}

// intakeLoad posts call activity to a serve at a steady pace from a few
// goroutines, each request new dial activities for ext (one delivery
// each), and checks every answer: 202 with every activity queued, or the
// documented 503 JSON. Anything else, a 500 above all, is a test error.
type intakeLoad struct {
	t       *testing.T
	api     *apiClient
	client  *http.Client
	batch   int    // activities per request
	pad     string // callerIdName, to fill a disk faster
	ext     string
	prefix  string
	done    chan struct{} // closed by stop
	once    sync.Once
	wg      sync.WaitGroup
	mu      sync.Mutex
	seq     int
	ok      []string  // call ids acknowledged with 202
	lastOK  time.Time // when the last 202 came
	busy    int       // 503 answers
	message string    // the message of the last 503
}

// startIntakeLoad starts workers that each post a request every interval.
func startIntakeLoad(t *testing.T, api *apiClient, prefix, ext string, workers, batch int, pad string, interval time.Duration) *intakeLoad {
	l := &intakeLoad{t: t, api: api, client: &http.Client{Timeout: 20 * time.Second}, batch: batch, pad: pad, ext: ext, prefix: prefix, done: make(chan struct{})}
	t.Cleanup(l.stop)
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				l.post()
				select {
				case <-l.done:
					return
				case <-tick.C:
				}
			}
		}()
	}
	return l
}

// stop ends the load and waits for the requests in flight to be answered
// (cancelling them would leave calls stored but never acknowledged).
func (l *intakeLoad) stop() {
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
}

func (l *intakeLoad) post() {
	l.mu.Lock()
	from := l.seq
	l.seq += l.batch
	l.mu.Unlock()
	acts := dialActivities(l.prefix, from, l.batch, l.ext)
	ids := make([]string, len(acts))
	for i := range acts {
		acts[i].CallerIDName = l.pad
		ids[i] = acts[i].CallID
	}
	body, _ := json.Marshal(acts)
	req, _ := http.NewRequest(http.MethodPost, l.api.base+"/pbx/v1/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.api.token)
	resp, err := l.client.Do(req)
	if err != nil {
		l.t.Errorf("intake: %v", err)
		return
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	switch resp.StatusCode {
	case http.StatusAccepted:
		var got struct {
			Queued *int `json:"queued"`
		}
		if json.Unmarshal(raw, &got) != nil || got.Queued == nil || *got.Queued != l.batch {
			l.t.Errorf("intake: 202 %s, want {\"queued\":%d}", raw, l.batch)
			return
		}
		l.mu.Lock()
		l.ok = append(l.ok, ids...)
		l.lastOK = time.Now()
		l.mu.Unlock()
	case http.StatusServiceUnavailable:
		var got struct {
			Error struct {
				Code      string `json:"code"`
				Message   string `json:"message"`
				RequestID string `json:"requestId"`
			} `json:"error"`
		}
		err := json.Unmarshal(raw, &got)
		if err != nil || got.Error.Code != "service_unavailable" || got.Error.RequestID == "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || resp.Header.Get("Retry-After") == "" {
			l.t.Errorf("intake: 503 (Content-Type %q, Retry-After %q) %s, want the service_unavailable JSON with Retry-After",
				resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), raw)
			return
		}
		for _, leak := range []string{"sql", "SQL", "tcp", "refused", ".db", "(13)", "/"} {
			if strings.Contains(got.Error.Message, leak) {
				l.t.Errorf("intake: the 503 message %q leaks %q", got.Error.Message, leak)
			}
		}
		l.mu.Lock()
		l.busy++
		l.message = got.Error.Message
		l.mu.Unlock()
	default:
		l.t.Errorf("intake: HTTP %d %s, want 202 or 503", resp.StatusCode, raw)
	}
}

// result returns the acknowledged call ids, the time of the last 202, the
// number of 503 answers and the message of the last.
func (l *intakeLoad) result() (ok []string, lastOK time.Time, busy int, message string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ok...), l.lastOK, l.busy, l.message
}
