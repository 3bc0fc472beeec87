package callevents

import (
	"context"
	"crypto/rand"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// EventType is what happens on an extension that fires a Call Event.
type EventType int

// Event types, numbered as in the UnifiedAPI PhoneCallEvent resource.
const (
	DialIn    EventType = 0 // the extension receives a call
	DialOut   EventType = 1 // the extension places a call
	Hangup    EventType = 2 // a call the extension takes part in ends
	AnswerIn  EventType = 3 // an incoming call is answered
	AnswerOut EventType = 4 // the other party answers an outgoing call
)

// EventTypes lists every event type in numeric order.
func EventTypes() []EventType { return []EventType{DialIn, DialOut, Hangup, AnswerIn, AnswerOut} }

// Valid reports whether t is one of the five event types.
func (t EventType) Valid() bool { return t >= DialIn && t <= AnswerOut }

// Validate returns code 301 unless t is one of the five event types.
func (t EventType) Validate() error {
	if !t.Valid() {
		return Errorf(CodeTypeInvalid, "Type %d is invalid: expected 0 (Dial-In), 1 (Dial-Out), 2 (Hangup), 3 (Answer-In) or 4 (Answer-Out).", t)
	}
	return nil
}

// String returns the name a receiver sees in X-CallEvents-Event.
func (t EventType) String() string {
	switch t {
	case DialIn:
		return "Dial-In"
	case DialOut:
		return "Dial-Out"
	case Hangup:
		return "Hangup"
	case AnswerIn:
		return "Answer-In"
	case AnswerOut:
		return "Answer-Out"
	}
	return "unknown"
}

// Method is the HTTP method of a Call Event's request.
type Method int

// Methods.
const (
	MethodGET  Method = 0
	MethodPOST Method = 1
)

// Valid reports whether m is GET or POST.
func (m Method) Valid() bool { return m == MethodGET || m == MethodPOST }

// Validate returns code 302 unless m is GET or POST.
func (m Method) Validate() error {
	if !m.Valid() {
		return Errorf(CodeMethodInvalid, "Method %d is invalid: expected 0 (GET) or 1 (POST).", m)
	}
	return nil
}

// Status tells whether a Call Event fires.
type Status int

// Statuses.
const (
	StatusDisabled Status = 0
	StatusEnabled  Status = 1
)

// Valid reports whether s is enabled or disabled.
func (s Status) Valid() bool { return s == StatusDisabled || s == StatusEnabled }

// Validate returns code 304 unless s is enabled or disabled.
func (s Status) Validate() error {
	if !s.Valid() {
		return Errorf(CodeStatusInvalid, "Status %d is invalid: expected 0 (disabled) or 1 (enabled).", s)
	}
	return nil
}

var extensionPattern = regexp.MustCompile(`^[0-9]{4}\*[0-9]{3,5}$`)

// Extension is a VoipNow extended number: organization code, '*', extension.
type Extension string

// ParseExtension validates s as an extended number such as 0003*210.
// Returns code 117 when s is empty and 254 when it is malformed.
func ParseExtension(s string) (Extension, error) {
	if s == "" {
		return "", MissingParameter("extension")
	}
	if !extensionPattern.MatchString(s) {
		return "", Errorf(CodeExtensionInvalid, "Extension %q is invalid: expected an extended number such as 0003*210.", Truncate(s, 64))
	}
	return Extension(s), nil
}

// Organization returns the 4-digit organization code of e.
func (e Extension) Organization() string { return string(e)[:4] }

// Limits of Call Event fields (SPEC.md §2).
const (
	MaxURLLength                     = 2048
	MaxNoteLength                    = 1024
	MinSecretLength                  = 16
	MaxSecretLength                  = 128
	CallEventIDLength                = 30
	MaxCallEventsPerExtensionDefault = 100
	MaxPageCount                     = 5000
	PageCountDefault                 = 20
)

// CallEvent is a webhook bound to one extension: when Type happens on
// Extension, send Method to URL.
type CallEvent struct {
	ID        string
	Extension Extension
	Type      EventType
	Method    Method
	URL       string
	Status    Status
	Note      string
	// Secret signs outgoing requests. It is write-only: the edges never
	// return it, only whether it is set.
	Secret   string
	Modified time.Time
}

// NewCallEvent returns a Call Event of ext and typ with the defaults a new
// one gets when the request leaves them out: method GET, status enabled.
// Its URL is still to be set.
func NewCallEvent(ext Extension, typ EventType) CallEvent {
	return CallEvent{Extension: ext, Type: typ, Method: MethodGET, Status: StatusEnabled}
}

// HasSecret reports whether requests of c are signed.
func (c CallEvent) HasSecret() bool { return c.Secret != "" }

// Validate checks every field but ID and Modified, returning the field's code.
func (c CallEvent) Validate() error {
	if _, err := ParseExtension(string(c.Extension)); err != nil {
		return err
	}
	if err := c.Type.Validate(); err != nil {
		return err
	}
	return CallEventUpdate{URL: &c.URL, Method: &c.Method, Status: &c.Status, Note: &c.Note, Secret: &c.Secret}.Validate()
}

// ValidateURL checks a Call Event's URL (code 303): an absolute http or
// https URL of at most MaxURLLength bytes, with no fragment and no user
// information, whose host is a host name (ValidHostName) or an IP address
// (dotted IPv4, or IPv6 in brackets without a zone), with a port of 1 to
// 65535 when there is one ("http://h:/" has an empty one and is refused).
//
// The URL must be ASCII: other characters, in the path, the query or the
// host, are refused rather than percent-encoded on the caller's behalf, so
// the URL stored, shown back and sent is the one the caller gave, byte for
// byte, and the signed query of a GET is not rewritten. A caller sends
// é as %C3%A9, and an internationalized domain name in its xn-- (IDNA)
// form.
func ValidateURL(s string) error {
	if s == "" {
		return MissingParameter("url")
	}
	if len(s) > MaxURLLength {
		return Errorf(CodeURLInvalid, "URL is invalid: longer than %d bytes.", MaxURLLength)
	}
	u, err := url.Parse(s)
	if err != nil || !utf8.ValidString(s) || strings.ContainsAny(s, " \t\r\n") {
		return Errorf(CodeURLInvalid, "URL is invalid: not an RFC 3986 URL.")
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return Errorf(CodeURLInvalid, "URL is invalid: it must be ASCII; percent-encode other characters (é as %%C3%%A9) and give an internationalized host name in its xn-- form.")
		}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Errorf(CodeURLInvalid, "URL is invalid: the scheme must be http or https.")
	}
	if u.Host == "" || u.Hostname() == "" {
		return Errorf(CodeURLInvalid, "URL is invalid: it has no host.")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return Errorf(CodeURLInvalid, "URL is invalid: it must not have a fragment.")
	}
	if u.User != nil {
		return Errorf(CodeURLInvalid, "URL is invalid: it must not carry user information.")
	}
	if err := validateURLHost(u); err != nil {
		return err
	}
	return validateURLPort(u)
}

