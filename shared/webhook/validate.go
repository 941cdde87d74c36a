package webhook

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"code.dny.dev/ssrf"
)

// MaxURLLength is the longest webhook URL ValidateURL accepts.
const MaxURLLength = 2048

// publicOnly decides which addresses count as public. Its defaults deny every
// IANA special-purpose range: loopback, RFC 1918, link-local (and with it
// 169.254.169.254, the metadata address), CGNAT 100.64/10, documentation,
// benchmarking, multicast and reserved ranges, and all IPv6 outside 2000::/3
// (::1, fe80::/10, fc00::/7, IPv4-mapped addresses). A Guardian is immutable
// and safe for concurrent use.
var publicOnly = ssrf.New(ssrf.WithAnyPort())

// metadataHosts are names that reach a cloud metadata server.
var metadataHosts = map[string]bool{
	"metadata.google.internal":   true,
	"metadata":                   true,
	"metadata.goog":              true,
	"instance-data":              true, // AWS
	"instance-data.ec2.internal": true,
}

// ValidateURL checks a webhook URL given at creation, so that a bad one is a
// 422 instead of a failed delivery much later. The URL must be absolute, at
// most MaxURLLength long, use https (http too when allowPrivate), name a host,
// and carry no user information. Unless allowPrivate: literal IP addresses
// must be public, and names of the local machine ("localhost", "*.localhost")
// or of a metadata server ("metadata.google.internal") and single-label names
// are refused. Names are not resolved here: Sender checks the addresses they
// resolve to when it dials. The error says what is wrong and never repeats the
// URL, which may carry a token.
func ValidateURL(raw string, allowPrivate bool) error {
	if raw == "" {
		return errors.New("webhook URL is empty")
	}
	if len(raw) > MaxURLLength {
		return fmt.Errorf("webhook URL is %d characters long; the limit is %d", len(raw), MaxURLLength)
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("webhook URL contains a space or control character at position %d", i+1)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL itself
		}
		return fmt.Errorf("webhook URL is not a valid URL: %w", err)
	}
	if !u.IsAbs() || u.Opaque != "" {
		return errors.New("webhook URL must be absolute, like https://example.com/webhook")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !allowPrivate {
			return errors.New("webhook URL must use https")
		}
	default:
		return fmt.Errorf("webhook URL scheme %q is not supported; use https", u.Scheme)
	}
	if u.User != nil {
		return errors.New("webhook URL must not contain user information (user:password@)")
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("webhook URL has no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("webhook URL port %q is not between 1 and 65535", p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return errors.New("webhook URL has an empty port")
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.Zone() != "" {
			return errors.New("webhook URL host must not carry an IPv6 zone")
		}
		if !allowPrivate {
			if err := publicOnly.SafeAddr(addr); err != nil {
				return fmt.Errorf("webhook URL host %s is a private, loopback, link-local or otherwise non-public address", addr)
			}
		}
		return nil
	}
	return validateHostName(host, allowPrivate)
}

func validateHostName(host string, allowPrivate bool) error {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if len(name) > 253 {
		return fmt.Errorf("webhook URL host name is %d characters long; at most 253", len(name))
	}
	labels := strings.Split(name, ".")
	for _, label := range labels {
		if label == "" {
			return errors.New("webhook URL host name has an empty label")
		}
		if len(label) > 63 {
			return errors.New("webhook URL host name has a label longer than 63 characters")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("webhook URL host %q has characters not allowed in a DNS name; write international names in their punycode (xn--) form", host)
			}
		}
	}
	// No top-level domain is numeric: a host like 2130706433 or 0x7f.1 is an
	// IP address in a form some resolvers accept.
	if last := labels[len(labels)-1]; isNumericish(last) {
		return fmt.Errorf("webhook URL host %q looks like an IP address in a non-standard form; write the address in dotted or bracketed form", host)
	}
	if allowPrivate {
		return nil
	}
	switch {
	case name == "localhost" || strings.HasSuffix(name, ".localhost"):
		return fmt.Errorf("webhook URL host %q names the local machine", host)
	case metadataHosts[name]:
		return fmt.Errorf("webhook URL host %q names a cloud metadata server", host)
	case len(labels) == 1:
		return fmt.Errorf("webhook URL host %q is not a fully qualified domain name", host)
	}
	return nil
}

// isNumericish reports whether a label is all digits, or a 0x hexadecimal number.
func isNumericish(label string) bool {
	s := label
	if strings.HasPrefix(s, "0x") {
		s = s[2:]
		if s == "" {
			return true
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ValidatePrivateURL checks a webhook URL for a sender that reaches only
// this machine and private networks (Options.PrivateOnly, the simulators'
// default): ValidateURL's checks with http and private addresses allowed,
// and a host that is a loopback or private address (127.0.0.0/8, ::1, 10/8,
// 172.16/12, 192.168/16, fc00::/7) or "localhost" ("*.localhost"). Any
// other name is refused without being resolved: a lookup would itself leave
// the machine. Link-local addresses (and with them the metadata server,
// 169.254.169.254) are refused too.
func ValidatePrivateURL(raw string) error {
	if err := ValidateURL(raw, true); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil { // ValidateURL parsed it already
		return errors.New("webhook URL is not a valid URL")
	}
	host := u.Hostname()
	if addr, err := netip.ParseAddr(host); err == nil {
		if !localAddr(addr) {
			return fmt.Errorf("webhook URL host %s is not a loopback or private address", addr)
		}
		return nil
	}
	if !localhostName(host) {
		return fmt.Errorf("webhook URL host %q is a name other than localhost: only loopback and private addresses are allowed, and names are not resolved", host)
	}
	return nil
}

// localAddr reports whether a is a loopback or private address.
func localAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate()
}

// localhostName reports whether host names this machine ("localhost",
// "*.localhost": RFC 6761 keeps them on the loopback interface).
func localhostName(host string) bool {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	return name == "localhost" || strings.HasSuffix(name, ".localhost")
}
