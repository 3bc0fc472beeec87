package dispatcher

import (
	"testing"
	"time"

	"github.com/callevents/callevents"
)

// storeStub satisfies the interface; these tests never reach the store.
type storeStub struct{ callevents.DeliveryStore }

func newTestDispatcher(t *testing.T) *Dispatcher {
	t.Helper()
	d, err := New(Config{Store: storeStub{}, Timeout: time.Second, Lease: 2 * time.Second, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A probe that waits in its origin's queue past Timeout goes back to the
// store, and its breaker is ready to probe again, not stuck half-open with
// no probe on its way.
func TestExpiredProbeLeavesBreakerReady(t *testing.T) {
	d := newTestDispatcher(t)
	now := time.Now()
	key := callevents.PausedReceiver{Organization: "0003", Origin: "http://crm.example"}
	d.breakers[key] = &breaker{key: key, state: callevents.BreakerOpen, openUntil: now.Add(-time.Second), failures: 5}
	d.originFor(key.Origin).inFlight = d.cfg.ReceiverConcurrency // no room: the probe waits
	if !d.enqueue(callevents.Delivery{ID: "dlv_probe", Extension: "0003*210", Origin: key.Origin}, now.Add(time.Minute), now) {
		t.Fatal("the probe was not queued")
	}
	if got := d.breakers[key].state; got != callevents.BreakerHalfOpen {
		t.Fatalf("breaker %q after queueing its probe, want half_open", got)
	}
	later := now.Add(2 * time.Second)
	starts, back := d.pump(later)
	if len(starts) != 0 || len(back) != 1 || back[0] != "dlv_probe" {
		t.Fatalf("pump started %v and gave back %v, want the expired probe given back", starts, back)
	}
	var c callevents.Claim
	d.rooms(&c, later)
	if room, paused := c.PausedRoom(key.Organization, key.Origin); !paused || room != 1 {
		t.Errorf("after the expired probe: paused %v, room %d; want room for a new probe", paused, room)
	}
}

// A refusal by our own outbound policy says nothing of the receiver: it
// neither counts as a failure nor resets the count.
func TestPolicyRefusalLeavesBreakerAlone(t *testing.T) {
	d := newTestDispatcher(t)
	key := callevents.PausedReceiver{Organization: "0003", Origin: "http://crm.example"}
	d.breakers[key] = &breaker{key: key, failures: 2}
	del := callevents.Delivery{ID: "dlv_x", Extension: "0003*210", Origin: key.Origin}
	d.originFor(key.Origin).inFlight = 1
	d.requestEnded(del, result{class: callevents.ErrorClassPolicy}, false, true)
	if b := d.breakers[key]; b == nil || b.failures != 2 || !b.closed() {
		t.Errorf("breaker after a policy refusal: %+v, want 2 failures, closed", b)
	}
	if o := d.origins[key.Origin]; o != nil && o.answered != 0 {
		t.Errorf("a policy refusal counted as an answer: %+v", o)
	}
}
