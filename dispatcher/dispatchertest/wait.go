package dispatchertest

import "time"

// WaitTimeout is how long WaitFor and Receiver.WaitHits wait before they
// fail the test: long enough for a loaded CI machine, short of go test's
// own timeout.
const WaitTimeout = 15 * time.Second

// waitTick is how often WaitFor checks its condition: most conditions are
// store reads, which have no event to wait on.
const waitTick = 5 * time.Millisecond

// WaitFor checks cond until it holds, failing the test after WaitTimeout
// with what it waited for.
func WaitFor(tb TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(WaitTimeout)
	tick := time.NewTicker(waitTick)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
