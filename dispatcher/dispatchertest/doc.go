// Package dispatchertest helps test what sends or receives Call Event
// requests: a Receiver that records what it gets, a settable Clock for
// dispatcher.Config.Now, WaitFor for conditions that come true
// asynchronously, and VerifySignature, a Standard Webhooks check written
// from the spec rather than from the dispatcher.
//
// It does not import package testing: its helpers take a TB, which every
// testing.TB satisfies, so that a benchmark command can use the Receiver
// without linking the test framework into a binary.
package dispatchertest

// TB is the part of testing.TB these helpers use.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}
