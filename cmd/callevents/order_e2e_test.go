package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/storetest"
)

// orderHit is one request an orderReceiver got.
type orderHit struct {
	index    int // arrival order, over all requests
	hook     string
	callID   string
	event    string
	path     string
	seq      int
	attempt  int
	arrived  time.Time // the receiver had read it
	answered time.Time // just before the 200 was written
}

// orderReceiver is a dispatchertest.Receiver that takes 5-20 ms per
// request and notes when each answer was written, so that two requests of
// one call that overlapped would show it.
type orderReceiver struct {
	*dispatchertest.Receiver
	mu       sync.Mutex
	answered map[int]time.Time // arrival (1-based) → just before its 200 was written
}

func newOrderReceiver(t *testing.T) *orderReceiver {
	r := &orderReceiver{answered: map[int]time.Time{}}
	r.Receiver = dispatchertest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		time.Sleep(time.Duration(5+((n-1)*7)%16) * time.Millisecond) // the receiver's work
		// Taken before the answer is written: the dispatcher cannot have
		// seen it earlier, so "the next one arrived after this" is proof.
		answered := time.Now()
		r.mu.Lock()
		r.answered[n] = answered
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	return r
}

// wait waits until n requests have been answered.
func (r *orderReceiver) wait(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	dispatchertest.WaitWithin(t, timeout, fmt.Sprintf("%d requests answered by the receiver", n), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.answered) >= n
	})
}

// snapshot returns the requests answered so far, in arrival order.
func (r *orderReceiver) snapshot() []orderHit {
	hits := r.Hits()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []orderHit
	for i, h := range hits {
		answered, ok := r.answered[i+1]
		if !ok {
			continue
		}
		params, _ := url.ParseQuery(h.Body)
		seq, _ := strconv.Atoi(h.Header.Get("X-CallEvents-Sequence"))
		attempt, _ := strconv.Atoi(h.Header.Get("X-CallEvents-Attempt"))
		out = append(out, orderHit{index: i, hook: h.Header.Get("webhook-id"), callID: params.Get("CallID"), event: h.Header.Get("X-CallEvents-Event"),
			path: h.Path, seq: seq, attempt: attempt, arrived: h.At, answered: answered})
	}
	return out
}

// startNamedServe is startServe with a name for the process's output.
func startNamedServe(t *testing.T, name, db string, admin [2]string, extra ...string) (*proc, *apiClient, [2]string) {
	t.Helper()
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--db", db, "--allow-targets", "127.0.0.0/8"}, extra...)
	p := startProc(t, name, args...)
	c, admin := connectServe(t, p, admin)
	return p, c, admin
}

// intakePost is one intake request of TestE2EOrderAcrossProcesses, timed.
type intakePost struct {
	sent, done time.Time
	err        error
}

