package service_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/service"
)

// Ensure every operation works end to end and every response validates
// against the schema of our own WSDL.
func TestPhoneCallEventsOperations(t *testing.T) {
	b := setup(t, bundleOptions{})
	v := newSchemaValidator(t)

	status, body := b.call(t, "admin", `<v1:AddPhoneCallEvent>
		<v1:extension>0003*210</v1:extension><v1:type>0</v1:type>
		<v1:url>https://crm.example.com/hook?src=pbx</v1:url>
		<v1:method>1</v1:method><v1:note>CRM popup</v1:note>
		<v1:secret>0123456789abcdef-secret</v1:secret></v1:AddPhoneCallEvent>`)
	if status != http.StatusOK {
		t.Fatalf("add: HTTP %d\n%s", status, body)
	}
	add := bodyElement(t, body)
	v.validate(t, add)
	id := add.FindElement("phoneCallEvent/id").Text()
	if len(id) != callevents.CallEventIDLength {
		t.Fatalf("id %q: want %d characters", id, callevents.CallEventIDLength)
	}
	for path, want := range map[string]string{
		"result": "success", "phoneCallEvent/extension": "0003*210", "phoneCallEvent/type": "0",
		"phoneCallEvent/method": "1", "phoneCallEvent/status": "1", "phoneCallEvent/note": "CRM popup",
		"phoneCallEvent/hasSecret": "true", "phoneCallEvent/url": "https://crm.example.com/hook?src=pbx",
	} {
		if got := add.FindElement(path).Text(); got != want {
			t.Errorf("add %s = %q, want %q", path, got, want)
		}
	}
	if strings.Contains(body, "0123456789abcdef-secret") {
		t.Error("the secret came back in a response")
	}

	// Two more, then page through them.
	for _, typ := range []string{"2", "2"} {
		if status, body := b.call(t, "admin", `<v1:AddPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>`+typ+`</v1:type><v1:url>http://127.0.0.1:9/h</v1:url></v1:AddPhoneCallEvent>`); status != 200 {
			t.Fatalf("add: HTTP %d\n%s", status, body)
		}
	}
	status, body = b.call(t, "admin", `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension><v1:startIndex>1</v1:startIndex><v1:count>1</v1:count></v1:GetPhoneCallEvents>`)
	get := bodyElement(t, body)
	v.validate(t, get)
	if got := get.FindElement("totalResults").Text(); got != "3" {
		t.Errorf("totalResults = %s, want 3", got)
	}
	if n := len(get.FindElements("phoneCallEvent")); n != 1 {
		t.Errorf("page of count 1 has %d items", n)
	}
	// By type, and by id.
	_, body = b.call(t, "admin", `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension><v1:type>2</v1:type></v1:GetPhoneCallEvents>`)
	if got := bodyElement(t, body).FindElement("totalResults").Text(); got != "2" {
		t.Errorf("type 2: totalResults = %s, want 2", got)
	}
	_, body = b.call(t, "admin", `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension><v1:id>`+id+`</v1:id></v1:GetPhoneCallEvents>`)
	if got := bodyElement(t, body).FindElement("phoneCallEvent/id").Text(); got != id {
		t.Errorf("by id: got %q", got)
	}
	// An empty page still validates (totalResults 0 is sent, not dropped).
	_, body = b.call(t, "admin", `<v1:GetPhoneCallEvents><v1:extension>0003*999</v1:extension></v1:GetPhoneCallEvents>`)
	empty := bodyElement(t, body)
	v.validate(t, empty)
	if got := empty.FindElement("totalResults").Text(); got != "0" {
		t.Errorf("empty: totalResults = %q", got)
	}

	// Edit: note cleared, method back to GET (zero values survive), secret removed.
	status, body = b.call(t, "admin", `<v1:EditPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>0</v1:type><v1:id>`+id+`</v1:id>
		<v1:method>0</v1:method><v1:note></v1:note><v1:secret></v1:secret></v1:EditPhoneCallEvent>`)
	if status != 200 {
		t.Fatalf("edit: HTTP %d\n%s", status, body)
	}
	edit := bodyElement(t, body)
	v.validate(t, edit)
	for path, want := range map[string]string{"phoneCallEvent/method": "0", "phoneCallEvent/note": "", "phoneCallEvent/hasSecret": "false", "phoneCallEvent/url": "https://crm.example.com/hook?src=pbx"} {
		if got := edit.FindElement(path).Text(); got != want {
			t.Errorf("edit %s = %q, want %q", path, got, want)
		}
	}

	status, body = b.call(t, "ext:0003*210", `<v1:SetPhoneCallEventStatus><v1:extension>0003*210</v1:extension><v1:type>0</v1:type><v1:id>`+id+`</v1:id><v1:status>0</v1:status></v1:SetPhoneCallEventStatus>`)
	if status != 200 {
		t.Fatalf("set status: HTTP %d\n%s", status, body)
	}
	set := bodyElement(t, body)
	v.validate(t, set)
	if got := set.FindElement("phoneCallEvent/status").Text(); got != "0" {
		t.Errorf("status = %q, want 0", got)
	}

	// Delete by id, then by type, then all.
	_, body = b.call(t, "admin", `<v1:DelPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:id>`+id+`</v1:id></v1:DelPhoneCallEvent>`)
	del := bodyElement(t, body)
	v.validate(t, del)
	if ids := del.FindElements("deletedId"); len(ids) != 1 || ids[0].Text() != id || del.FindElement("id") != nil {
		t.Errorf("delete by id returned %v, want one deletedId", body)
	}
	b.call(t, "admin", `<v1:AddPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>1</v1:type><v1:url>http://127.0.0.1:9/h</v1:url></v1:AddPhoneCallEvent>`)
	_, body = b.call(t, "org:0003", `<v1:DelPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>2</v1:type></v1:DelPhoneCallEvent>`)
	if n := len(bodyElement(t, body).FindElements("deletedId")); n != 2 {
		t.Errorf("delete by type removed %d, want 2\n%s", n, body)
	}
	_, body = b.call(t, "admin", `<v1:DelPhoneCallEvent><v1:extension>0003*210</v1:extension></v1:DelPhoneCallEvent>`)
	if n := len(bodyElement(t, body).FindElements("deletedId")); n != 1 {
		t.Errorf("delete all removed %d, want 1\n%s", n, body)
	}
	if n := b.count(t, "0003*210"); n != 0 {
		t.Errorf("%d Call Events left after deleting all", n)
	}
	// Deleting nothing is still a success with no ids, and validates.
	_, body = b.call(t, "admin", `<v1:DelPhoneCallEvent><v1:extension>0003*210</v1:extension></v1:DelPhoneCallEvent>`)
	v.validate(t, bodyElement(t, body))
}

