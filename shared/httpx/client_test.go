package httpx

import (
	"net/http/httptest"
	"testing"
)

func TestClientAddr(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remote string
		xff    []string
		hops   int
		want   string
	}{
		{"local ignores the header", "127.0.0.1:5000", []string{"203.0.113.9"}, -1, "127.0.0.1"},
		{"cloud run: the last entry", "169.254.1.1:80", []string{"203.0.113.9"}, 0, "203.0.113.9"},
		{"a spoofed left entry is ignored", "169.254.1.1:80", []string{"1.2.3.4, 203.0.113.9"}, 0, "203.0.113.9"},
		{"spoofed over two header lines", "169.254.1.1:80", []string{"1.2.3.4", "203.0.113.9"}, 0, "203.0.113.9"},
		{"behind the load balancer", "169.254.1.1:80", []string{"1.2.3.4, 203.0.113.9, 34.120.0.1"}, 1, "203.0.113.9"},
		{"header too short: the connection", "169.254.1.1:80", []string{"34.120.0.1"}, 1, "169.254.1.1"},
		{"no header: the connection", "198.51.100.7:443", nil, 0, "198.51.100.7"},
		{"garbage entry: the connection", "198.51.100.7:443", []string{"1.2.3.4, not-an-ip"}, 0, "198.51.100.7"},
		{"ipv6 counts per /64", "[::1]:80", []string{"2001:db8:1:2:aaaa::1"}, 0, "2001:db8:1:2::/64"},
		{"ipv4-mapped", "[::ffff:192.0.2.1]:80", nil, -1, "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientAddr(r, tc.hops); got != tc.want {
				t.Errorf("ClientAddr = %q, want %q", got, tc.want)
			}
		})
	}
}
