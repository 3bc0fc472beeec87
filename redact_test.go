package callevents_test

import (
	"strings"
	"testing"

	"github.com/callevents/callevents"
)

// Ensure URL passwords and credential-like query values are hidden, and
// everything else is left as it was.
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://crm.example.com/hook?a=1":                      "https://crm.example.com/hook?a=1",
		"https://bob:hunter2@crm.example.com/hook":              "https://bob:xxxxx@crm.example.com/hook",
		"https://bob@crm.example.com/hook":                      "https://bob@crm.example.com/hook",
		"https://crm.example.com/hook?token=abc&call=1":         "https://crm.example.com/hook?call=1&token=xxxxx",
		"https://crm.example.com/h?API_KEY=abc":                 "https://crm.example.com/h?API_KEY=xxxxx",
		"https://crm.example.com/h?client-secret=abc":           "https://crm.example.com/h?client-secret=xxxxx",
		"mysql://callevents:s3cret@db.internal:3306/callevents": "mysql://callevents:xxxxx@db.internal:3306/callevents",
		"sqlite:callevents.db":                                  "sqlite:callevents.db",
		"not a url at all %zz":                                  "not a url at all %zz",
	} {
		if got := callevents.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// Ensure a URL quoted inside an error message is redacted in place.
func TestRedactText(t *testing.T) {
	msg := `Post "http://bob:hunter2@127.0.0.1:9/hook?sig=abc123&x=1": dial tcp 127.0.0.1:9: connect: connection refused`
	got := callevents.RedactText(msg)
	for _, secret := range []string{"hunter2", "abc123"} {
		if strings.Contains(got, secret) {
			t.Errorf("RedactText kept %q: %s", secret, got)
		}
	}
	if !strings.Contains(got, "connection refused") || !strings.Contains(got, "127.0.0.1:9/hook") {
		t.Errorf("RedactText lost the message: %s", got)
	}
}

func TestSensitiveName(t *testing.T) {
	for name, want := range map[string]bool{
		"password": true, "client_secret": true, "access_token": true, "AMISecret": true, "Authorization": true,
		"url": false, "extension": false, "call_id": false, "error": false,
	} {
		if got := callevents.SensitiveName(name); got != want {
			t.Errorf("SensitiveName(%q) = %v, want %v", name, got, want)
		}
	}
}
