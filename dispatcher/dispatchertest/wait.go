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
	WaitWithin(tb, WaitTimeout, what, cond)
}

// WaitWithin is WaitFor with a timeout of its own, for a wait known to
// take longer than WaitTimeout (a process starting, thousands of
// deliveries).
func WaitWithin(tb TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(waitTick)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}
