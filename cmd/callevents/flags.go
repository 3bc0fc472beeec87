package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/callevents/callevents/cmd/internal/cliflag"
	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/service/ami"
)

// Every flag that takes more than free text is a checked flag of package
// cliflag, so that a bad value is named with the flag or variable it came
// in by and one that would work. The checks below are this command's.

// newFlagSet returns the empty flag set of a command (name: "serve",
// "clients add", …), printing its usage and errors on stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, "usage: callevents %s [flags]\n", name); cliflag.PrintDefaults(fs) }
	return fs
}

// checkAllowTargets checks --allow-targets item by item, with the rules of
// dispatcher.ParseAllowTargets.
func checkAllowTargets(list string) *cliflag.Complaint {
	const example = "10.0.0.0/8,192.168.1.10,crm.internal,*.example.com"
	for _, item := range cliflag.Items(list) {
		if _, err := dispatcher.ParseAllowTargets(item); err != nil {
			what := "is neither an IP address nor a host name (a leading *. is the only wildcard)"
			if strings.Contains(item, "/") {
				what = "is not a CIDR"
			}
			return &cliflag.Complaint{Bad: item, What: what, Example: example}
		}
	}
	return nil
}

// checkTrustedProxies checks --trusted-proxies item by item.
func checkTrustedProxies(list string) *cliflag.Complaint {
	for _, item := range cliflag.Items(list) {
		if _, err := parseTrustedProxies(item); err != nil {
			return &cliflag.Complaint{Bad: item, What: "is neither a CIDR nor an IP address", Example: "10.0.0.5,192.168.0.0/24"}
		}
	}
	return nil
}

// parseTrustedProxies reads --trusted-proxies: CIDRs or single addresses.
func parseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		addr, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is neither a CIDR nor an IP address", item)
		}
		out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
	}
	return out, nil
}

// checkAMIMap checks --ami-map (--map of ami) item by item, and that no
// endpoint is mapped twice.
func checkAMIMap(list string) *cliflag.Complaint {
	const example = "210=0003*210,alice=0003*211"
	seen := map[string]bool{}
	for _, item := range cliflag.Items(list) {
		if _, err := ami.ParseExtensionMap("", item); err != nil {
			return &cliflag.Complaint{Bad: item, What: "is not endpoint=extended number", Example: example}
		}
		ep, _, _ := strings.Cut(item, "=")
		if ep = strings.TrimSpace(ep); seen[ep] {
			return &cliflag.Complaint{Bad: item, What: "maps endpoint " + strconv.Quote(ep) + " a second time", Example: example}
		}
		seen[ep] = true
	}
	return nil
}

// didPattern is a public number as Asterisk's Exten shows it.
var didPattern = regexp.MustCompile(`^\+?[0-9]{1,32}$`)

// checkDIDs checks --ami-dids (--dids of ami) item by item.
func checkDIDs(list string) *cliflag.Complaint {
	for _, item := range cliflag.Items(list) {
		if !didPattern.MatchString(item) {
			return &cliflag.Complaint{Bad: item, What: "is not a phone number", Example: "4930123456,+4930123457"}
		}
	}
	return nil
}

// checkOrg checks --ami-org (--org of ami): empty, or 4 digits.
func checkOrg(s string) *cliflag.Complaint {
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	if _, err := ami.ParseExtensionMap(s, ""); err != nil {
		return &cliflag.Complaint{Bad: s, What: "is not an organization code", Example: "0003"}
	}
	return nil
}
