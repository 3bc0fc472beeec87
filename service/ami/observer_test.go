package ami_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/service/ami"
)

// connObserver records AMIConnected; the rest is NopObserver's.
type connObserver struct {
	callevents.NopObserver
	mu    sync.Mutex
	state []bool
}

func (o *connObserver) AMIConnected(up bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.state = append(o.state, up)
}

func (o *connObserver) states() []bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.state)
}

// Ensure the Observer sees the connection go up at login, down when it
// is lost, and up again after the reconnect.
func TestObserverSeesConnectionState(t *testing.T) {
	srv := dropAfterDialBegin(t)
	obs := &connObserver{}
	sk := newSink()
	run(t, ami.Config{
		Addr: srv.addr(), Submit: sk.submit, Extensions: mustMap(t, "0003", "299=0009*299"),
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Observer: obs,
	})
	sk.until(t, "sentinel.1")
	if got, want := obs.states(), []bool{true, false, true}; !slices.Equal(got, want) {
		t.Errorf("AMIConnected %v, want %v", got, want)
	}
}
