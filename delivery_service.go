package callevents

import (
	"context"
	"errors"
	"time"
)

// DeliveryService lets an admin see and repair deliveries (SPEC.md §8),
// scoped like Call Events.
type DeliveryService struct {
	Store      DeliveryLog
	CallEvents CallEventStore
	Tester     CallEventTester
	// Queued is called after a resend, like ActivityService.Queued.
	Queued func(n int)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (s *DeliveryService) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// FindDeliveries returns a page of the extension's deliveries, newest first,
// and the total. Returns 103, 307, and 400 for an unknown state.
func (s *DeliveryService) FindDeliveries(ctx context.Context, p Principal, f DeliveryFilter) ([]Delivery, int, error) {
	if err := Authorize(p, f.Extension); err != nil {
		return nil, 0, err
	}
	if f.State != "" && !f.State.Valid() {
		return nil, 0, FieldError(CodeMalformedRequest, "state", "state must be pending, running, delivered, failed or cancelled.")
	}
	if err := ValidatePaging(f.Offset, f.Limit); err != nil {
		return nil, 0, err
	}
	return s.Store.FindDeliveries(ctx, f)
}

// ResendDelivery queues a delivered or failed delivery again, due now.
// Returns 103, 256, and 400 when it is pending, running or cancelled.
func (s *DeliveryService) ResendDelivery(ctx context.Context, p Principal, ext Extension, id string) (Delivery, error) {
	if err := Authorize(p, ext); err != nil {
		return Delivery{}, err
	}
	d, err := s.Store.ResendDelivery(ctx, ext, id, s.now())
	if err != nil {
		return Delivery{}, err
	}
	if s.Queued != nil {
		s.Queued(1)
	}
	return d, nil
}

// TestCallEvent sends a synthetic event to the Call Event now and reports
// the outcome; a failed request is a result, not an error. Returns 103, 255.
func (s *DeliveryService) TestCallEvent(ctx context.Context, p Principal, ext Extension, typ EventType, id string) (TestResult, error) {
	if err := Authorize(p, ext); err != nil {
		return TestResult{}, err
	}
	if err := typ.Validate(); err != nil {
		return TestResult{}, err
	}
	items, _, err := s.CallEvents.FindCallEvents(ctx, CallEventFilter{Extension: ext, Type: &typ, ID: &id, Limit: 1})
	if err != nil {
		return TestResult{}, err
	}
	if len(items) == 0 {
		return TestResult{}, Errorf(CodeCallEventNotFound, "Phone call event %q not found.", Truncate(id, 64))
	}
	if s.Tester == nil {
		return TestResult{}, RetrieveFailed(errors.New("callevents: DeliveryService has no Tester"))
	}
	return s.Tester.TestCallEvent(ctx, items[0])
}
