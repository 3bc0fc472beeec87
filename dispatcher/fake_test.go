package dispatcher_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/callevents/callevents"
)

// fakeStore is an in-memory DeliveryStore and CallEventStore with the
// semantics the root interfaces document. It exists to inject failures;
// the behaviour tests run against the real store as well.
type fakeStore struct {
	mu         sync.Mutex
	callEvents map[string]callevents.CallEvent
	deliveries []*fakeDelivery // in creation order
	seen       map[string]bool // dedupe keys
	sequences  map[string]int  // order key → last sequence

	// RecordAttemptFunc, when set, runs before RecordAttempt; an error it
	// returns is returned instead.
	RecordAttemptFunc func(o callevents.AttemptOutcome) error
}

type fakeDelivery struct {
	callevents.Delivery
	worker     string
	leaseUntil time.Time
}

var (
	_ callevents.DeliveryStore  = (*fakeStore)(nil)
	_ callevents.CallEventStore = (*fakeStore)(nil)
)

func newFakeStore() *fakeStore {
	return &fakeStore{callEvents: map[string]callevents.CallEvent{}, seen: map[string]bool{}}
}

func (s *fakeStore) CreateCallEvent(_ context.Context, c callevents.CallEvent, _ int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callEvents[c.ID] = c
	return nil
}

func (s *fakeStore) FindCallEvents(_ context.Context, f callevents.CallEventFilter) ([]callevents.CallEvent, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []callevents.CallEvent
	for _, c := range s.callEvents {
		if c.Extension == f.Extension && (f.Type == nil || *f.Type == c.Type) && (f.ID == nil || *f.ID == c.ID) {
			out = append(out, c)
		}
	}
	return out, len(out), nil
}

func (s *fakeStore) UpdateCallEvent(_ context.Context, ext callevents.Extension, typ callevents.EventType, id string, upd callevents.CallEventUpdate, now time.Time) (callevents.CallEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.callEvents[id]
	if !ok || c.Extension != ext || c.Type != typ {
		return callevents.CallEvent{}, callevents.Errorf(callevents.CodeCallEventNotFound, "not found")
	}
	c = upd.Apply(c)
	c.Modified = now
	s.callEvents[id] = c
	if c.Status == callevents.StatusDisabled {
		s.cancelPending(id, now)
	}
	return c, nil
}

