package service

import (
	"bytes"
	"context"
	"encoding/xml"
	"strings"

	"github.com/hooklift/gowsdl/soap"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/gen"
)

const resultSuccess = "success"

// operation handles one body element. decode reads the request into its
// gen type once the client is authenticated (decodeRequest has already
// refused a malformed document with a 400); call runs it. fallback is the
// code of an uncoded (internal) error: 151 for reads, 152 for writes.
type operation struct {
	fallback callevents.Code
	decode   func(req *request) (any, error)
	call     func(s *Server, ctx context.Context, p callevents.Principal, in any) (any, error)
}

// newOperation binds a handler taking the gen request type T.
func newOperation[T any](fallback callevents.Code, handle func(*Server, context.Context, callevents.Principal, *T) (any, error)) operation {
	return operation{
		fallback: fallback,
		decode: func(req *request) (any, error) {
			in := new(T)
			return in, decodeOperation(req, in)
		},
		call: func(s *Server, ctx context.Context, p callevents.Principal, in any) (any, error) {
			return handle(s, ctx, p, in.(*T))
		},
	}
}

var operations = map[string]operation{
	"AddPhoneCallEvent":       newOperation(callevents.CodeUpdateFailed, (*Server).addPhoneCallEvent),
	"GetPhoneCallEvents":      newOperation(callevents.CodeRetrieveFailed, (*Server).getPhoneCallEvents),
	"EditPhoneCallEvent":      newOperation(callevents.CodeUpdateFailed, (*Server).editPhoneCallEvent),
	"SetPhoneCallEventStatus": newOperation(callevents.CodeUpdateFailed, (*Server).setPhoneCallEventStatus),
	"DelPhoneCallEvent":       newOperation(callevents.CodeUpdateFailed, (*Server).delPhoneCallEvent),
	// The delivery log (SPEC.md §8), in delivery.go.
	"GetPhoneCallEventDeliveries":  newOperation(callevents.CodeRetrieveFailed, (*Server).getPhoneCallEventDeliveries),
	"ResendPhoneCallEventDelivery": newOperation(callevents.CodeUpdateFailed, (*Server).resendPhoneCallEventDelivery),
	"TestPhoneCallEvent":           newOperation(callevents.CodeRetrieveFailed, (*Server).testPhoneCallEvent),
}

// decodeOperation decodes the body element into v through a fieldReader:
// a field sent as xsi:nil is absent, and a number field that is empty or
// not an xs:int is refused with its field's code. decodeRequest has
// already checked the whole document.
func decodeOperation(req *request, v any) error {
	fields := &fieldReader{d: req.dec, op: req.op}
	if err := xml.NewTokenDecoder(fields).Decode(v); err != nil {
		return malformed(req.v12, "Malformed request: %s is not well-formed (%s).", req.op.Name.Local, xmlErrorText(err))
	}
	return fields.err
}

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

// marshalResponse writes resp inside a SOAP envelope of the request's version.
func marshalResponse(buf *bytes.Buffer, v12 bool, resp any) error {
	ns := nsSOAP11
	if v12 {
		ns = nsSOAP12
	}
	buf.WriteString(xml.Header)
	buf.WriteString(`<soap:Envelope xmlns:soap="` + ns + `"><soap:Body>`)
	if err := encodeResponse(buf, resp); err != nil {
		return err
	}
	buf.WriteString(`</soap:Body></soap:Envelope>`)
	return nil
}
