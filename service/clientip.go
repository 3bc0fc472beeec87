package service

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// callerKey is the limiter key of r's caller: its IP, or its /64 for IPv6
// (one host commonly holds a whole /64). Behind a trusted proxy it is the
// last X-Forwarded-For address that is not a trusted proxy.
func (g *guards) callerKey(r *http.Request) string {
	addr, ok := peerAddr(r)
	if !ok {
		return peerHost(r)
	}
	if g.proxies.contains(addr) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a forged or broken entry: stop at the last good one
			}
			addr = hop.Unmap()
			if !g.proxies.contains(addr) {
				break
			}
		}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// trustedProxies are Limits.TrustedProxies: the one check before any
// forwarding header (X-Forwarded-For here, Forwarded, X-Forwarded-Host
// and X-Forwarded-Proto in Server.origin) is believed.
type trustedProxies []netip.Prefix

func (t trustedProxies) contains(addr netip.Addr) bool {
	for _, p := range t {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// peerTrusted reports whether r's TCP peer is a trusted proxy, so that
// the forwarding headers it sent may be believed.
func (t trustedProxies) peerTrusted(r *http.Request) bool {
	addr, ok := peerAddr(r)
	return ok && t.contains(addr)
}

// peerAddr is the address of r's TCP peer; false when RemoteAddr holds
// none (a unix socket, a hand-made request).
func peerAddr(r *http.Request) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(peerHost(r))
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// peerHost is r.RemoteAddr without its port.
func peerHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
