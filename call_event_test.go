package callevents_test

import (
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents"
)

func TestParseExtension(t *testing.T) {
	for in, want := range map[string]callevents.Code{
		"0003*210": 0, "0003*21000": 0, "": callevents.CodeMissingParameter, "210": callevents.CodeExtensionInvalid,
		"0003*21": callevents.CodeExtensionInvalid, "0003*210000": callevents.CodeExtensionInvalid, "003*210": callevents.CodeExtensionInvalid,
		"0003-210": callevents.CodeExtensionInvalid, " 0003*210": callevents.CodeExtensionInvalid, "0003*210\n": callevents.CodeExtensionInvalid,
	} {
		_, err := callevents.ParseExtension(in)
		if got := callevents.ErrorCode(err, 0); got != want {
			t.Errorf("ParseExtension(%q): code %d, want %d", in, got, want)
		}
	}
}

func TestValidateCallEvent(t *testing.T) {
	ok := callevents.CallEvent{Extension: "0003*210", Type: callevents.AnswerOut, Method: callevents.MethodPOST, URL: "https://crm.example.com:8443/h?a=1&b=%20", Status: callevents.StatusEnabled}
	for name, tc := range map[string]struct {
		change func(*callevents.CallEvent)
		want   callevents.Code
	}{
		"ok":              {func(*callevents.CallEvent) {}, 0},
		"type":            {func(c *callevents.CallEvent) { c.Type = 5 }, callevents.CodeTypeInvalid},
		"negative-type":   {func(c *callevents.CallEvent) { c.Type = -1 }, callevents.CodeTypeInvalid},
		"method":          {func(c *callevents.CallEvent) { c.Method = 2 }, callevents.CodeMethodInvalid},
		"status":          {func(c *callevents.CallEvent) { c.Status = 2 }, callevents.CodeStatusInvalid},
		"url-missing":     {func(c *callevents.CallEvent) { c.URL = "" }, callevents.CodeMissingParameter},
		"url-scheme":      {func(c *callevents.CallEvent) { c.URL = "javascript:alert(1)" }, callevents.CodeURLInvalid},
		"url-no-host":     {func(c *callevents.CallEvent) { c.URL = "http:///x" }, callevents.CodeURLInvalid},
		"url-space":       {func(c *callevents.CallEvent) { c.URL = "http://a.example/x y" }, callevents.CodeURLInvalid},
		"url-fragment":    {func(c *callevents.CallEvent) { c.URL = "http://a.example/#x" }, callevents.CodeURLInvalid},
		"url-userinfo":    {func(c *callevents.CallEvent) { c.URL = "http://u:p@a.example/" }, callevents.CodeURLInvalid},
		"url-2048":        {func(c *callevents.CallEvent) { c.URL = "http://a.example/" + strings.Repeat("a", 2048-17) }, 0},
		"url-2049":        {func(c *callevents.CallEvent) { c.URL = "http://a.example/" + strings.Repeat("a", 2048-16) }, callevents.CodeURLInvalid},
		"note-1024-runes": {func(c *callevents.CallEvent) { c.Note = strings.Repeat("é", 1024) }, 0},
		"note-1025":       {func(c *callevents.CallEvent) { c.Note = strings.Repeat("n", 1025) }, callevents.CodeNoteInvalid},
		"secret-16":       {func(c *callevents.CallEvent) { c.Secret = strings.Repeat("s", 16) }, 0},
		"secret-15":       {func(c *callevents.CallEvent) { c.Secret = strings.Repeat("s", 15) }, callevents.CodeSecretInvalid},
		"secret-129":      {func(c *callevents.CallEvent) { c.Secret = strings.Repeat("s", 129) }, callevents.CodeSecretInvalid},
		"secret-control":  {func(c *callevents.CallEvent) { c.Secret = strings.Repeat("s", 16) + "\x01" }, callevents.CodeSecretInvalid},
	} {
		c := ok
		tc.change(&c)
		if got := callevents.ErrorCode(c.Validate(), 0); got != tc.want {
			t.Errorf("%s: code %d, want %d", name, got, tc.want)
		}
	}
}

