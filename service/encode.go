package service

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"time"

	"github.com/callevents/callevents/gen"
)

// encodeResponse writes resp as encoding/xml would. GetPhoneCallEvents,
// the most frequent response, is written directly: reflection in
// encoding/xml was a seventh of the CPU of a Get. TestEncodeResponse holds
// the direct writer to encoding/xml's bytes.
func encodeResponse(buf *bytes.Buffer, resp any) error {
	get, ok := resp.(*gen.GetPhoneCallEventsResponse)
	if !ok {
		return xml.NewEncoder(buf).Encode(resp)
	}
	buf.WriteString(`<GetPhoneCallEventsResponse xmlns="` + wsdlNamespace + `">`)
	for _, pce := range get.PhoneCallEvent {
		if pce == nil {
			continue
		}
		buf.WriteString("<phoneCallEvent>")
		writeStringElement(buf, "id", pce.Id)
		writeStringElement(buf, "extension", pce.Extension)
		writeIntElement(buf, "type", pce.Type_)
		writeIntElement(buf, "method", pce.Method)
		writeStringElement(buf, "url", pce.Url)
		writeIntElement(buf, "status", pce.Status)
		if pce.Note != nil {
			buf.WriteString("<note>")
			xml.EscapeText(buf, []byte(*pce.Note))
			buf.WriteString("</note>")
		}
		if pce.HasSecret != nil {
			buf.WriteString("<hasSecret>" + strconv.FormatBool(*pce.HasSecret) + "</hasSecret>")
		}
		if t := pce.Modified.ToGoTime(); !t.IsZero() {
			layout := time.RFC3339
			if t.Nanosecond() != 0 {
				layout = time.RFC3339Nano
			}
			buf.WriteString("<modified>" + t.Format(layout) + "</modified>")
		}
		buf.WriteString("</phoneCallEvent>")
	}
	writeIntElement(buf, "totalResults", get.TotalResults)
	buf.WriteString("</GetPhoneCallEventsResponse>")
	return nil
}

// writeStringElement writes an omitempty string element.
func writeStringElement(buf *bytes.Buffer, name, value string) {
	if value == "" {
		return
	}
	buf.WriteString("<" + name + ">")
	xml.EscapeText(buf, []byte(value))
	buf.WriteString("</" + name + ">")
}

// writeIntElement writes an omitempty *int32 element.
func writeIntElement(buf *bytes.Buffer, name string, value *int32) {
	if value == nil {
		return
	}
	buf.WriteString("<" + name + ">" + strconv.FormatInt(int64(*value), 10) + "</" + name + ">")
}
