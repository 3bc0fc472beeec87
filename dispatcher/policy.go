package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/callevents/callevents"
)

// Resolver looks up the addresses of a host name. *net.Resolver implements it.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// OutboundPolicy decides which targets requests may go to (SPEC.md §6).
// Loopback, private (RFC 1918, fc00::/7), link-local (169.254.0.0/16 with
// the cloud metadata address, fe80::/10), CGNAT (100.64.0.0/10), multicast,
// unspecified, broadcast and reserved addresses — and every IPv6 form that
// carries one of these IPv4 addresses (IPv4-mapped, IPv4-translated, NAT64,
// 6to4), the local-use NAT64 prefix, Teredo and IPv4-compatible addresses
// (see forbiddenReason) — are refused unless the allowlist admits them, by
// CIDR or by the URL's host name.
//
// The policy is applied twice: CheckURL at Add and Edit, and the dialer on
// the address actually connected, so that a name which resolves elsewhere
// when the request is sent (DNS rebinding) is refused all the same.
//
// A policy is safe for concurrent use; do not change its fields once in use.
type OutboundPolicy struct {
	// Resolver resolves host names, both for CheckURL and when dialling.
	// Nil means net.DefaultResolver.
	Resolver Resolver

	prefixes []netip.Prefix
	hosts    map[string]bool // exact names, lower case, no trailing dot
	suffixes []string        // "*.example.com" as ".example.com"
}

// DefaultPolicy returns a policy with no allowlist: every special address
// is refused.
func DefaultPolicy() *OutboundPolicy { return &OutboundPolicy{} }

// ParseAllowTargets parses the operator's allowlist (--allow-targets): a
// comma-separated list of CIDRs ("10.1.0.0/16", "fd00::/8"), single
// addresses ("192.168.1.10", "::1") and host names, each one a URL may
// give (callevents.ValidHostName). A host name matches the URL's host
// exactly, ignoring case and a trailing dot; "*.example.com" matches every
// name under example.com (at any depth) but not example.com itself. An
// empty list gives DefaultPolicy().
//
// An allowed host name admits whatever address it resolves to; an allowed
// CIDR admits its addresses whatever the name.
func ParseAllowTargets(list string) (*OutboundPolicy, error) {
	p := &OutboundPolicy{}
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.Contains(item, "/") {
			prefix, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("allow-targets: %q is not a valid CIDR such as 10.0.0.0/8", item)
			}
			p.prefixes = append(p.prefixes, prefix.Masked())
			continue
		}
		if addr, err := netip.ParseAddr(strings.Trim(item, "[]")); err == nil {
			addr = addr.Unmap().WithZone("")
			p.prefixes = append(p.prefixes, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		name := normalizeHost(item)
		wildcard := strings.HasPrefix(name, "*.")
		if wildcard {
			name = name[2:]
		}
		if !callevents.ValidHostName(name) {
			return nil, fmt.Errorf("allow-targets: %q is neither a CIDR, an address nor a host name (a leading *. is the only wildcard)", item)
		}
		if wildcard {
			p.suffixes = append(p.suffixes, "."+name)
		} else {
			if p.hosts == nil {
				p.hosts = make(map[string]bool)
			}
			p.hosts[name] = true
		}
	}
	return p, nil
}

// String returns the allowlist in ParseAllowTargets form.
func (p *OutboundPolicy) String() string {
	var parts []string
	for _, prefix := range p.prefixes {
		parts = append(parts, prefix.String())
	}
	for _, h := range slices.Sorted(maps.Keys(p.hosts)) {
		parts = append(parts, h)
	}
	for _, s := range p.suffixes {
		parts = append(parts, "*"+s)
	}
	return strings.Join(parts, ",")
}

func normalizeHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// hostAllowed reports whether the allowlist names host.
func (p *OutboundPolicy) hostAllowed(host string) bool {
	host = normalizeHost(host)
	if p.hosts[host] {
		return true
	}
	for _, s := range p.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

func (p *OutboundPolicy) resolver() Resolver {
	if p.Resolver == nil {
		return net.DefaultResolver
	}
	return p.Resolver
}

// checkAddr returns a *targetError when addr is special and no allowed CIDR
// contains it, else nil.
func (p *OutboundPolicy) checkAddr(host string, addr netip.Addr) error {
	addr = addr.WithZone("")
	reason := forbiddenReason(addr)
	if reason == "" {
		return nil
	}
	for _, prefix := range p.prefixes {
		if prefix.Contains(addr) || prefix.Contains(addr.Unmap()) {
			return nil
		}
	}
	return &targetError{Host: host, Addr: addr, Reason: reason}
}

// targetError is a target refused by the policy (error class "policy").
type targetError struct {
	Host   string // as in the URL; may be the address itself
	Addr   netip.Addr
	Reason string // e.g. "a loopback address"
}

func (e *targetError) Error() string {
	if e.Host == "" || e.Host == e.Addr.String() {
		return fmt.Sprintf("target %s is %s, not allowed by the outbound policy", e.Addr, e.Reason)
	}
	return fmt.Sprintf("target %s resolves to %s, %s, not allowed by the outbound policy", e.Host, e.Addr, e.Reason)
}

var special = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (\"this network\") address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (CGNAT) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (cloud metadata lives there)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "a reserved (IETF protocol assignment) address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a reserved (benchmarking) address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the broadcast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("fc00::/7"), "a private (unique local) address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "a private (site-local) address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	{netip.MustParsePrefix("100::/64"), "a reserved (discard) address"},
}

// IPv6 ranges whose addresses reach an IPv4 address (see forbiddenReason).
var (
	nat64          = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052 well-known prefix
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48")  // RFC 8215 local-use
	nat64Local96   = netip.MustParsePrefix("64:ff9b:1::/96")  // ... used whole, as a /96
	ipv4Translated = netip.MustParsePrefix("::ffff:0:0:0/96") // SIIT, RFC 6052 §2.1 / RFC 7915
	sixToFour      = netip.MustParsePrefix("2002::/16")       // RFC 3056
	teredo         = netip.MustParsePrefix("2001::/32")       // RFC 4380
	ipv4Compatible = netip.MustParsePrefix("::/96")           // RFC 4291 §2.5.5.1, deprecated
)

// forbiddenReason says why addr may not be dialled, or "" when it may.
//
// An IPv6 address that carries an IPv4 address reaches that address (a
// translator or tunnel delivers it), so it is judged by the IPv4 address:
// IPv4-mapped ::ffff:a.b.c.d, IPv4-translated ::ffff:0:a.b.c.d, NAT64
// 64:ff9b::a.b.c.d and 64:ff9b:1::a.b.c.d (the last 32 bits: RFC 6052's
// /96 format), and 6to4 2002:AABB:CCDD::/48 (bits 16–47). Two forms are
// refused whatever they carry: the rest of the local-use NAT64 prefix
// 64:ff9b:1::/48, whose IPv4 address sits where the operator's translator
// says (RFC 6052 has /48, /56 and /64 formats too), and Teredo 2001::/32,
// which tunnels to a client behind a NAT. So are the deprecated
// IPv4-compatible addresses ::a.b.c.d. An operator whose own NAT64 uses
// another prefix admits it, or not, with the allowlist.
func forbiddenReason(addr netip.Addr) string {
	if !addr.IsValid() {
		return "not a valid address"
	}
	if addr.Is4In6() {
		return embeddedReason("an IPv4-mapped address", addr.Unmap())
	}
	if addr.Is6() {
		b := addr.As16()
		last32 := netip.AddrFrom4([4]byte(b[12:16]))
		switch {
		case ipv4Translated.Contains(addr):
			return embeddedReason("an IPv4-translated (SIIT) address", last32)
		case nat64.Contains(addr), nat64Local96.Contains(addr):
			return embeddedReason("a NAT64 address", last32)
		case nat64Local.Contains(addr):
			return "a local-use NAT64 address (RFC 8215) whose IPv4 address depends on the translator"
		case sixToFour.Contains(addr):
			return embeddedReason("a 6to4 address", netip.AddrFrom4([4]byte(b[2:6])))
		case teredo.Contains(addr):
			return "a Teredo address (a tunnel to a host behind a NAT)"
		case ipv4Compatible.Contains(addr) && addr != netip.IPv6Unspecified() && addr != netip.IPv6Loopback():
			return "a deprecated IPv4-compatible address"
		}
	}
	for _, s := range special {
		if s.prefix.Contains(addr) {
			return s.reason
		}
	}
	return ""
}

// embeddedReason is the reason of an IPv6 address of the form that carries
// v4: v4's, or "" when v4 may be dialled.
func embeddedReason(form string, v4 netip.Addr) string {
	reason := forbiddenReason(v4)
	if reason == "" {
		return ""
	}
	return fmt.Sprintf("%s of %s, %s", form, v4, reason)
}

// checkURLTimeout bounds the DNS lookup of CheckURL.
const checkURLTimeout = 5 * time.Second

// CheckURL applies the policy to a Call Event's URL at Add and Edit. It
// returns code 309 when the host is a special address, or a name that
// resolves to one, and the allowlist admits neither the name nor the
// address; 303 when rawURL has no host. A name that does not resolve (yet)
// is accepted: the dialer checks it again whenever a request is sent.
func (p *OutboundPolicy) CheckURL(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return callevents.Errorf(callevents.CodeURLInvalid, "URL is invalid: it has no host.")
	}
	host := u.Hostname()
	if p.hostAllowed(host) {
		return nil
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		return notAllowed(p.checkAddr(host, addr))
	}
	ctx, cancel := context.WithTimeout(ctx, checkURLTimeout)
	defer cancel()
	addrs, err := p.resolver().LookupIPAddr(ctx, host)
	if err != nil {
		return nil // checked when dialled
	}
	for _, a := range addrs {
		addr, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		if err := p.checkAddr(host, addr.Unmap()); err != nil {
			return notAllowed(err)
		}
	}
	return nil
}