func TestNewCallEventID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := callevents.NewCallEventID()
		if len(id) != 30 || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
			t.Fatalf("id %q is not 30 alphanumerics", id)
		}
		if seen[id] {
			t.Fatalf("id %q handed out twice", id)
		}
		seen[id] = true
	}
}

func TestScope(t *testing.T) {
	for _, tc := range []struct {
		scope, ext string
		manage     bool
	}{
		{"admin", "0004*100", true},
		{"org:0003", "0003*210", true},
		{"org:0003", "0004*210", false},
		{"ext:0003*210", "0003*210", true},
		{"ext:0003*210", "0003*2100", false},
		{"pbx", "0003*210", false},
	} {
		s, err := callevents.ParseScope(tc.scope)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CanManage(callevents.Extension(tc.ext)); got != tc.manage {
			t.Errorf("%s manages %s = %v", tc.scope, tc.ext, got)
		}
	}
	for _, bad := range []string{"", "root", "org:3", "org:00031", "ext:0003", "ext:0003*21", "ADMIN"} {
		if _, err := callevents.ParseScope(bad); err == nil {
			t.Errorf("ParseScope(%q) accepted", bad)
		}
	}
}

// Ensure ValidateURL refuses, with code 303, the URLs that would otherwise
// be stored and retried for hours: bad ports, hosts that are not names or
// addresses, and characters outside ASCII (never stored raw).
func TestValidateURL(t *testing.T) {
	t.Parallel()
	label := func(c string, n int) string { return strings.Repeat(c, n) }
	name253 := label("a", 63) + "." + label("b", 63) + "." + label("c", 63) + "." + label("d", 61)
	for _, tc := range []struct {
		name string
		url  string
		want callevents.Code
	}{
		{"port-default", "http://crm.example.com/h", 0},
		{"port-1", "http://crm.example.com:1/h", 0},
		{"port-65535", "https://crm.example.com:65535/h", 0},
		{"port-leading-zero", "http://crm.example.com:080/h", 0},
		{"port-0", "http://crm.example.com:0/h", callevents.CodeURLInvalid},
		{"port-65536", "http://crm.example.com:65536/h", callevents.CodeURLInvalid},
		{"port-huge", "http://crm.example.com:99999999999999999999/h", callevents.CodeURLInvalid},
		{"port-empty", "http://h:/", callevents.CodeURLInvalid},
		{"port-empty-ipv6", "http://[2001:db8::1]:/", callevents.CodeURLInvalid},
		{"port-empty-no-path", "http://crm.example.com:", callevents.CodeURLInvalid},
		{"port-not-digits", "http://crm.example.com:8o/", callevents.CodeURLInvalid},

		{"host-single-label", "http://receiver/hook", 0},
		{"host-trailing-dot", "http://crm.example.com./hook", 0},
		{"host-upper-case", "http://CRM.Example.COM/hook", 0},
		{"host-hyphen-inside", "http://my-crm.example-1.com/", 0},
		{"host-underscore", "http://call_receiver:8080/hook", 0},
		{"host-punycode", "http://xn--bcher-kva.example/", 0},
		{"host-digits-inside", "http://1password.example.com/", 0},
		{"host-label-63", "http://" + strings.Repeat("a", 63) + ".example/", 0},
		{"host-label-64", "http://" + strings.Repeat("a", 64) + ".example/", callevents.CodeURLInvalid},
		{"host-253", "http://" + name253 + "/", 0},
		{"host-253-trailing-dot", "http://" + name253 + "./", 0},
		{"host-254", "http://" + name253 + "d/", callevents.CodeURLInvalid},
		{"host-leading-hyphen", "http://-crm.example.com/", callevents.CodeURLInvalid},
		{"host-trailing-hyphen", "http://crm-.example.com/", callevents.CodeURLInvalid},
		{"host-empty-label", "http://crm..example.com/", callevents.CodeURLInvalid},
		{"host-leading-dot", "http://.example.com/", callevents.CodeURLInvalid},
		{"host-two-trailing-dots", "http://example.com../", callevents.CodeURLInvalid},
		{"host-only-dot", "http://./", callevents.CodeURLInvalid},
		{"host-dollar", "http://exa$mple.com/", callevents.CodeURLInvalid},
		{"host-comma", "http://a,b.example/", callevents.CodeURLInvalid},
		{"host-star", "http://*.example.com/", callevents.CodeURLInvalid},
		{"host-bang", "http://a!b.example/", callevents.CodeURLInvalid},
		{"host-numeric-short", "http://127.1/", callevents.CodeURLInvalid},
		{"host-numeric-decimal", "http://2130706433/", callevents.CodeURLInvalid},
		{"host-numeric-hex", "http://0x7f.0.0.1/", callevents.CodeURLInvalid},
		{"host-numeric-hex-last", "http://a.0x7f/", callevents.CodeURLInvalid},
		{"host-numeric-octal", "http://0177.0.0.1/", callevents.CodeURLInvalid},
		{"host-five-parts", "http://1.2.3.4.5/", callevents.CodeURLInvalid},
		{"host-numeric-tld", "http://example.123/", callevents.CodeURLInvalid},
		{"host-ipv4", "http://93.184.216.34:8080/", 0},
		{"host-ipv6", "http://[2001:db8::1]:8080/", 0},
		{"host-ipv6-mapped", "http://[::ffff:93.184.216.34]/", 0}, // the policy judges the address
		{"host-ipv6-zone", "http://[fe80::1%25eth0]/", callevents.CodeURLInvalid},
		{"host-ipv4-in-brackets", "http://[93.184.216.34]/", callevents.CodeURLInvalid},
		{"host-ipv6-unbracketed", "http://2001:db8::1/", callevents.CodeURLInvalid},

		{"ascii-escaped-path", "http://crm.example.com/caf%C3%A9?x=%C3%A9", 0},
		{"non-ascii-path", "http://crm.example.com/café", callevents.CodeURLInvalid},
		{"non-ascii-query", "http://crm.example.com/h?name=José", callevents.CodeURLInvalid},
		{"non-ascii-host", "http://bücher.example/", callevents.CodeURLInvalid},
		{"non-utf8", "http://crm.example.com/\xff", callevents.CodeURLInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := callevents.ValidateURL(tc.url)
			if got := callevents.ErrorCode(err, 0); got != tc.want {
				t.Errorf("ValidateURL(%q): code %d (%v), want %d", tc.url, got, err, tc.want)
			}
		})
	}
}

