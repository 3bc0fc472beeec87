package service

import (
	"context"
	"strings"

	"github.com/hooklift/gowsdl/soap"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/gen"
)

// The Call Event operations of the SOAP endpoint: each reads its gen
// request into the root's values (the extension, the type, one
// CallEventUpdate) and leaves every rule to CallEventService.

const resultSuccess = "success"

func (s *Server) addPhoneCallEvent(ctx context.Context, p callevents.Principal, in *gen.AddPhoneCallEvent) (any, error) {
	ext, err := callevents.ParseExtension(strings.TrimSpace(in.Extension))
	if err != nil {
		return nil, err
	}
	if in.Type_ == nil {
		return nil, callevents.MissingParameter("type")
	}
	c, err := s.callEvents.AddCallEvent(ctx, p, ext, callevents.EventType(*in.Type_),
		callEventUpdate(&in.Url, in.Method, in.Status, in.Note, in.Secret))
	if err != nil {
		return nil, err
	}
	return &gen.AddPhoneCallEventResponse{Result: resultSuccess, PhoneCallEvent: phoneCallEventOut(c)}, nil
}

func (s *Server) getPhoneCallEvents(ctx context.Context, p callevents.Principal, in *gen.GetPhoneCallEvents) (any, error) {
	ext, err := callevents.ParseExtension(strings.TrimSpace(in.Extension))
	if err != nil {
		return nil, err
	}
	f := callevents.CallEventFilter{Extension: ext, Limit: callevents.PageCountDefault}
	if in.Type_ != nil {
		t := callevents.EventType(*in.Type_)
		f.Type = &t
	}
	if id := strings.TrimSpace(in.Id); id != "" {
		f.ID = &id
	}
	if in.StartIndex != nil {
		f.Offset = int(*in.StartIndex)
	}
	if in.Count != nil {
		f.Limit = int(*in.Count)
	}
	items, total, err := s.callEvents.FindCallEvents(ctx, p, f)
	if err != nil {
		return nil, err
	}
	out := &gen.GetPhoneCallEventsResponse{PhoneCallEvent: make([]*gen.PhoneCallEvent, len(items))}
	for i, c := range items {
		out.PhoneCallEvent[i] = phoneCallEventOut(c)
	}
	t := int32(total)
	out.TotalResults = &t
	return out, nil
}

// callEventUpdate is the input of Add and Edit as the root takes it: the
// rules (trimming, the empty URL) are the root's.
func callEventUpdate(url *string, method, status *int32, note, secret *string) callevents.CallEventUpdate {
	upd := callevents.CallEventUpdate{URL: url, Note: note, Secret: secret}
	if method != nil {
		m := callevents.Method(*method)
		upd.Method = &m
	}
	if status != nil {
		st := callevents.Status(*status)
		upd.Status = &st
	}
	return upd
}

// callEventKey reads the extension, type and id that name one Call Event.
func callEventKey(extension string, typ *int32, id string) (callevents.Extension, callevents.EventType, string, error) {
	ext, err := callevents.ParseExtension(strings.TrimSpace(extension))
	if err != nil {
		return "", 0, "", err
	}
	if typ == nil {
		return "", 0, "", callevents.MissingParameter("type")
	}
	id = strings.TrimSpace(id)
	if id == "" {
		return "", 0, "", callevents.MissingParameter("id")
	}
	return ext, callevents.EventType(*typ), id, nil
}

func (s *Server) editPhoneCallEvent(ctx context.Context, p callevents.Principal, in *gen.EditPhoneCallEvent) (any, error) {
	ext, typ, id, err := callEventKey(in.Extension, in.Type_, in.Id)
	if err != nil {
		return nil, err
	}
	upd := callEventUpdate(in.Url, in.Method, in.Status, in.Note, in.Secret)
	c, err := s.callEvents.EditCallEvent(ctx, p, ext, typ, id, upd)
	if err != nil {
		return nil, err
	}
	return &gen.EditPhoneCallEventResponse{Result: resultSuccess, PhoneCallEvent: phoneCallEventOut(c)}, nil
}

func (s *Server) setPhoneCallEventStatus(ctx context.Context, p callevents.Principal, in *gen.SetPhoneCallEventStatus) (any, error) {
	ext, typ, id, err := callEventKey(in.Extension, in.Type_, in.Id)
	if err != nil {
		return nil, err
	}
	if in.Status == nil {
		return nil, callevents.MissingParameter("status")
	}
	c, err := s.callEvents.SetCallEventStatus(ctx, p, ext, typ, id, callevents.Status(*in.Status))
	if err != nil {
		return nil, err
	}
	return &gen.SetPhoneCallEventStatusResponse{Result: resultSuccess, PhoneCallEvent: phoneCallEventOut(c)}, nil
}

func (s *Server) delPhoneCallEvent(ctx context.Context, p callevents.Principal, in *gen.DelPhoneCallEvent) (any, error) {
	ext, err := callevents.ParseExtension(strings.TrimSpace(in.Extension))
	if err != nil {
		return nil, err
	}
	f := callevents.CallEventFilter{Extension: ext}
	if in.Type_ != nil {
		t := callevents.EventType(*in.Type_)
		f.Type = &t
	}
	if id := strings.TrimSpace(in.Id); id != "" {
		f.ID = &id
	}
	ids, err := s.callEvents.DeleteCallEvents(ctx, p, f)
	if err != nil {
		return nil, err
	}
	return &gen.DelPhoneCallEventResponse{Result: resultSuccess, DeletedId: ids}, nil
}

// phoneCallEventOut converts a Call Event to its wire form; the secret
// itself never leaves, only whether there is one.
func phoneCallEventOut(c callevents.CallEvent) *gen.PhoneCallEvent {
	typ, method, status := int32(c.Type), int32(c.Method), int32(c.Status)
	note, hasSecret := c.Note, c.HasSecret()
	return &gen.PhoneCallEvent{
		Id:        c.ID,
		Extension: string(c.Extension),
		Type_:     &typ,
		Method:    &method,
		Url:       c.URL,
		Status:    &status,
		Note:      &note,
		HasSecret: &hasSecret,
		Modified:  soap.CreateXsdDateTime(c.Modified.UTC(), true),
	}
}
