package callevents_test

import (
	"strings"
	"testing"

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