// validateURLHost checks the host of a parsed URL: a bracketed IPv6
// address without a zone, a dotted IPv4 address, or a host name.
func validateURLHost(u *url.URL) error {
	host := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		addr, err := netip.ParseAddr(host)
		switch {
		case err != nil || !addr.Is6():
			return Errorf(CodeURLInvalid, "URL is invalid: %q in brackets is not an IPv6 address.", Truncate(host, 64))
		case addr.Zone() != "":
			return Errorf(CodeURLInvalid, "URL is invalid: an IPv6 address must not name a zone.")
		}
		return nil
	}
	if addr, err := netip.ParseAddr(host); err == nil && addr.Is4() {
		return nil
	}
	if !ValidHostName(host) {
		return Errorf(CodeURLInvalid, "URL is invalid: the host %q is neither a host name nor an IP address.", Truncate(host, 64))
	}
	return nil
}

// validateURLPort checks the port of a parsed URL, when it has one.
func validateURLPort(u *url.URL) error {
	if strings.HasSuffix(u.Host, ":") {
		return Errorf(CodeURLInvalid, "URL is invalid: the port after ':' is empty.")
	}
	port := u.Port() // url.Parse has checked it is digits
	if port == "" {
		return nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Errorf(CodeURLInvalid, "URL is invalid: the port must be 1 to 65535.")
	}
	return nil
}

// ValidHostName reports whether name is a host name a Call Event's URL (and
// the outbound policy's allowlist) may give: dot-separated labels of 1 to
// 63 ASCII letters, digits, hyphens and underscores, none starting or
// ending with a hyphen, at most 253 bytes in all, with an optional
// trailing dot (a fully qualified "example.com." is example.com). The last
// label may not look like a number ("127.1", "2130706433", "0x7f.1"): some
// resolvers read such a name as an IPv4 address. Underscores, which RFC
// 1123 host names lack, are allowed because names such as Docker
// Compose's service names resolve with them.
func ValidHostName(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return !numeric(labels[len(labels)-1])
}

// numeric reports whether a label reads as a number in the IPv4 forms of
// inet_aton and the WHATWG URL standard: decimal, or hexadecimal after 0x.
func numeric(label string) bool {
	digits := label
	if len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X') {
		digits = label[2:]
		if digits == "" {
			return true // "0x" alone is 0
		}
		return strings.Trim(strings.ToLower(digits), "0123456789abcdef") == ""
	}
	return strings.Trim(digits, "0123456789") == ""
}

// ValidateNote checks the note's length in characters (code 305).
func ValidateNote(s string) error {
	if !utf8.ValidString(s) {
		return Errorf(CodeNoteInvalid, "Note is invalid: not UTF-8 text.")
	}
	if utf8.RuneCountInString(s) > MaxNoteLength {
		return Errorf(CodeNoteInvalid, "Note is invalid: longer than %d characters.", MaxNoteLength)
	}
	return nil
}

