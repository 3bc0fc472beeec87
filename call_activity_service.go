package callevents

import (
	"context"
	"fmt"
	"time"
)

// MaxActivitiesPerRequest bounds one intake request.
const MaxActivitiesPerRequest = 1000

// ActivityService accepts call activity from the PBX (SPEC.md §7).
type ActivityService struct {
	Store ActivityStore
	// Queued, when set, is called after deliveries are durably queued, so
	// that a dispatcher in the same process starts at once instead of at
	// its next poll; n leaves out those that Handoff took.
	Queued func(n int)
	// Handoff, when set, is the dispatcher in this process: the accepting
	// transaction claims for it what it has room for (ActivityStore).
	Handoff Handoff
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
			// Validate and ValidateTime return only *Error; name the item
			// when there are several.
			if e, ok := err.(*Error); ok && len(activities) > 1 {
				item := *e
				item.Field = fmt.Sprintf("[%d].%s", i, e.Field)
				return none, &item
			}
			return none, err
		}
		if activities[i].Time.IsZero() {
			activities[i].Time = now
		}
	}
	res, err := s.Store.AcceptActivity(ctx, activities, now, s.Handoff)
	if err != nil {
		return none, err
	}
	if left := res.Queued - res.Claimed; left > 0 && s.Queued != nil {
		s.Queued(left)
	}
	return res, nil
}