// postIntake posts one activity; it may run on any goroutine (it does
// not touch t). The request is built before ready is closed, so that the
// two posts of a call leave together.
func postIntake(client *http.Client, api *apiClient, act fireActivity, ready *sync.WaitGroup, start <-chan struct{}) intakePost {
	body, _ := json.Marshal(act)
	req, err := http.NewRequest(http.MethodPost, api.base+"/pbx/v1/events", bytes.NewReader(body))
	ready.Done()
	if err != nil {
		return intakePost{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+api.token)
	<-start
	res := intakePost{sent: time.Now()}
	resp, err := client.Do(req)
	res.done = time.Now()
	if err != nil {
		res.err = err
		return res
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct {
		Queued int `json:"queued"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(out, &got) != nil || got.Queued != 1 {
		res.err = fmt.Errorf("%s %s: HTTP %d %s, want 202 with one queued", act.Phase, act.CallID, resp.StatusCode, out)
	}
	return res
}

// slowCommitProxy forwards MySQL connections to a server and holds every
// COMMIT a client sends for a random time below maxDelay before passing
// it on: processes with a slow, uneven link to the database, whose
// transactions stay uncommitted for a while after their last statement.
type slowCommitProxy struct {
	ln      net.Listener
	commits atomic.Int64
	mu      sync.Mutex
	conns   map[net.Conn]bool
}

func startSlowCommitProxy(t *testing.T, target string, maxDelay time.Duration) *slowCommitProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowCommitProxy{ln: ln, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.conns = nil
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			if !p.track(client, server) {
				return
			}
			wg.Go(func() {
				io.Copy(client, server)
				client.Close()
			})
			wg.Go(func() {
				defer server.Close()
				p.forward(server, client, maxDelay)
			})
		}
	})
	return p
}

// track remembers the connections for Cleanup; false once it has run.
func (p *slowCommitProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

// forward copies client packets (3-byte length, sequence id, payload) to
// server, sleeping before each COM_QUERY "COMMIT" (what go-sql-driver
// sends for Tx.Commit).
func (p *slowCommitProxy) forward(server, client net.Conn, maxDelay time.Duration) {
	r := bufio.NewReader(client)
	var head [4]byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return
		}
		payload := make([]byte, int(head[0])|int(head[1])<<8|int(head[2])<<16)
		if _, err := io.ReadFull(r, payload); err != nil {
			return
		}
		if len(payload) == 7 && payload[0] == 0x03 && strings.EqualFold(string(payload[1:]), "COMMIT") {
			time.Sleep(rand.N(maxDelay)) // the slow link
			p.commits.Add(1)
		}
		if _, err := server.Write(append(head[:], payload...)); err != nil {
			return
		}
	}
}

// Ensure commit order holds across processes on one MariaDB database: two
// serve processes, each dispatching; every call's dial is posted to A and
// its answer to B at the same instant, so the two accepting transactions
// race. The dial fans out to a Dial-Out and the answer to an Answer-Out
// Call Event of 0003*210 at one receiver origin: one order key per call.
// For every call the receiver gets both, each webhook-id once, with
// X-CallEvents-Sequence 1 and 2, sequence 1 first, and the second only
// after the first was answered. Which phase is 1 is whichever transaction
// committed first: the contract is that delivery order is sequence order,
// and sequence order is commit order.
//
// Why this fails when a sequence is fixed before the commit (an
// auto-increment id taken at insert, MAX(sequence)+1, or an order_keys
// counter whose lock is released before the deliveries commit): when A's
// transaction takes 1 for the dial and B's takes 2 for the answer, B can
// commit first, and B's dispatcher, woken by its own intake, claims the
// answer at once, because the only earlier delivery of its key is not
// committed and so invisible to the claim. The receiver then gets 2
// before 1 (or 2 while 1 is in flight); the same with A and B swapped.
// Left to chance, that window is a commit's latency, too short to be hit:
// a copy of the store with assignSequences in a transaction of its own
// passed 3 runs of 320 calls. So both processes reach the database
// through a proxy that holds each COMMIT for a random 0-30 ms, and
// whichever takes its sequence first is as likely as not to commit
// second. With that, the copy failed 5 runs in 5, and so did one with
// the sequence upsert autocommitted (taken at insert, as an
// auto-increment id is), with dozens of calls out of order or
// overlapping in each run. With the order_keys row lock held until
// commit, the other's upsert instead waits for that commit, so the second
// to commit always gets 2; and the claim refuses 2 while 1 is pending or
// running.
func TestE2EOrderAcrossProcesses(t *testing.T) {
	dsn := storetest.MySQLTestDSN(t)
	const (
		calls    = 320
		parallel = 16
		ext      = "0003*210"
	)
	begin := time.Now()
	rcv := newOrderReceiver(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	slow := startSlowCommitProxy(t, u.Host, 30*time.Millisecond)
	u.Host = slow.ln.Addr().String()
	serveA, apiA, admin := startNamedServe(t, "serve A", u.String(), [2]string{})
	serveB, apiB, _ := startNamedServe(t, "serve B", u.String(), admin)
	apiA.addCallEvent(ext, int(callevents.DialOut), rcv.URL+"/dial", "")
	apiB.addCallEvent(ext, int(callevents.AnswerOut), rcv.URL+"/answer", "")
	t.Logf("two serve processes on one database after %v", time.Since(begin).Round(time.Millisecond))

	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * parallel}}
	defer client.CloseIdleConnections()
	posts := make([][2]intakePost, calls)
	jobs := make(chan int)
	var workers sync.WaitGroup
	posting := time.Now()
	for range parallel {
		workers.Go(func() {
			for i := range jobs {
				dial := fireActivity{CallID: fmt.Sprintf("order-%04d", i), Phase: "dial", CallerExtension: ext,
					CallerIDNum: "210", CallerIDName: "Alice Ng", CalledExtension: "0003*211", CalledNumber: "211"}
				answer := dial
				answer.Phase = "answer"
				start := make(chan struct{})
				var ready, done sync.WaitGroup
				ready.Add(2)
				done.Add(2)
				go func() { defer done.Done(); posts[i][0] = postIntake(client, apiA, dial, &ready, start) }()
				go func() { defer done.Done(); posts[i][1] = postIntake(client, apiB, answer, &ready, start) }()
				ready.Wait()
				close(start)
				done.Wait()
			}
		})
	}
	for i := range calls {
		jobs <- i
	}
	close(jobs)
	workers.Wait()
	posted := time.Since(posting)
	together := 0
	for i, p := range posts {
		for _, r := range p {
			if r.err != nil {
				t.Fatalf("call %d: %v", i, r.err)
			}
		}
		if p[0].sent.Before(p[1].done) && p[1].sent.Before(p[0].done) {
			together++
		}
	}
	t.Logf("%d calls posted in %v; in %d of them the dial and the answer were accepted at the same time", calls, posted.Round(time.Millisecond), together)

	rcv.wait(t, 2*calls, 60*time.Second)
	t.Logf("all %d requests delivered %v after the first post", 2*calls, time.Since(posting).Round(time.Millisecond))
	// A graceful stop finishes what is in flight: anything sent twice
	// would have arrived by now.
	serveA.stop()
	serveB.stop()

	hits := rcv.snapshot()
	if len(hits) != 2*calls {
		t.Errorf("the receiver got %d requests, want %d", len(hits), 2*calls)
	}
	byHook := map[string][]orderHit{}
	byCall := map[string][]orderHit{}
	for _, h := range hits {
		byHook[h.hook] = append(byHook[h.hook], h)
		byCall[h.callID] = append(byCall[h.callID], h)
	}
	for id, hs := range byHook {
		if len(hs) != 1 {
			t.Errorf("webhook-id %q arrived %d times", id, len(hs))
		}
	}
	answerFirst, bad := 0, 0
	for i := range calls {
		callID := fmt.Sprintf("order-%04d", i)
		hs := byCall[callID]
		sort.Slice(hs, func(a, b int) bool { return hs[a].seq < hs[b].seq })
		fail := func(format string, args ...any) {
			if bad++; bad <= 20 {
				t.Errorf("%s: "+format+"\n%s", append([]any{callID}, append(args, formatHits(hs, posting))...)...)
			}
		}
		if len(hs) != 2 {
			fail("%d requests, want 2", len(hs))
			continue
		}
		events := map[string]string{hs[0].event: hs[0].path, hs[1].event: hs[1].path}
		if events["Dial-Out"] != "/dial" || events["Answer-Out"] != "/answer" {
			fail("want one Dial-Out to /dial and one Answer-Out to /answer")
		}
		if hs[0].seq != 1 || hs[1].seq != 2 {
			fail("sequences %d and %d, want 1 and 2", hs[0].seq, hs[1].seq)
			continue
		}
		if hs[0].attempt != 1 || hs[1].attempt != 1 {
			fail("attempts %d and %d, want 1 each", hs[0].attempt, hs[1].attempt)
		}
		if hs[1].index < hs[0].index {
			fail("sequence 2 arrived before sequence 1")
		} else if hs[1].arrived.Before(hs[0].answered) {
			fail("sequence 2 arrived %v before sequence 1 was answered", hs[0].answered.Sub(hs[1].arrived))
		}
		if hs[0].event == "Answer-Out" {
			answerFirst++
		}
	}
	if bad > 20 {
		t.Errorf("… %d calls wrong in all", bad)
	}
	t.Logf("%d of %d calls had the answer committed first (sequence 1); %d COMMITs held up to 30 ms", answerFirst, calls, slow.commits.Load())
	if slow.commits.Load() < calls/parallel {
		t.Errorf("only %d COMMITs passed the slow proxy: it is not in the way", slow.commits.Load())
	}

	// The store agrees: every delivery delivered, with the sequence the
	// receiver saw.
	db, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	delivered, _, err := db.FindDeliveries(context.Background(), callevents.DeliveryFilter{Extension: ext, State: callevents.DeliveryDelivered})
	if err != nil {
		t.Fatal(err)
	}
	if len(delivered) != 2*calls {
		t.Errorf("%d deliveries delivered in the store, want %d", len(delivered), 2*calls)
	}
	for _, d := range delivered {
		if hs := byHook[d.ID]; len(hs) == 0 || hs[0].seq != d.Sequence {
			t.Errorf("delivery %s of %s has sequence %d in the store, the receiver saw %v", d.ID, d.CallID, d.Sequence, hs)
			break
		}
	}
	t.Logf("%v in all", time.Since(begin).Round(time.Millisecond))
}

// formatHits lists one call's requests with times from t0.
func formatHits(hs []orderHit, t0 time.Time) string {
	var b bytes.Buffer
	for _, h := range hs {
		fmt.Fprintf(&b, "  #%d seq %d %s %s attempt %d: arrived %v, answered %v\n", h.index, h.seq, h.event, h.path, h.attempt,
			h.arrived.Sub(t0).Round(time.Microsecond), h.answered.Sub(t0).Round(time.Microsecond))
	}
	return b.String()
}