// ValidateSecret checks a non-empty secret: 16 to 128 printable ASCII
// characters (code 306).
func ValidateSecret(s string) error {
	if len(s) < MinSecretLength || len(s) > MaxSecretLength {
		return Errorf(CodeSecretInvalid, "Secret is invalid: it must be %d to %d printable ASCII characters.", MinSecretLength, MaxSecretLength)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return Errorf(CodeSecretInvalid, "Secret is invalid: it must be %d to %d printable ASCII characters.", MinSecretLength, MaxSecretLength)
		}
	}
	return nil
}

const alphanumerics = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewCallEventID returns 30 random alphanumerics (about 178 bits), so an id
// is never handed out twice.
func NewCallEventID() string { return randomAlphanumerics(CallEventIDLength) }

func randomAlphanumerics(n int) string {
	b := make([]byte, n)
	// 62*4 = 248: rejecting bytes >= 248 keeps every character equally likely.
	buf := make([]byte, n*2)
	for i := 0; i < n; {
		rand.Read(buf)
		for _, c := range buf {
			if c < 248 && i < n {
				b[i] = alphanumerics[c%62]
				i++
			}
		}
	}
	return string(b)
}

// CallEventFilter selects Call Events of one extension. Nil fields do not filter.
type CallEventFilter struct {
	Extension Extension
	Type      *EventType
	// ID names one Call Event: finding nothing by it is code 255.
	ID *string
	// Match narrows the selection further; unlike ID, a Match that keeps
	// nothing is an empty result, not an error.
	Match CallEventMatch
	// Offset and Limit page the result; Limit 0 means no limit.
	Offset int
	Limit  int
}

// CallEventMatch keeps the Call Events whose fields equal the ones set:
// byte for byte for text (text that is not UTF-8 matches nothing, as every
// stored text is), to the second for Modified. Nil fields do not filter.
type CallEventMatch struct {
	ID       *string
	Type     *EventType
	Method   *Method
	URL      *string
	Status   *Status
	Note     *string
	Modified *time.Time
}

// CallEventUpdate is the input of a Call Event, to add one or to change
// one. Nil fields are left alone (or take NewCallEvent's defaults); an
// empty Secret removes the secret. Every edge decodes its request into one
// and leaves the rules to the root: Normalize, then Validate.
type CallEventUpdate struct {
	URL    *string
	Method *Method
	Status *Status
	Note   *string
	Secret *string
}

// Normalize returns upd with its URL trimmed of surrounding white space,
// which pretty-printed XML (and a careless JSON client) pads it with.
func (upd CallEventUpdate) Normalize() CallEventUpdate {
	if upd.URL != nil {
		u := strings.TrimSpace(*upd.URL)
		upd.URL = &u
	}
	return upd
}

// Validate checks the fields that are set, in the order of the codes:
// method 302, url 303 (117 when empty), status 304, note 305, secret 306.
func (upd CallEventUpdate) Validate() error {
	if upd.Method != nil {
		if err := upd.Method.Validate(); err != nil {
			return err
		}
	}
	if upd.URL != nil {
		if err := ValidateURL(*upd.URL); err != nil {
			return err
		}
	}
	if upd.Status != nil {
		if err := upd.Status.Validate(); err != nil {
			return err
		}
	}
	if upd.Note != nil {
		if err := ValidateNote(*upd.Note); err != nil {
			return err
		}
	}
	if upd.Secret != nil && *upd.Secret != "" {
		return ValidateSecret(*upd.Secret)
	}
	return nil
}

// Apply returns c with upd applied (Modified untouched).
func (upd CallEventUpdate) Apply(c CallEvent) CallEvent {
	if upd.URL != nil {
		c.URL = *upd.URL
	}
	if upd.Method != nil {
		c.Method = *upd.Method
	}
	if upd.Status != nil {
		c.Status = *upd.Status
	}
	if upd.Note != nil {
		c.Note = *upd.Note
	}
	if upd.Secret != nil {
		c.Secret = *upd.Secret
	}
	return c
}

// CallEventStore keeps Call Events durably. Implementations return coded
// errors: 255 for a missing Call Event, 308 when a limit is reached, and
// 151/152 wrapping any internal failure.
type CallEventStore interface {
	// CreateCallEvent inserts c (ID and Modified already set) unless the
	// extension already has max Call Events (308). The count and the insert
	// are atomic.
	CreateCallEvent(ctx context.Context, c CallEvent, max int) error
	// FindCallEvents returns the page of Call Events selected by f (its
	// Match included), oldest first, and the total number that match f
	// without paging.
	FindCallEvents(ctx context.Context, f CallEventFilter) ([]CallEvent, int, error)
	// UpdateCallEvent applies upd to the Call Event with this extension, type
	// and id, sets Modified to now, and returns the result. The caller has
	// validated upd. Returns 255 if there is no such Call Event. Disabling
	// a Call Event cancels its pending deliveries in the same transaction.
	UpdateCallEvent(ctx context.Context, ext Extension, typ EventType, id string, upd CallEventUpdate, now time.Time) (CallEvent, error)
	// DeleteCallEvents deletes the Call Events selected by f (paging ignored)
	// and returns their ids, cancelling their pending deliveries in the
	// same transaction. Returns 255 if f.ID is set and matches nothing.
	DeleteCallEvents(ctx context.Context, f CallEventFilter) ([]string, error)
}
