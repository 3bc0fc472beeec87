package service

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/gen"
)

// Ensure the fault detail built with etree is the WSDL's serviceFault as
// encoding/xml writes gen.ServiceFault, byte for byte once in a document,
// whatever the message holds: markup, quotes, white space, characters XML
// cannot carry (written as U+FFFD, as encoding/xml does), or nothing.
func TestFaultDetailIsServiceFault(t *testing.T) {
	for _, message := range []string{
		"Request invalid. Missing parameter url",
		`Extension "0003*21é…" is invalid: <x> & 'y'`,
		"tab\there\nnew\r line ]]> \u2028 ✓",
		"nul \x00, bell \x07, invalid \xff\xfe, noncharacter \uFFFE",
		"",
	} {
		for _, code := range []callevents.Code{callevents.CodeAuthInvalid, callevents.CodeRetrieveFailed, 0} {
			doc := buildFault(false, "Client", message, code)
			got := etree.NewDocument()
			got.SetRoot(doc.FindElement("//detail/serviceFault").Copy())
			// What the fault held before: encoding/xml's bytes, read into
			// the etree document.
			b, err := xml.Marshal(&gen.ServiceFault{Code: int32(code), Message: message})
			if err != nil {
				t.Fatal(err)
			}
			want := etree.NewDocument()
			if err := want.ReadFromBytes(b); err != nil {
				t.Fatal(err)
			}
			gs, _ := got.WriteToString()
			ws, _ := want.WriteToString()
			if gs != ws {
				t.Errorf("code %d, message %q:\n got %s\nwant %s", code, message, gs, ws)
			}
			out, _ := doc.WriteToString()
			if strings.Contains(message, "\x00") && strings.Contains(out, "\x00") {
				t.Errorf("the fault carries a NUL: %q", out)
			}
		}
	}
}
