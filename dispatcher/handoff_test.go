package dispatcher_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// Ensure deliveries accepted through an ActivityService whose Handoff is
// the dispatcher are sent without a claim of their own: the accepting
// transaction leased them to it. They go out once each, in each call's
// order, and the delivery log shows them delivered.
func TestHandoffSendsWithoutClaim(t *testing.T) {
	forEachStore(t, func(t *testing.T, db testStore) {
		rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {})
		counting := &claimCounter{testStore: db}
		mustAddCallEvent(t, db, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, Method: callevents.MethodPOST, URL: rc.URL + "/in"})
		mustAddCallEvent(t, db, callevents.CallEvent{Extension: extA, Type: callevents.AnswerIn, Method: callevents.MethodPOST, URL: rc.URL + "/in"})
		cfg := testConfig(t, counting)
		cfg.PollInterval = time.Hour // a claim would come from Notify alone
		d := mustStart(t, cfg)
		svc := &callevents.ActivityService{Store: db, Handoff: d, Queued: func(int) { d.Notify() }}
		pbx := callevents.Principal{Scope: callevents.ScopePBX}
		const calls = 5
		for i := range calls {
			a := callevents.CallActivity{CallID: fmt.Sprintf("call-%d", i), Phase: callevents.PhaseDial, CalledExtension: string(extA)}
			res, err := svc.AcceptActivity(context.Background(), pbx, []callevents.CallActivity{a})
			if err != nil || res.Queued != 1 || res.Claimed != 1 {
				t.Fatalf("accept: %+v, %v; want 1 queued and claimed by the handoff", res, err)
			}
		}
		hits := rc.WaitHits(t, calls)
		if _, _, n := counting.stats(); n != 0 {
			t.Errorf("ClaimDue returned %d deliveries; want none, all handed over", n)
		}
		// An answer while its dial is still unfinished stays pending, and
		// goes out after it, by a claim.
		a := callevents.CallActivity{CallID: "call-0", Phase: callevents.PhaseAnswer, CalledExtension: string(extA)}
		if res, err := svc.AcceptActivity(context.Background(), pbx, []callevents.CallActivity{a}); err != nil || res.Queued != 1 {
			t.Fatalf("accept answer: %+v, %v", res, err)
		}
		hits = rc.WaitHits(t, calls+1)
		dispatchertest.WaitFor(t, "every delivery delivered in the log", func() bool {
			ds, _, err := db.FindDeliveries(context.Background(), callevents.DeliveryFilter{Extension: extA})
			if err != nil {
				return false
			}
			for _, del := range ds {
				if del.State != callevents.DeliveryDelivered || del.Attempts != 1 {
					return false
				}
			}
			return len(ds) == calls+1
		})
		if len(hits) != calls+1 {
			t.Fatalf("receiver got %d requests, want %d", len(hits), calls+1)
		}
	})
}
