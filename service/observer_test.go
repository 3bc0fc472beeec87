package service_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/service"
)

// recordingObserver keeps what it is told, as lines.
type recordingObserver struct {
	mu     sync.Mutex
	events []string
}

func (o *recordingObserver) add(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, fmt.Sprintf(format, args...))
}

func (o *recordingObserver) ActivityAccepted(activities, queued int) {
	o.add("accepted %d queued %d", activities, queued)
}
func (o *recordingObserver) ActivityRejected(activities int, code callevents.Code) {
	o.add("rejected %d code %d", activities, code)
}
func (o *recordingObserver) DeliveryAttempted(next callevents.DeliveryState, class string, _ time.Duration) {
	o.add("attempt %s %q", next, class)
}
func (o *recordingObserver) RequestServed(edge, operation string, code callevents.Code) {
	o.add("%s %s %d", edge, operation, code)
}
func (o *recordingObserver) AMIConnected(up bool) { o.add("ami %v", up) }
func (o *recordingObserver) BreakerChanged(organization, origin string, state callevents.BreakerState, open int) {
	o.add("breaker %s %s %s %d", organization, origin, state, open)
}

// take returns the events so far and forgets them.
func (o *recordingObserver) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.events
	o.events = nil
	return out
}

// Ensure every answer of every edge is counted once, by edge, operation
// and code (0 for success), and the intake's accepted and rejected
// activities too.
func TestObserverSeesEveryAnswer(t *testing.T) {
	obs := &recordingObserver{}
	b := setup(t, bundleOptions{observer: obs})
	idSecret := strings.SplitN(b.secret["org:0003"], ":", 2)
	getOp := `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension></v1:GetPhoneCallEvents>`
	for _, tc := range []struct {
		name string
		do   func()
		want []string
	}{
		{"soap success", func() { b.call(t, "admin", getOp) }, []string{"soap GetPhoneCallEvents 0"}},
		{"soap bad token", func() {
			b.post(t, service.PathSOAP, "text/xml", envelope11(tokenHeader("nope"), getOp))
		}, []string{"soap GetPhoneCallEvents 100"}},
		{"soap malformed", func() { b.post(t, service.PathSOAP, "text/xml", "<not-soap/>") }, []string{"soap unknown 400"}},
		{"soap wsdl", func() {
			resp, err := http.Get(b.srv.URL + service.PathSOAP + "?wsdl")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}, []string{"soap wsdl 0"}},
		{"rest success", func() { b.mustREST(t, "GET", uapiBase, "") }, []string{"rest GET " + service.PathUAPIPhoneCallEvents + " 0"}},
		{"rest bad type", func() { b.restAs(t, "admin", "GET", uapiBase+"/99", "") }, []string{"rest GET " + service.PathUAPIPhoneCallEvents + "/{type} 301"}},
		{"rest no token", func() { b.rest(t, "", "GET", uapiBase, "") }, []string{"rest GET " + service.PathUAPIPhoneCallEvents + " 100"}},
		{"intake accepted", func() {
			b.postEvents(t, b.bearer("pbx"), `{"callId":"o-1","phase":"dial","callerExtension":"0003*210","calledExtension":"0003*211"}`)
		}, []string{"accepted 1 queued 0", "intake events 0"}},
		{"intake invalid", func() {
			b.postEvents(t, b.bearer("pbx"), `[{"callId":"o-2","phase":"dial","callerExtension":"0003*210"},{"callId":"o-2","phase":"ring","callerExtension":"0003*210"}]`)
		}, []string{"rejected 2 code 400", "intake events 400"}},
		{"intake wrong scope", func() {
			b.postEvents(t, b.bearer("org:0003"), `{"callId":"o-3","phase":"dial","callerExtension":"0003*210"}`)
		}, []string{"intake events 103"}},
		{"intake wrong method", func() {
			resp, err := http.Get(b.srv.URL + service.PathEvents)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}, []string{"intake events 400"}},
		{"oauth success", func() {
			resp, err := http.PostForm(b.srv.URL+service.PathToken, url.Values{"grant_type": {"client_credentials"}, "client_id": {idSecret[0]}, "client_secret": {idSecret[1]}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}, []string{"oauth token 0"}},
		{"oauth wrong secret", func() {
			resp, err := http.PostForm(b.srv.URL+service.PathToken, url.Values{"grant_type": {"client_credentials"}, "client_id": {idSecret[0]}, "client_secret": {"wrong"}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}, []string{"oauth token 100"}},
	} {
		obs.take()
		tc.do()
		if got := obs.take(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: observed %q, want %q", tc.name, got, tc.want)
		}
	}
}
