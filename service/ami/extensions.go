package ami

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/callevents/callevents"
)

// ExtensionMap maps Asterisk endpoints (the peer name of a PJSIP/SIP/IAX2
// channel) to VoipNow extended numbers.
type ExtensionMap struct {
	// Org is the 4-digit organization code used for endpoints of 3–5
	// digits that are not in Explicit; "" disables that rule.
	Org string
	// Explicit maps an endpoint to an extended number; it wins over Org.
	Explicit map[string]string
}

var (
	orgPattern      = regexp.MustCompile(`^[0-9]{4}$`)
	endpointDigits  = regexp.MustCompile(`^[0-9]{3,5}$`)
	endpointPattern = regexp.MustCompile(`^[A-Za-z0-9_.+@~-]+$`)
)

// ParseExtensionMap builds a map from an organization code (4 digits, may
// be "") and a list "210=0003*210,alice=0003*211": an explicit entry wins;
// else, with org set, an endpoint of 3–5 digits maps to org*endpoint; else
// the endpoint is unknown ("" → not reported on that side).
func ParseExtensionMap(org, explicit string) (ExtensionMap, error) {
	org = strings.TrimSpace(org)
	if org != "" && !orgPattern.MatchString(org) {
		return ExtensionMap{}, fmt.Errorf("organization code %q: want 4 digits such as 0003", org)
	}
	m := ExtensionMap{Org: org}
	for _, item := range strings.Split(explicit, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ep, ext, ok := strings.Cut(item, "=")
		ep, ext = strings.TrimSpace(ep), strings.TrimSpace(ext)
		if !ok || ep == "" {
			return ExtensionMap{}, fmt.Errorf("extension map entry %q: want endpoint=extended number, e.g. 210=0003*210", item)
		}
		if !endpointPattern.MatchString(ep) {
			return ExtensionMap{}, fmt.Errorf("extension map entry %q: endpoint %q has characters a channel name cannot have", item, ep)
		}
		if _, err := callevents.ParseExtension(ext); err != nil {
			return ExtensionMap{}, fmt.Errorf("extension map entry %q: %q is not an extended number such as 0003*210", item, ext)
		}
		if m.Explicit == nil {
			m.Explicit = map[string]string{}
		}
		if _, dup := m.Explicit[ep]; dup {
			return ExtensionMap{}, fmt.Errorf("extension map: endpoint %q listed twice", ep)
		}
		m.Explicit[ep] = ext
	}
	return m, nil
}

// Lookup returns the extended number of an endpoint, and whether it has one.
func (m ExtensionMap) Lookup(endpoint string) (callevents.Extension, bool) {
	if endpoint == "" {
		return "", false
	}
	if ext, ok := m.Explicit[endpoint]; ok {
		if e, err := callevents.ParseExtension(ext); err == nil {
			return e, true
		}
		return "", false
	}
	if m.Org != "" && endpointDigits.MatchString(endpoint) {
		return callevents.Extension(m.Org + "*" + endpoint), true
	}
	return "", false
}

// channelEndpoint returns the endpoint of a channel name: "PJSIP/210-00000004"
// → "210" (the part between the technology and the last '-'). Channels of
// other technologies (Local, Message, …) have none.
func channelEndpoint(channel string) string {
	tech, rest, ok := strings.Cut(channel, "/")
	if !ok {
		return ""
	}
	switch strings.ToUpper(tech) {
	case "PJSIP", "SIP", "IAX2":
	default:
		return ""
	}
	if i := strings.LastIndexByte(rest, '-'); i > 0 {
		rest = rest[:i]
	}
	return rest
}