// Ensure a Call Event's URL is checked by Validate, which Add and Edit
// apply on every edge.
func TestValidateCallEventURLRules(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"http://h:/", "http://h:0/", "http://h:70000/", "http://exa$mple.com/", "http://h.example/é"} {
		c := callevents.NewCallEvent("0003*210", callevents.DialIn)
		c.URL = url
		if got := callevents.ErrorCode(c.Validate(), 0); got != callevents.CodeURLInvalid {
			t.Errorf("Validate with URL %q: code %d, want 303", url, got)
		}
	}
}

// Ensure delivery ids are webhook-ids (dlv_ and 26 alphanumerics), unique,
// and sort by the millisecond they were made in, whatever their random
// part: the store's index of them then grows at its end.
func TestNewDeliveryID(t *testing.T) {
	seen := map[string]bool{}
	base := time.Date(2026, 12, 2, 20, 0, 0, 0, time.UTC)
	prev := ""
	for i := 0; i < 1000; i++ {
		id := callevents.NewDeliveryIDAt(base.Add(time.Duration(i/3) * time.Millisecond))
		if len(id) != 30 || !strings.HasPrefix(id, "dlv_") || strings.Trim(id[4:], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
			t.Fatalf("id %q is not dlv_ and 26 alphanumerics", id)
		}
		if seen[id] {
			t.Fatalf("id %q handed out twice", id)
		}
		seen[id] = true
		if i%3 == 0 && id <= prev {
			t.Fatalf("id %q of a later millisecond sorts before %q", id, prev)
		}
		if i%3 == 2 {
			prev = id
		}
	}
	if id := callevents.NewDeliveryID(); len(id) != 30 || seen[id] {
		t.Errorf("NewDeliveryID() = %q", id)
	}
}
