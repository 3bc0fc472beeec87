package service

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hooklift/gowsdl/soap"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/gen"
)

// errNotConfigured is the internal cause of an operation whose domain
// service was not wired in (Config.Activities, Config.Deliveries or the
// tester): it is logged, and the client sees the public message only.
var errNotConfigured = errors.New("service: not configured")

func notConfigured(what string) error {
	return &callevents.Error{Code: callevents.CodeRetrieveFailed, Message: what + " is not available on this server.", Err: errNotConfigured}
}

func (s *Server) getPhoneCallEventDeliveries(ctx context.Context, p callevents.Principal, in *gen.GetPhoneCallEventDeliveries) (any, error) {
	if s.deliveries == nil {
		return nil, notConfigured("The delivery log")
	}
	ext, err := callevents.ParseExtension(strings.TrimSpace(in.Extension))
	if err != nil {
		return nil, err
	}
	f := callevents.DeliveryFilter{
		Extension:   ext,
		CallEventID: strings.TrimSpace(in.PhoneCallEventId),
		CallID:      strings.TrimSpace(in.CallId),
		Limit:       callevents.PageCountDefault,
	}
	if in.State != nil {
		// An empty <state/> does not filter, like an absent one.
		f.State = callevents.DeliveryState(strings.TrimSpace(string(*in.State)))
	}
	if in.StartIndex != nil {
		f.Offset = int(*in.StartIndex)
	}
	if in.Count != nil {
		f.Limit = int(*in.Count)
	}
	items, total, err := s.deliveries.FindDeliveries(ctx, p, f)
	if err != nil {
		return nil, err
	}
	out := &gen.GetPhoneCallEventDeliveriesResponse{Delivery: make([]*gen.Delivery, len(items))}
	for i, d := range items {
		out.Delivery[i] = deliveryOut(d)
	}
	t := int32(total)
	out.TotalResults = &t
	return out, nil
}

func (s *Server) resendPhoneCallEventDelivery(ctx context.Context, p callevents.Principal, in *gen.ResendPhoneCallEventDelivery) (any, error) {
	if s.deliveries == nil {
		return nil, notConfigured("The delivery log")
	}
	ext, err := callevents.ParseExtension(strings.TrimSpace(in.Extension))
	if err != nil {
		return nil, err
	}
	id := strings.TrimSpace(in.Id)
	if id == "" {
		return nil, callevents.MissingParameter("id")
	}
	d, err := s.deliveries.ResendDelivery(ctx, p, ext, id)
	if err != nil {
		return nil, err
	}
	return &gen.ResendPhoneCallEventDeliveryResponse{Result: resultSuccess, Delivery: deliveryOut(d)}, nil
}

func (s *Server) testPhoneCallEvent(ctx context.Context, p callevents.Principal, in *gen.TestPhoneCallEvent) (any, error) {
	if s.deliveries == nil || s.deliveries.Tester == nil {
		return nil, notConfigured("Testing a Call Event")
	}
	ext, typ, id, err := callEventKey(in.Extension, in.Type_, in.Id)
	if err != nil {
		return nil, err
	}
	res, err := s.deliveries.TestCallEvent(ctx, p, ext, typ, id)
	if err != nil {
		return nil, err
	}
	delivered := res.ErrorClass == "" && res.StatusCode >= 200 && res.StatusCode <= 299
	latency := res.Latency.Milliseconds()
	out := &gen.TestPhoneCallEventResponse{Result: resultSuccess, Delivered: &delivered, LatencyMs: &latency}
	if res.StatusCode != 0 {
		status := int32(res.StatusCode)
		out.HttpStatus = &status
	}
	if res.ErrorClass != "" {
		class := res.ErrorClass
		out.Error = &class
	}
	return out, nil
}

// deliveryOut converts a delivery and its attempts to the wire form.
// sequence (its place in its order key, X-CallEvents-Sequence) and
// attempts are always sent; nextAttempt only while pending and finished
// once final; the payload, URL and secret never leave.
func deliveryOut(d callevents.Delivery) *gen.Delivery {
	typ, sequence, attempts := int32(d.Type), int32(d.Sequence), int32(d.Attempts)
	state := gen.DeliveryState(d.State)
	out := &gen.Delivery{
		Id:               d.ID,
		PhoneCallEventId: d.CallEventID,
		Extension:        string(d.Extension),
		Type_:            &typ,
		CallId:           d.CallID,
		Sequence:         &sequence,
		State:            &state,
		Attempts:         &attempts,
		Created:          xsdTime(d.Created),
		Attempt:          make([]*gen.DeliveryAttempt, len(d.History)),
	}
	if d.State == callevents.DeliveryPending {
		out.NextAttempt = xsdTime(d.NextAttemptAt)
	}
	if d.State.Finished() {
		out.Finished = xsdTime(d.Finished)
	}
	if d.LastStatus != 0 {
		status := int32(d.LastStatus)
		out.LastStatus = &status
	}
	if d.LastError != "" {
		lastError := d.LastError
		out.LastError = &lastError
	}
	for i, a := range d.History {
		n, latency := int32(a.Attempt), a.Latency.Milliseconds()
		at := &gen.DeliveryAttempt{Attempt: &n, At: xsdTime(a.At), LatencyMs: &latency}
		if a.StatusCode != 0 {
			status := int32(a.StatusCode)
			at.HttpStatus = &status
		}
		if a.ErrorClass != "" {
			class := a.ErrorClass
			at.Error = &class
		}
		out.Attempt[i] = at
	}
	return out
}

// xsdTime is t as an xs:dateTime in UTC; a zero t is omitted on output.
func xsdTime(t time.Time) soap.XSDDateTime {
	if t.IsZero() {
		return soap.XSDDateTime{}
	}
	return soap.CreateXsdDateTime(t.UTC(), true)
}
