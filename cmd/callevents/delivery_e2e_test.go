package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/storetest"
)

// receiver is a dispatchertest.Receiver on loopback that also counts
// what it gets by webhook-id and by CallID.
type receiver struct {
	*dispatchertest.Receiver
	mu     sync.Mutex
	counts map[string]int // webhook-id → requests
	calls  map[string]int // CallID → requests
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{counts: map[string]int{}, calls: map[string]int{}}
	r.Receiver = dispatchertest.NewReceiver(t, func(_ http.ResponseWriter, req *http.Request, _ int) {
		body, _ := io.ReadAll(req.Body)
		params := req.URL.Query()
		if req.Method == http.MethodPost {
			params, _ = url.ParseQuery(string(body))
		}
		r.mu.Lock()
		r.counts[req.Header.Get("webhook-id")]++
		r.calls[params.Get("CallID")]++
		r.mu.Unlock()
	})
	return r
}

// waitDistinct waits until n distinct webhook-ids have arrived.
func (r *receiver) waitDistinct(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	dispatchertest.WaitWithin(t, timeout, fmt.Sprintf("%d distinct deliveries at the receiver", n), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.counts) >= n
	})
}

// last is the latest request the receiver got.
func (r *receiver) last(t *testing.T) dispatchertest.Hit {
	t.Helper()
	hits := r.Hits()
	if len(hits) == 0 {
		t.Fatal("the receiver got no request")
	}
	return hits[len(hits)-1]
}

func (r *receiver) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.counts)
}

// Ensure `callevents fire` reports activity that a running serve delivers
// to the Call Event's receiver: the ten parameters, the headers and a
// Standard Webhooks signature checked here from the spec.
func TestE2EFireDelivers(t *testing.T) {
	rcv := newReceiver(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "fire.db")
	_, api, admin := startServe(t, db, [2]string{})
	const secret = "0123456789abcdef0123"
	api.addCallEvent("0003*211", int(callevents.DialIn), rcv.URL+"/in?src=pbx", secret)

	fireArgs := []string{"fire", "--server", api.base, "--client-id", admin[0], "--client-secret", admin[1],
		"--call-id", "1795869401.0", "--phase", "dial", "--from", "0003*210", "--to", "0003*211",
		"--caller-id-num", "210", "--caller-id-name", "Alice Ng", "--called-number", "211"}
	// fire prints the intake's answer: one delivery (Dial-In on 0003*211;
	// 0003*210 has no Call Event), one activity accepted.
	fire := startProc(t, "fire", fireArgs...)
	fire.waitLine(regexpMust(`^\{"queued":1,"accepted":1,"duplicates":0\}$`), 30*time.Second)
	rcv.waitDistinct(t, 1, 30*time.Second)
	// The same report again is a duplicate: nothing queued.
	again := startProc(t, "fire-again", fireArgs...)
	again.waitLine(regexpMust(`^\{"queued":0,"accepted":0,"duplicates":1\}$`), 30*time.Second)

	req := rcv.last(t)
	body := req.Body
	want := "CallID=1795869401.0&CallerIDNum=210&CallerIDName=Alice+Ng&CalledDID=&CalledExtension=0003%2A211&CallStatus=CALLING&CallFlow=IN&CallerExtension=0003%2A210&CalledNumber=211&CallAPIID="
	if body != want {
		t.Errorf("POST body\n got  %s\n want %s", body, want)
	}
	for h, v := range map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Callevents-Event": "Dial-In", "X-Callevents-Attempt": "1"} {
		if got := req.Header.Get(h); got != v {
			t.Errorf("%s: %q, want %q", h, got, v)
		}
	}
	if ua := req.Header.Get("User-Agent"); !strings.HasPrefix(ua, "callevents/") {
		t.Errorf("User-Agent %q", ua)
	}
	if req.RawQuery != "src=pbx" {
		t.Errorf("the Call Event's own query became %q", req.RawQuery)
	}
	// Standard Webhooks: v1,base64(HMAC-SHA256(secret, id.timestamp.payload)).
	dispatchertest.VerifySignature(t, secret, req.Header, body)
	if v, _ := url.ParseQuery(body); v.Get("CallerIDName") != "Alice Ng" {
		t.Errorf("the body does not decode: %v", v)
	}
}

