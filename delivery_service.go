package callevents

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MaxActivitiesPerRequest bounds one intake request.
const MaxActivitiesPerRequest = 1000

// ActivityService accepts call activity from the PBX (SPEC.md §7).
type ActivityService struct {
	Store DeliveryStore
	// Queued, when set, is called after deliveries are durably queued, so
	// that a dispatcher in the same process starts at once instead of at
	// its next poll.
	Queued func(n int)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Observer, when set, counts accepted and rejected requests.
	Observer Observer
}

// AcceptActivity validates and stores activities for a pbx or admin client
// and returns what that did: deliveries queued, activities accepted and
// duplicates (ActivityResult). Returns 103 for another scope and the
// activity's field error (Field prefixed with the item's index,
// "[2].phase", when there are several); nothing is stored then.
func (s *ActivityService) AcceptActivity(ctx context.Context, p Principal, activities []CallActivity) (ActivityResult, error) {
	res, err := s.acceptActivity(ctx, p, activities)
	if err != nil {
		ObserverOrNop(s.Observer).ActivityRejected(len(activities), ErrorCode(err, CodeUpdateFailed))
	} else {
		ObserverOrNop(s.Observer).ActivityAccepted(len(activities), res.Queued)
	}
	return res, err
}

func (s *ActivityService) acceptActivity(ctx context.Context, p Principal, activities []CallActivity) (ActivityResult, error) {
	var none ActivityResult
	if !p.Scope.CanReportCalls() {
		return none, Errorf(CodeAccessDenied, "Access denied: only pbx and admin clients may report call activity.")
	}
	if len(activities) == 0 {
		return none, FieldError(CodeMissingParameter, "callId", "No call activity in the request.")
	}
	if len(activities) > MaxActivitiesPerRequest {
		return none, Errorf(CodeMalformedRequest, "At most %d activities per request.", MaxActivitiesPerRequest)
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	now = now.UTC()
	for i := range activities {
		err := activities[i].Validate()
		if err == nil {
			err = activities[i].ValidateTime(now)
		}
		if err != nil {
			if len(activities) > 1 {
				e := *err.(*Error)
				e.Field = fmt.Sprintf("[%d].%s", i, e.Field)
				return none, &e
			}
			return none, err
		}
		if activities[i].Time.IsZero() {
			activities[i].Time = now
		}
	}
	res, err := s.Store.AcceptActivity(ctx, activities, now)
	if err != nil {
		return none, err
	}
	if res.Queued > 0 && s.Queued != nil {
		s.Queued(res.Queued)
	}
	return res, nil
}

// DeliveryService lets an admin see and repair deliveries (SPEC.md §8),
// scoped like Call Events.
type DeliveryService struct {
	Store      DeliveryStore
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
