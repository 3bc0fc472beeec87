package dispatcher

import (
	"context"
	"sync"
)

// startStop is the lifecycle of a part that runs goroutines of its own:
// the Dispatcher, its rescuer and its cleaner (River's
// startstop.BaseStartStop, cut down). Stopping takes two steps, because a
// part asked to stop finishes what it is doing (a request, a store call)
// rather than waste it: stop closes Stopping, and the part starts nothing
// new; hardStop, once whoever stops it runs out of patience, cancels the
// context the part runs with. Until stop, the end of the context given to
// startInit does both. A part starts once, and a part stopped before it
// started never does.
type startStop struct {
	mu       sync.Mutex
	state    runState
	stopping chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
	cancel   context.CancelFunc
	unwatch  func() bool // stops watching startInit's context
}

type runState int

const (
	stateNew runState = iota
	stateStarted
	stateStopping
	stateStopped
)

func (s *startStop) init() {
	if s.stopping == nil {
		s.stopping, s.stopped = make(chan struct{}), make(chan struct{})
	}
}

// startInit starts a new part and returns the context its goroutines run
// with. ok is false when the part was started, or stopped, before.
func (s *startStop) startInit(ctx context.Context) (runCtx context.Context, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return nil, false
	}
	s.init()
	s.state = stateStarted
	// Not a child of ctx: once stop has begun, only hardStop interrupts.
	runCtx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.unwatch = context.AfterFunc(ctx, func() {
		s.closeStopping()
		s.cancel()
	})
	return runCtx, true
}

// Stopping is closed when the part must start nothing new. Only the
// part's goroutines, which startInit precedes, may call it.
func (s *startStop) Stopping() <-chan struct{} { return s.stopping }

func (s *startStop) closeStopping() { s.stopOnce.Do(func() { close(s.stopping) }) }

// stop asks the part to stop and returns a channel closed once it has
// (stopDone): at once for a part never started. first is true for the
// first stop of a started part, whose caller sees the stop through unless
// the part's own goroutine calls stopDone.
func (s *startStop) stop() (first bool, stopped <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	switch s.state {
	case stateNew:
		s.state = stateStopped
		s.closeStopping()
		close(s.stopped)
	case stateStarted:
		s.state = stateStopping
		s.unwatch()
		s.closeStopping()
		return true, s.stopped
	}
	return false, s.stopped
}

// hardStop cancels the context a started part runs with.
func (s *startStop) hardStop() {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// stopDone marks a started part stopped, once all of its goroutines have
// ended.
func (s *startStop) stopDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancel()
	s.state = stateStopped
	close(s.stopped)
}