// Ensure nothing accepted is lost across a crash: 10,000 deliveries, the
// process SIGKILLed in the middle and restarted; every delivery reaches the
// receiver, duplicates only among those in flight at the kill, and a
// graceful stop leaves nothing claimed.
func TestE2ECrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 deliveries: not in -short")
	}
	rcv := newReceiver(t)
	dbPath := filepath.Join(t.TempDir(), "crash.db")
	db := "sqlite:" + dbPath
	flags := []string{"--lease", "3s", "--delivery-timeout", "2s", "--rescue-interval", "200ms"}
	serve, api, admin := startServe(t, db, [2]string{}, flags...)
	api.addCallEvent("0003*210", int(callevents.DialIn), rcv.URL+"/in", "")

	const total = 10000
	queued := 0
	for from := 0; from < total; from += 500 {
		queued += api.postActivities(dialActivities("crash", from, 500, "0003*210"))
	}
	if queued != total {
		t.Fatalf("queued %d, want %d", queued, total)
	}
	rcv.waitDistinct(t, total/5, 60*time.Second)
	serve.kill()

	// What was in flight at the kill: running, claimed by the dead process.
	inFlight := deliveriesInState(t, db, callevents.DeliveryRunning)
	receivedAtKill := len(rcv.snapshot())
	t.Logf("killed with %d received and %d in flight", receivedAtKill, len(inFlight))
	if receivedAtKill >= total {
		t.Fatalf("all %d were delivered before the kill: the test proves nothing; slow it down", total)
	}

	serve, _, _ = startServe(t, db, admin, flags...)
	rcv.waitDistinct(t, total, 120*time.Second)
	// Those in flight at the kill are still leased to the dead process
	// until their lease ends; then they are rescued and sent again.
	dispatchertest.WaitWithin(t, 60*time.Second, "every delivery delivered in the store after all reached the receiver", func() bool {
		return len(deliveriesInState(t, db, callevents.DeliveryDelivered)) >= total
	})
	serve.stop()

	got := rcv.snapshot()
	running := map[string]bool{}
	for _, id := range inFlight {
		running[id] = true
	}
	var dups []string
	for id, n := range got {
		if n > 1 && !running[id] {
			dups = append(dups, id)
		}
	}
	sort.Strings(dups)
	if len(dups) > 0 {
		t.Errorf("%d deliveries arrived twice without being in flight at the kill, e.g. %v", len(dups), dups[:min(5, len(dups))])
	}
	delivered := deliveriesInState(t, db, callevents.DeliveryDelivered)
	if len(delivered) != total {
		t.Errorf("%d deliveries delivered in the store, want %d", len(delivered), total)
	}
	for _, id := range delivered {
		if got[id] == 0 {
			t.Fatalf("delivery %s is marked delivered but never reached the receiver", id)
		}
	}
	if left := deliveriesInState(t, db, callevents.DeliveryRunning); len(left) != 0 {
		t.Errorf("%d deliveries still claimed after a graceful stop", len(left))
	}
}

// deliveriesInState reads the ids of 0003*210's deliveries in a state.
func deliveriesInState(t *testing.T, dsn string, state callevents.DeliveryState) []string {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	items, _, err := db.FindDeliveries(ctx, callevents.DeliveryFilter{Extension: "0003*210", State: state})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(items))
	for i, d := range items {
		ids[i] = d.ID
	}
	return ids
}

// Ensure three dispatch processes on one MariaDB database send every
// delivery exactly once and share the work.
func TestE2EThreeDispatchers(t *testing.T) {
	dsn := storetest.MySQLTestDSN(t)
	rcv := newReceiver(t)
	_, api, _ := startServe(t, dsn, [2]string{}, "--dispatch=false")
	api.addCallEvent("0003*210", int(callevents.DialIn), rcv.URL+"/in", "")

	var workers []*proc
	for i := 0; i < 3; i++ {
		p := startProc(t, "dispatch", "dispatch", "--db", dsn, "--allow-targets", "127.0.0.0/8", "--log-level", "debug", "--concurrency", "8")
		p.waitLine(regexpMust(`msg="callevents: dispatching"`), 60*time.Second)
		workers = append(workers, p)
	}
	const total = 3000
	queued := 0
	for from := 0; from < total; from += 500 {
		queued += api.postActivities(dialActivities("three", from, 500, "0003*210"))
	}
	if queued != total {
		t.Fatalf("queued %d, want %d", queued, total)
	}
	rcv.waitDistinct(t, total, 120*time.Second)
	for _, p := range workers {
		p.stop()
	}
	for id, n := range rcv.snapshot() {
		if n != 1 {
			t.Errorf("delivery %s sent %d times", id, n)
		}
	}
	for i, p := range workers {
		// SIGTERM drains: nothing in flight is aborted and sent again by another.
		if p.count(`msg="dispatcher: stopped"`) != 1 || p.count("interrupted=false") != 1 {
			t.Errorf("dispatcher %d did not stop gracefully on SIGTERM", i)
		}
	}
	sum := 0
	for i, p := range workers {
		n := p.count(`msg="dispatcher: delivered"`)
		t.Logf("dispatcher %d delivered %d", i, n)
		if n == 0 {
			t.Errorf("dispatcher %d delivered nothing: the work was not shared", i)
		}
		sum += n
	}
	if sum != total {
		t.Errorf("the dispatchers logged %d deliveries, want %d", sum, total)
	}
}
