package callevents

import (
	"net/url"
	"regexp"
	"strings"
)

// Redacted replaces a secret wherever one would be shown or logged.
const Redacted = "xxxxx"

// sensitiveQueryKeys are query parameters that commonly carry credentials
// in webhook URLs (?token=…, ?api_key=…); compared in lower case, with
// dashes and underscores ignored.
var sensitiveQueryKeys = map[string]bool{
	"password": true, "passwd": true, "pass": true, "pwd": true, "secret": true, "clientsecret": true,
	"token": true, "accesstoken": true, "apikey": true, "key": true, "auth": true, "authorization": true,
	"signature": true, "sig": true, "credentials": true,
}

// SensitiveName reports whether a field, parameter or attribute name
// (password, client_secret, access-token, …) stands for a secret.
func SensitiveName(name string) bool {
	n := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(name))
	return sensitiveQueryKeys[n] || strings.HasSuffix(n, "secret") || strings.HasSuffix(n, "password") || strings.HasSuffix(n, "token")
}

// RedactURL hides the credentials of a URL or DSN: the password of its user
// information and the values of sensitive query parameters. Anything that
// does not parse as a URL is returned unchanged.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	changed := false
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), Redacted)
			changed = true
		}
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err == nil {
			for key, values := range q {
				if SensitiveName(key) {
					for i := range values {
						values[i] = Redacted
					}
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
		}
	}
	if !changed {
		return raw
	}
	return u.String()
}

var urlInText = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// RedactText applies RedactURL to every URL inside a message, such as the
// text of an HTTP client error that quotes the URL it failed on.
func RedactText(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, RedactURL)
}