func (s *fakeStore) DeleteCallEvents(_ context.Context, f callevents.CallEventFilter) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, c := range s.callEvents {
		if c.Extension == f.Extension && (f.Type == nil || *f.Type == c.Type) && (f.ID == nil || *f.ID == c.ID) {
			delete(s.callEvents, id)
			s.cancelPending(id, time.Now())
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (s *fakeStore) cancelPending(callEventID string, now time.Time) {
	for _, d := range s.deliveries {
		if d.CallEventID == callEventID && d.State == callevents.DeliveryPending {
			d.State, d.Finished = callevents.DeliveryCancelled, now
		}
	}
}

func (s *fakeStore) AcceptActivity(_ context.Context, activities []callevents.CallActivity, now time.Time) (callevents.ActivityResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, accepted := 0, 0
	for _, a := range activities {
		if s.seen[a.DedupeKey()] {
			continue
		}
		s.seen[a.DedupeKey()] = true
		accepted++
		for _, ev := range a.ExtensionEvents() {
			var matches []callevents.CallEvent
			for _, c := range s.callEvents {
				if c.Extension == ev.Extension && c.Type == ev.Type && c.Status == callevents.StatusEnabled {
					matches = append(matches, c)
				}
			}
			slices.SortFunc(matches, func(a, b callevents.CallEvent) int { return compare(a.ID, b.ID) })
			for _, c := range matches {
				key := callevents.OrderKey(c.Extension, c.URL, a.CallID)
				if s.sequences == nil {
					s.sequences = map[string]int{}
				}
				s.sequences[key]++
				s.deliveries = append(s.deliveries, &fakeDelivery{Delivery: callevents.Delivery{
					ID: callevents.NewDeliveryID(), CallEventID: c.ID, Extension: ev.Extension, Type: ev.Type,
					CallID: a.CallID, Payload: ev.Params.Encode(), OrderKey: key, Sequence: s.sequences[key],
					Origin: callevents.Origin(c.URL), State: callevents.DeliveryPending, NextAttemptAt: now, Created: now,
				}})
				n++
			}
		}
	}
	return callevents.ActivityResult{Queued: n, Accepted: accepted, Duplicates: len(activities) - accepted}, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *fakeStore) ClaimDue(_ context.Context, c callevents.Claim) ([]callevents.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []callevents.Delivery
	blocked := map[string]bool{} // order keys with an earlier unfinished delivery
	taken := map[string]int{}    // origin → claimed
	takenPaused := map[callevents.PausedReceiver]int{}
	for _, d := range s.deliveries {
		if len(out) == c.N {
			break
		}
		if d.State.Finished() {
			continue
		}
		wasBlocked := blocked[d.OrderKey]
		blocked[d.OrderKey] = true
		held := c.OrderHold > 0 && !d.NextAttemptAt.After(c.Now.Add(-c.OrderHold))
		if (wasBlocked && !held) || d.State != callevents.DeliveryPending || d.NextAttemptAt.After(c.Now) ||
			taken[d.Origin] >= c.RoomFor(d.Origin) || pausedFull(c, d.Delivery, takenPaused) {
			continue
		}
		ce, ok := s.callEvents[d.CallEventID]
		if !ok || ce.Status != callevents.StatusEnabled {
			d.State, d.Finished = callevents.DeliveryCancelled, c.Now
			blocked[d.OrderKey] = wasBlocked
			continue
		}
		taken[d.Origin]++
		takenPaused[callevents.PausedReceiver{Organization: d.Extension.Organization(), Origin: d.Origin}]++
		d.Attempts++
		d.State = callevents.DeliveryRunning
		d.worker, d.leaseUntil = c.Worker, c.Now.Add(c.Lease)
		d.URL, d.Method, d.Secret = ce.URL, ce.Method, ce.Secret
		out = append(out, d.Delivery)
	}
	return out, nil
}

// pausedFull reports whether c has taken all it may of d's paused receiver.
func pausedFull(c callevents.Claim, d callevents.Delivery, taken map[callevents.PausedReceiver]int) bool {
	room, paused := c.PausedRoom(d.Extension.Organization(), d.Origin)
	return paused && taken[callevents.PausedReceiver{Organization: d.Extension.Organization(), Origin: d.Origin}] >= room
}

// RecordAttempts is all or nothing, like the real store's transaction:
// RecordAttemptFunc may fail the batch before anything is recorded.
func (s *fakeStore) RecordAttempts(_ context.Context, worker string, outcomes []callevents.AttemptOutcome) error {
	for _, o := range outcomes {
		if s.RecordAttemptFunc != nil {
			if err := s.RecordAttemptFunc(o); err != nil {
				return err
			}
		}
	}
	for _, o := range outcomes {
		s.recordAttempt(worker, o)
	}
	return nil
}

func (s *fakeStore) recordAttempt(worker string, o callevents.AttemptOutcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.deliveries {
		if d.ID != o.DeliveryID {
			continue
		}
		if d.State != callevents.DeliveryRunning || d.worker != worker {
			return
		}
		d.History = append(d.History, o.Attempt)
		d.LastStatus, d.LastError = o.Attempt.StatusCode, o.Attempt.ErrorClass
		d.State, d.worker = o.Next, ""
		if o.Next == callevents.DeliveryPending {
			d.NextAttemptAt = o.NextAttemptAt
		} else {
			d.Finished = o.Attempt.At
		}
		if o.DisableCallEvent {
			if c, ok := s.callEvents[d.CallEventID]; ok {
				c.Status = callevents.StatusDisabled
				s.callEvents[c.ID] = c
			}
			s.cancelPending(d.CallEventID, o.Attempt.At)
		}
		return
	}
}

func (s *fakeStore) ReleaseClaims(_ context.Context, worker string, ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.deliveries {
		if slices.Contains(ids, d.ID) && d.State == callevents.DeliveryRunning && d.worker == worker {
			d.State, d.worker, d.NextAttemptAt = callevents.DeliveryPending, "", time.Now()
			d.Attempts--
		}
	}
	return nil
}

func (s *fakeStore) RescueExpired(_ context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.deliveries {
		if d.State == callevents.DeliveryRunning && d.leaseUntil.Before(now) {
			d.State, d.worker, d.NextAttemptAt = callevents.DeliveryPending, "", now
			n++
		}
	}
	return n, nil
}

func (s *fakeStore) CleanFinished(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.deliveries)
	s.deliveries = slices.DeleteFunc(s.deliveries, func(d *fakeDelivery) bool {
		return d.State.Finished() && d.Finished.Before(before)
	})
	return n - len(s.deliveries), nil
}

func (s *fakeStore) FindDeliveries(_ context.Context, f callevents.DeliveryFilter) ([]callevents.Delivery, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []callevents.Delivery
	for _, d := range slices.Backward(s.deliveries) {
		if (f.Extension == "" || d.Extension == f.Extension) && (f.CallEventID == "" || d.CallEventID == f.CallEventID) &&
			(f.CallID == "" || d.CallID == f.CallID) && (f.State == "" || d.State == f.State) {
			c := d.Delivery
			c.History = slices.Clone(d.History)
			out = append(out, c)
		}
	}
	return out, len(out), nil
}

func (s *fakeStore) ResendDelivery(context.Context, callevents.Extension, string, time.Time) (callevents.Delivery, error) {
	return callevents.Delivery{}, errors.New("fakeStore: ResendDelivery is not implemented")
}