func (b *testBundle) count(t *testing.T, ext string) int {
	t.Helper()
	_, total, err := b.db.FindCallEvents(context.Background(), callevents.CallEventFilter{Extension: callevents.Extension(ext)})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

func (b *testBundle) mustAdd(t *testing.T, ext string, typ int) string {
	t.Helper()
	status, body := b.call(t, "admin", fmt.Sprintf(`<v1:AddPhoneCallEvent><v1:extension>%s</v1:extension><v1:type>%d</v1:type><v1:url>http://127.0.0.1:9/h</v1:url></v1:AddPhoneCallEvent>`, ext, typ))
	if status != http.StatusOK {
		t.Fatalf("add: HTTP %d\n%s", status, body)
	}
	return bodyElement(t, body).FindElement("phoneCallEvent/id").Text()
}

// Ensure SOAP 1.2 requests get SOAP 1.2 responses and faults.
func TestSOAP12(t *testing.T) {
	b := setup(t, bundleOptions{})
	env := func(body string) string {
		return `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header>
			<h:userCredentials xmlns:h="urn:callevents:phonecallevents:1"><h:accessToken>` + b.tokens["admin"] + `</h:accessToken></h:userCredentials>
			</env:Header><env:Body>` + body + `</env:Body></env:Envelope>`
	}
	ct := `application/soap+xml; charset=utf-8; action="urn:callevents:phonecallevents:1#AddPhoneCallEvent"`
	status, body := b.post(t, service.PathSOAP, ct, env(`<AddPhoneCallEvent xmlns="urn:callevents:phonecallevents:1"><extension>0003*210</extension><type>3</type><url>http://127.0.0.1:9/a</url></AddPhoneCallEvent>`))
	if status != 200 || !strings.Contains(body, `xmlns:soap="http://www.w3.org/2003/05/soap-envelope"`) {
		t.Fatalf("HTTP %d\n%s", status, body)
	}
	if got := bodyElement(t, body).FindElement("phoneCallEvent/type").Text(); got != "3" {
		t.Errorf("type = %q", got)
	}
	status, body = b.post(t, service.PathSOAP, ct, env(`<AddPhoneCallEvent xmlns="urn:callevents:phonecallevents:1"><extension>0003*210</extension><type>9</type><url>http://127.0.0.1:9/a</url></AddPhoneCallEvent>`))
	f, ok := parseFault(t, body)
	if status != http.StatusBadRequest || !ok || f.faultCode != "Sender" || f.code != "301" {
		t.Errorf("1.2 client fault: HTTP %d %+v\n%s", status, f, body)
	}
}

// Ensure a hand-written SoapUI-style request (prefixes, quoted SOAPAction,
// pretty-printed, the legacy endpoint path) works.
func TestSoapUIStyleRequest(t *testing.T) {
	b := setup(t, bundleOptions{})
	body := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v1="urn:callevents:phonecallevents:1">
   <soapenv:Header>
      <v1:userCredentials>
         <!--Optional:-->
         <v1:accessToken>` + b.tokens["admin"] + `</v1:accessToken>
      </v1:userCredentials>
   </soapenv:Header>
   <soapenv:Body>
      <v1:AddPhoneCallEvent>
         <v1:extension>0003*210</v1:extension>
         <v1:type>1</v1:type>
         <v1:url>https://crm.example.com/dial-out</v1:url>
         <!--Optional:-->
         <v1:method>1</v1:method>
      </v1:AddPhoneCallEvent>
   </soapenv:Body>
</soapenv:Envelope>`
	req, _ := http.NewRequest("POST", b.srv.URL+service.PathSOAPLegacy, strings.NewReader(body))
	req.Header.Set("Content-Type", "text/xml;charset=UTF-8")
	req.Header.Set("SOAPAction", `"urn:callevents:phonecallevents:1#AddPhoneCallEvent"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	if n := b.count(t, "0003*210"); n != 1 {
		t.Errorf("%d stored, want 1", n)
	}
}

// Ensure the VoipNow header namespaces, unqualified children (PHP's
// SoapHeader with an array), a header in no namespace (SOAP::Lite,
// strong-soap), and username/password credentials, work.
func TestHeaderVariants(t *testing.T) {
	b := setup(t, bundleOptions{})
	idSecret := strings.SplitN(b.secret["admin"], ":", 2)
	get := `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension></v1:GetPhoneCallEvents>`
	for name, header := range map[string]string{
		"4psa-namespace": `<h:userCredentials xmlns:h="http://4psa.com/HeaderData.xsd/3.5.0"><h:accessToken>` + b.tokens["admin"] + `</h:accessToken></h:userCredentials>`,
		"unqualified":    `<v1:userCredentials><accessToken>` + b.tokens["admin"] + `</accessToken></v1:userCredentials>`,
		// What PHP's SoapHeader sends for an array outside the WSDL's namespace.
		"php-apache-map": `<ns2:userCredentials xmlns:ns2="http://4psa.com/HeaderData.xsd/3.5.0" xmlns:ns3="http://xml.apache.org/xml-soap" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ns3:Map"><item><key>username</key><value>` + idSecret[0] + `</value></item><item><key>password</key><value>` + idSecret[1] + `</value></item></ns2:userCredentials>`,
		"password":       `<v1:userCredentials><v1:username>` + idSecret[0] + `</v1:username><v1:password>` + idSecret[1] + `</v1:password></v1:userCredentials>`,
		// No namespace at all: what SOAP::Lite sends (typed children) and
		// strong-soap (a header added without one).
		"no-namespace-soaplite":   `<userCredentials><accessToken xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xsi:type="xsd:string">` + b.tokens["admin"] + `</accessToken></userCredentials>`,
		"no-namespace-strongsoap": `<userCredentials xmlns=""><username>` + idSecret[0] + `</username><password>` + idSecret[1] + `</password></userCredentials>`,
	} {
		t.Run(name, func(t *testing.T) {
			status, body := b.post(t, service.PathSOAP, "text/xml", envelope11(header, get))
			if status != 200 {
				t.Errorf("HTTP %d\n%s", status, body)
			}
		})
	}
}

// Ensure a request without credentials the server reads gets fault 100
// naming the element and namespace it reads, and, when a userCredentials
// header came in another namespace, that one; nothing is stored.
func TestMissingCredentialsFault(t *testing.T) {
	b := setup(t, bundleOptions{})
	const want = "Missing credentials: send a userCredentials header (namespace urn:callevents:phonecallevents:1) with accessToken, or username and password."
	add := `<v1:AddPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>0</v1:type><v1:url>http://127.0.0.1:9/a</v1:url></v1:AddPhoneCallEvent>`
	for _, tc := range []struct {
		name, header, message string
	}{
		{"no-header", "", want},
		{"empty-credentials", `<v1:userCredentials/>`, want},
		{"unknown-children", `<userCredentials><token>` + b.tokens["admin"] + `</token></userCredentials>`, want},
		{"other-namespace", `<o:userCredentials xmlns:o="urn:example:other"><o:accessToken>` + b.tokens["admin"] + `</o:accessToken></o:userCredentials>`,
			want + ` The userCredentials header in namespace "urn:example:other" was not read.`},
		{"default-namespace-of-another", `<userCredentials xmlns="urn:example:other"><accessToken>` + b.tokens["admin"] + `</accessToken></userCredentials>`,
			want + ` The userCredentials header in namespace "urn:example:other" was not read.`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := b.post(t, service.PathSOAP, "text/xml", envelope11(tc.header, add))
			f, ok := parseFault(t, body)
			if status != http.StatusInternalServerError || !ok || f.faultCode != "Client" || f.code != "100" {
				t.Fatalf("HTTP %d %+v\n%s", status, f, body)
			}
			if f.message != tc.message || f.reason != tc.message {
				t.Errorf("message %q, faultstring %q,\nwant %q", f.message, f.reason, tc.message)
			}
		})
	}
	if n := b.count(t, "0003*210"); n != 0 {
		t.Errorf("%d Call Events stored without credentials", n)
	}

	t.Run("soap12", func(t *testing.T) {
		env := `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:v1="urn:callevents:phonecallevents:1"><env:Body>` + add + `</env:Body></env:Envelope>`
		status, body := b.post(t, service.PathSOAP, "application/soap+xml; charset=utf-8", env)
		if f, ok := parseFault(t, body); status != http.StatusBadRequest || !ok || f.faultCode != "Sender" || f.code != "100" || f.message != want {
			t.Errorf("HTTP %d %+v\n%s", status, f, body)
		}
	})
}

// Ensure an address held for failed authentications is told so even when
// it sends no credentials: the rate-limit message is not replaced by the
// one about missing credentials.
func TestMissingCredentialsWhenHeld(t *testing.T) {
	b := setup(t, bundleOptions{limits: service.Limits{FailedAuthPerAddress: service.RateLimit{Burst: 2, Every: time.Hour}}})
	get := `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension></v1:GetPhoneCallEvents>`
	var messages []string
	for range 3 {
		_, body := b.post(t, service.PathSOAP, "text/xml", envelope11("", get))
		f, ok := parseFault(t, body)
		if !ok || f.code != "100" {
			t.Fatalf("%+v\n%s", f, body)
		}
		messages = append(messages, f.message)
	}
	if !strings.HasPrefix(messages[0], "Missing credentials: ") || !strings.HasPrefix(messages[1], "Missing credentials: ") {
		t.Errorf("first two faults: %q", messages[:2])
	}
	if !strings.Contains(messages[2], "Too many failed authentication attempts from this address") {
		t.Errorf("third fault, past the limit: %q", messages[2])
	}
}
