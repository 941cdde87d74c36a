package httpx

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr returns the address a request came from, as throttling counts
// it: an IPv4 address, or the /64 an IPv6 address belongs to (one host
// holds a whole /64).
//
// forwardedHops < 0 trusts nothing but the connection (RemoteAddr): the
// local server, which clients reach directly. forwardedHops >= 0 reads
// X-Forwarded-For, which Google's front end appends the client's address to:
// the entry forwardedHops places from the right is the client (0: the last,
// as Cloud Run sets it when called directly; 1: behind the external
// Application Load Balancer, which appends its own address after the
// client's). Entries further left are whatever the client sent and are never
// trusted. A header too short, or an entry that is not an address, falls
// back to RemoteAddr.
func ClientAddr(r *http.Request, forwardedHops int) string {
	if forwardedHops >= 0 {
		var entries []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			for e := range strings.SplitSeq(v, ",") {
				entries = append(entries, strings.TrimSpace(e))
			}
		}
		if i := len(entries) - 1 - forwardedHops; i >= 0 {
			if a, err := netip.ParseAddr(entries[i]); err == nil {
				return addrKey(a)
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return addrKey(a)
	}
	return host
}

func addrKey(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