func notAllowed(err error) error {
	var te *targetError
	if !errors.As(err, &te) {
		return err
	}
	var what string
	if te.Host == te.Addr.String() {
		what = fmt.Sprintf("%s is %s", te.Addr, te.Reason)
	} else {
		what = fmt.Sprintf("%s resolves to %s, %s", te.Host, te.Addr, te.Reason)
	}
	return callevents.Errorf(callevents.CodeTargetNotAllowed,
		"URL target not allowed: %s. The operator may admit it with --allow-targets.", what)
}

// dialAllowedKey marks a dial whose host name the allowlist admits.
type dialAllowedKey struct{}

// control runs after the socket is made and before it connects: it sees
// the address actually dialled, whatever resolved it.
func (p *OutboundPolicy) control(ctx context.Context, network, address string, _ syscall.RawConn) error {
	if allowed, _ := ctx.Value(dialAllowedKey{}).(bool); allowed {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &targetError{Reason: "not a valid address"}
	}
	host, _ := ctx.Value(dialHostKey{}).(string)
	return p.checkAddr(host, ap.Addr())
}

// dialHostKey carries the host name being dialled to control, for messages.
type dialHostKey struct{}

// dialer returns a DialContext for an http.Transport that resolves names
// with p.Resolver and connects only to addresses the policy admits (or to
// any address of an allowlisted host name). Several addresses are tried in
// turn, each with a share of the time left; one refused by the policy is
// skipped, and the policy error is returned only when every address was
// refused.
func (p *OutboundPolicy) dialer(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, ControlContext: p.control}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ctx = context.WithValue(ctx, dialHostKey{}, host)
		if p.hostAllowed(host) {
			ctx = context.WithValue(ctx, dialAllowedKey{}, true)
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return d.DialContext(ctx, network, addr)
		}
		ipAddrs, err := p.resolver().LookupIPAddr(ctx, host)
		if err != nil {
			var dnsErr *net.DNSError
			if !errors.As(err, &dnsErr) {
				err = &net.DNSError{Err: err.Error(), Name: host}
			}
			return nil, err
		}
		var addrs []netip.Addr
		for _, a := range ipAddrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if network == "tcp4" && !ip.Is4() || network == "tcp6" && !ip.Is6() {
				continue
			}
			addrs = append(addrs, ip.WithZone(a.Zone))
		}
		if len(addrs) == 0 {
			return nil, &net.DNSError{Err: "no suitable address", Name: host, IsNotFound: true}
		}
		var policyErr, otherErr error
		for i, ip := range addrs {
			dctx := ctx
			if deadline, ok := ctx.Deadline(); ok && len(addrs)-i > 1 {
				// Like net.Dialer: each address gets a fair share of
				// the time left, but at least 2 s.
				share := time.Until(deadline) / time.Duration(len(addrs)-i)
				if share < 2*time.Second {
					share = min(2*time.Second, time.Until(deadline))
				}
				var cancel context.CancelFunc
				dctx, cancel = context.WithTimeout(ctx, share)
				defer cancel()
			}
			conn, err := d.DialContext(dctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return conn, nil
			}
			var te *targetError
			if errors.As(err, &te) {
				if policyErr == nil {
					policyErr = err
				}
			} else if otherErr == nil {
				otherErr = err
			}
			if ctx.Err() != nil {
				break
			}
		}
		if otherErr != nil {
			return nil, otherErr
		}
		return nil, policyErr
	}
}
