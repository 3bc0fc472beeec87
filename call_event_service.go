package callevents

import (
	"context"
	"time"
)

// CallEventService applies the rules of SPEC.md §2–§3 to Call Events on
// behalf of an authenticated client, on top of a CallEventStore. Every edge
// (SOAP, REST) goes through it, so the rules live in one place.
type CallEventService struct {
	Store CallEventStore
	// MaxPerExtension caps the Call Events of one extension;
	// 0 means MaxCallEventsPerExtensionDefault.
	MaxPerExtension int
	// CheckTarget, when set, applies the outbound policy to a URL at Add and
	// Edit and returns code 309 for a forbidden target.
	CheckTarget func(ctx context.Context, url string) error
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (s *CallEventService) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

// Authorize returns 103 unless p may manage ext. The services run it before
// any lookup, so a client learns nothing about extensions outside its
// scope; an edge runs it too where it reads the extension, so that the
// scope comes before its other parameters (README "Order of checks").
func Authorize(p Principal, ext Extension) error {
	if !p.Scope.CanManage(ext) {
		return Errorf(CodeAccessDenied, "Access denied: extension %s is outside this client's scope.", ext)
	}
	return nil
}

func (s *CallEventService) checkTarget(ctx context.Context, url string) error {
	if s.CheckTarget == nil {
		return nil
	}
	return s.CheckTarget(ctx, url)
}

// AddCallEvent adds a Call Event of ext and typ: NewCallEvent's defaults
// with in applied (normalized first; its URL is required), given an id.
// Returns 103, the field codes 254/301–306 (117 without a URL), 309 and 308.
func (s *CallEventService) AddCallEvent(ctx context.Context, p Principal, ext Extension, typ EventType, in CallEventUpdate) (CallEvent, error) {
	if err := Authorize(p, ext); err != nil {
		return CallEvent{}, err
	}
	c := in.Normalize().Apply(NewCallEvent(ext, typ))
	if err := c.Validate(); err != nil {
		return CallEvent{}, err
	}
	if err := s.checkTarget(ctx, c.URL); err != nil {
		return CallEvent{}, err
	}
	c.ID = NewCallEventID()
	c.Modified = s.now()
	max := s.MaxPerExtension
	if max <= 0 {
		max = MaxCallEventsPerExtensionDefault
	}
	if err := s.Store.CreateCallEvent(ctx, c, max); err != nil {
		return CallEvent{}, err
	}
	return c, nil
}

// FindCallEvents returns a page of the extension's Call Events and the total.
// Returns 103, 301 and 307; 255 when f.ID names no Call Event of the
// extension (and type), whatever f.Match keeps.
func (s *CallEventService) FindCallEvents(ctx context.Context, p Principal, f CallEventFilter) ([]CallEvent, int, error) {
	if err := Authorize(p, f.Extension); err != nil {
		return nil, 0, err
	}
	if f.Type != nil {
		if err := f.Type.Validate(); err != nil {
			return nil, 0, err
		}
	}
	if err := ValidatePaging(f.Offset, f.Limit); err != nil {
		return nil, 0, err
	}
	items, total, err := s.Store.FindCallEvents(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	if f.ID != nil && total == 0 {
		found := false
		if f.Match != (CallEventMatch{}) {
			// The Match may have left out the one the ID names.
			_, n, err := s.Store.FindCallEvents(ctx, CallEventFilter{Extension: f.Extension, Type: f.Type, ID: f.ID, Limit: 1})
			if err != nil {
				return nil, 0, err
			}
			found = n > 0
		}
		if !found {
			return nil, 0, Errorf(CodeCallEventNotFound, "Phone call event %q not found.", Truncate(*f.ID, 64))
		}
	}
	return items, total, nil
}

// MaxStartIndex is the largest startIndex a page request may name
// (1,000,000,000, far past any extension's Call Events or delivery log).
// It is below the largest xs:int the WSDL allows, so startIndex+count
// never overflows an int, even a 32-bit one.
const MaxStartIndex = 1_000_000_000

// ValidatePaging checks a page request: startIndex 0 to MaxStartIndex,
// count 1 to MaxPageCount (code 307). Every edge pages through this one
// rule: SOAP GetPhoneCallEvents and GetPhoneCallEventDeliveries, REST
// startIndex/count, and the services below them. An edge that reads a
// number too large for an int passes the saturated value it read (as
// strconv.ParseInt returns it), which this rule refuses.
func ValidatePaging(startIndex, count int) error {
	if startIndex < 0 || startIndex > MaxStartIndex || count < 1 || count > MaxPageCount {
		return Errorf(CodePagingInvalid, "Paging is invalid: startIndex must be 0 to %d and count 1 to %d.", MaxStartIndex, MaxPageCount)
	}
	return nil
}

// EditCallEvent applies upd (normalized first) to the Call Event with this
// extension, type and id. Returns 103, 255, the field codes and 309.
func (s *CallEventService) EditCallEvent(ctx context.Context, p Principal, ext Extension, typ EventType, id string, upd CallEventUpdate) (CallEvent, error) {
	if err := Authorize(p, ext); err != nil {
		return CallEvent{}, err
	}
	if err := typ.Validate(); err != nil {
		return CallEvent{}, err
	}
	// Check the changed fields up front, so a bad value is reported as such
	// rather than as 255 when the id is wrong too.
	upd = upd.Normalize()
	if err := upd.Validate(); err != nil {
		return CallEvent{}, err
	}
	if upd.URL != nil {
		if err := s.checkTarget(ctx, *upd.URL); err != nil {
			return CallEvent{}, err
		}
	}
	return s.Store.UpdateCallEvent(ctx, ext, typ, id, upd, s.now())
}

// SetCallEventStatus enables or disables a Call Event. Returns 103, 255, 304.
func (s *CallEventService) SetCallEventStatus(ctx context.Context, p Principal, ext Extension, typ EventType, id string, status Status) (CallEvent, error) {
	return s.EditCallEvent(ctx, p, ext, typ, id, CallEventUpdate{Status: &status})
}

// DeleteCallEvents deletes the selected Call Events of an extension and
// returns their ids: all of them without Type and ID, all of one type with
// Type only, or one with ID. Returns 103, 301 and 255 (ID matches nothing).
func (s *CallEventService) DeleteCallEvents(ctx context.Context, p Principal, f CallEventFilter) ([]string, error) {
	if err := Authorize(p, f.Extension); err != nil {
		return nil, err
	}
	if f.Type != nil {
		if err := f.Type.Validate(); err != nil {
			return nil, err
		}
	}
	f.Offset, f.Limit = 0, 0
	return s.Store.DeleteCallEvents(ctx, f)
}
