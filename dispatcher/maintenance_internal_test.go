package dispatcher

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// rescueFunc and cleanFunc are the stores of these tests.
type rescueFunc func(ctx context.Context, now time.Time) (int, error)

func (f rescueFunc) RescueExpired(ctx context.Context, now time.Time) (int, error) {
	return f(ctx, now)
}

type cleanFunc func(ctx context.Context, before time.Time) (int, error)

func (f cleanFunc) CleanFinished(ctx context.Context, before time.Time) (int, error) {
	return f(ctx, before)
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// The rescuer runs at once and every Interval, tells Rescued what it
// rescued, and Stop ends its goroutine.
func TestRescuerRunsUntilStop(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	var runs, rescued atomic.Int32
	var wrongTime atomic.Bool
	ran := make(chan struct{}, 1)
	r, err := newRescuer(rescuerConfig{
		Store: rescueFunc(func(_ context.Context, at time.Time) (int, error) {
			if !at.Equal(now) {
				wrongTime.Store(true)
			}
			runs.Add(1)
			select {
			case ran <- struct{}{}:
			default:
			}
			return 3, nil
		}),
		Interval: time.Millisecond,
		Rescued:  func(n int) { rescued.Add(int32(n)) },
		Now:      func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Start(context.Background())
	for runs.Load() < 2 {
		<-ran
	}
	<-r.Stop()
	if n, m := runs.Load(), rescued.Load(); m != 3*n {
		t.Errorf("Rescued told of %d deliveries over %d runs of 3", m, n)
	}
	if wrongTime.Load() {
		t.Error("rescued as of another time than Now")
	}
}

// A run in progress at Stop is let finish, with a context that is not
// cancelled; hardStop cancels it.
func TestMaintenanceStopLetsRunFinish(t *testing.T) {
	for _, hard := range []bool{false, true} {
		began, finish := make(chan struct{}), make(chan struct{})
		var runErr error
		c, err := newCleaner(cleanerConfig{Store: cleanFunc(func(ctx context.Context, _ time.Time) (int, error) {
			close(began)
			select {
			case <-finish:
			case <-ctx.Done():
				runErr = ctx.Err()
			}
			return 0, runErr
		})})
		if err != nil {
			t.Fatal(err)
		}
		c.Start(context.Background())
		<-began
		stopped := c.Stop()
		if closed(stopped) {
			t.Fatalf("hard %v: stopped with a run in progress", hard)
		}
		if hard {
			c.hardStop()
		} else {
			close(finish)
		}
		<-stopped
		if (runErr != nil) != hard {
			t.Errorf("hard %v: the run ended with %v", hard, runErr)
		}
	}
}

// The cleaner deletes what finished Retention before now.
func TestCleanerRetention(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	before := make(chan time.Time, 1)
	c, err := newCleaner(cleanerConfig{
		Store:     cleanFunc(func(_ context.Context, b time.Time) (int, error) { before <- b; return 0, nil }),
		Retention: 48 * time.Hour,
		Now:       func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Start(context.Background())
	if got, want := <-before, now.Add(-48*time.Hour); !got.Equal(want) {
		t.Errorf("deleted what finished before %s, want %s", got, want)
	}
	<-c.Stop()
}

// Stop before Start leaves a part stopped for good; ending Start's
// context stops it as Stop would, and cancels what it runs with.
func TestStartStop(t *testing.T) {
	var never startStop
	if first, stopped := never.stop(); first || !closed(stopped) {
		t.Errorf("stop before start: first %v, stopped %v", first, closed(stopped))
	}
	if _, ok := never.startInit(context.Background()); ok {
		t.Error("started after stop")
	}

	var s startStop
	ctx, cancel := context.WithCancel(context.Background())
	runCtx, ok := s.startInit(ctx)
	if !ok {
		t.Fatal("startInit refused a new part")
	}
	if _, ok := s.startInit(ctx); ok {
		t.Error("started twice")
	}
	cancel()
	<-s.Stopping()
	<-runCtx.Done()
	first, stopped := s.stop()
	if !first || closed(stopped) {
		t.Errorf("first stop: first %v, stopped %v", first, closed(stopped))
	}
	s.stopDone()
	if first, stopped := s.stop(); first || !closed(stopped) {
		t.Errorf("stop after stopDone: first %v, stopped %v", first, closed(stopped))
	}

	// Once stop has begun, Start's context no longer interrupts.
	var t2 startStop
	ctx2, cancel2 := context.WithCancel(context.Background())
	run2, _ := t2.startInit(ctx2)
	t2.stop()
	cancel2()
	if run2.Err() != nil {
		t.Error("Start's context interrupted a part that was stopping")
	}
	t2.hardStop()
	<-run2.Done()
	t2.stopDone()
}

func TestMaintenanceConfigValidation(t *testing.T) {
	if _, err := newRescuer(rescuerConfig{}); err == nil {
		t.Error("a rescuer without a store")
	}
	if _, err := newCleaner(cleanerConfig{Store: cleanFunc(nil), Retention: -time.Hour}); err == nil {
		t.Error("a cleaner with a negative retention")
	}
	r, err := newRescuer(rescuerConfig{Store: rescueFunc(nil)})
	if err != nil || r.Interval != RescueIntervalDefault {
		t.Errorf("rescuer defaults: interval %s, %v", r.Interval, err)
	}
	c, err := newCleaner(cleanerConfig{Store: cleanFunc(nil)})
	if err != nil || c.Interval != CleanIntervalDefault || c.Retention != RetentionDefault {
		t.Errorf("cleaner defaults: interval %s, retention %s, %v", c.Interval, c.Retention, err)
	}
}
