package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"

	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// Defaults for Options.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 64 << 10
	DefaultUserAgent        = "visgate-deployment-orchestrator-webhook/1"
)

// Errors carried in Result.Err; match them with errors.Is.
var (
	// ErrInvalidURL: the URL fails ValidateURL. Not retryable.
	ErrInvalidURL = errors.New("invalid webhook URL")
	// ErrRefused: the destination resolved to, or is, an address that is not
	// public (loopback, private, link-local, metadata, CGNAT...). Checked when
	// dialling, so DNS names that resolve there are caught too. Not retryable.
	ErrRefused = errors.New("webhook destination refused: not a public address")
	// ErrNotLocal: a sender with Options.PrivateOnly was given a destination
	// that is not a loopback or private address, or a name other than
	// localhost (which it does not resolve). Not retryable.
	ErrNotLocal = errors.New("webhook destination refused: not a loopback or private address")
	// ErrRedirect: the receiver answered 3xx. Redirects are never followed,
	// since a public URL could otherwise hand the request to a private one.
	// Not retryable: the same URL would redirect again; the owner must fix it.
	ErrRedirect = errors.New("webhook receiver answered with a redirect, which is not followed")
	// ErrStatus: the receiver answered with a non-2xx, non-3xx status.
	ErrStatus = errors.New("webhook receiver answered with a failure status")
	// ErrTransport: the request did not complete (DNS, connect, TLS, timeout,
	// reset). Retryable.
	ErrTransport = errors.New("webhook request failed")
)

// Options configure a Sender. The zero value is a production sender: https
// only, public destinations only.
type Options struct {
	// AllowPrivate permits http URLs and non-public destinations (loopback,
	// private networks, localhost): the local demo, never production.
	AllowPrivate bool
	// PrivateOnly permits only loopback and private destinations (http
	// too), named by address or as localhost, which is not looked up: the
	// simulators' default, so that an offline run sends nothing off the
	// machine and its private networks. It implies AllowPrivate.
	PrivateOnly bool
	// Timeout bounds one whole attempt: connect, TLS, request, response
	// headers and the capped body read. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes caps how much of the response body is read (and then
	// discarded). Zero means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// UserAgent is sent on every request. Empty means DefaultUserAgent.
	UserAgent string
	// LookupNetIP resolves a host name to addresses; nil means
	// net.DefaultResolver.LookupNetIP. Tests inject one to avoid real DNS.
	// Whatever it returns is still checked when dialled.
	LookupNetIP func(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Result is the outcome of one delivery attempt.
type Result struct {
	// StatusCode is the receiver's HTTP status, 0 when no response came back.
	StatusCode int
	// Err says why the attempt failed; nil when Delivered.
	Err error
	// Delivered is true for a 2xx answer.
	Delivered bool
	// Retryable is true when trying again later can help: transport errors
	// and timeouts, 408, 429 and 5xx. Refused destinations, invalid URLs,
	// redirects and other 4xx are final.
	Retryable bool
	// RetryAfter is the receiver's Retry-After (httpx.RetryAfter: seconds or
	// an HTTP date, capped at httpx.MaxRetryAfter); zero when absent.
	RetryAfter time.Duration
}

// Sender delivers signed webhooks. It is safe for concurrent use and keeps
// connections alive between deliveries; make one and share it.
type Sender struct {
	allowPrivate bool
	privateOnly  bool
	maxResponse  int64
	userAgent    string
	client       *http.Client
}

// NewSender returns a Sender configured by opts.
func NewSender(opts Options) *Sender {
	return newSender(opts, testHooks{})
}

// testHooks let this package's tests reach a loopback TLS server as if it were
// public. Production code never sets them.
type testHooks struct {
	allowed []netip.Prefix // exempt from the public-only check
	rootCAs *x509.CertPool
}

func newSender(opts Options, hooks testHooks) *Sender {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent
	}
	if opts.LookupNetIP == nil {
		opts.LookupNetIP = net.DefaultResolver.LookupNetIP
	}
	if opts.PrivateOnly {
		opts.AllowPrivate = true
	}
	d := &dialer{
		lookup:      opts.LookupNetIP,
		net:         &net.Dialer{Timeout: opts.Timeout},
		privateOnly: opts.PrivateOnly,
	}
	switch {
	case opts.PrivateOnly:
		// Control runs before connect(2): a public address never sees a
		// packet, whatever led the dialer to it.
		d.net.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !localAddr(ap.Addr()) {
				return ErrNotLocal
			}
			return nil
		}
	case !opts.AllowPrivate:
		var v4, v6 []netip.Prefix
		for _, p := range hooks.allowed {
			if p.Addr().Is4() {
				v4 = append(v4, p)
			} else {
				v6 = append(v6, p)
			}
		}
		g := ssrf.New(ssrf.WithAnyPort(), ssrf.WithAllowedV4Prefixes(v4...), ssrf.WithAllowedV6Prefixes(v6...))
		// Control runs after the socket is created and before connect(2):
		// a refused address never sees a packet.
		d.net.Control = g.Safe
	}
	transport := &http.Transport{
		// No proxy, ever: a proxy would dial on our behalf, past the check.
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: hooks.rootCAs},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    opts.Timeout,
		ResponseHeaderTimeout:  opts.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		// Count the bytes that arrive, not what they inflate to.
		DisableCompression: true,
	}
	return &Sender{
		allowPrivate: opts.AllowPrivate,
		privateOnly:  opts.PrivateOnly,
		maxResponse:  opts.MaxResponseBytes,
		userAgent:    opts.UserAgent,
		client: &http.Client{
			Transport: transport,
			Timeout:   opts.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// Send POSTs body to rawURL once, signed with whsec, with the headers
// webhook-id (msgID: keep it the same across retries of one event so the
// receiver can deduplicate), webhook-timestamp (ts), webhook-signature and
// Content-Type: application/json. Retrying is the caller's business, guided by
// Result.Retryable, Result.RetryAfter and Schedule.
//
// The URL is checked with ValidateURL first; the addresses it resolves to are
// checked again when dialled (unless AllowPrivate). Redirects are not
// followed. Result.Err never contains the URL's path or query, which may carry
// a token.
func (s *Sender) Send(ctx context.Context, rawURL string, whsec secret.Secret, msgID string, ts time.Time, body []byte) Result {
	if s.privateOnly {
		if err := ValidatePrivateURL(rawURL); err != nil {
			return Result{Err: fmt.Errorf("%w: %w", ErrNotLocal, err)}
		}
	} else if err := ValidateURL(rawURL, s.allowPrivate); err != nil {
		return Result{Err: fmt.Errorf("%w: %w", ErrInvalidURL, err)}
	}
	sig, err := Sign(whsec, msgID, ts, body)
	if err != nil {
		return Result{Err: fmt.Errorf("sign webhook: %w", err)}
	}
	u, err := url.Parse(rawURL)
	if err != nil { // ValidateURL parsed it already
		return Result{Err: fmt.Errorf("%w: %w", ErrInvalidURL, err)}
	}
	host := u.Host
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return Result{Err: fmt.Errorf("%w: build request for %s: %w", ErrInvalidURL, host, unwrapURLError(err))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.userAgent)
	req.Header.Set(HeaderID, msgID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)

	resp, err := s.client.Do(req)
	if err != nil {
		err = unwrapURLError(err)
		if errors.Is(err, ErrNotLocal) {
			return Result{Err: fmt.Errorf("%w: %s", ErrNotLocal, host)}
		}
		if isRefusal(err) {
			return Result{Err: fmt.Errorf("%w: %s: %w", ErrRefused, host, err)}
		}
		return Result{Err: fmt.Errorf("%w: POST %s: %w", ErrTransport, host, err), Retryable: true}
	}
	defer resp.Body.Close()
	// Read a bounded amount so a small answer lets the connection be reused;
	// closing the body drops the connection when more is left.
	_, _ = drain(resp.Body, s.maxResponse)
	return classify(resp, host, time.Now())
}

// classify turns a response into a Result.
func classify(resp *http.Response, host string, now time.Time) Result {
	r := Result{StatusCode: resp.StatusCode}
	code := resp.StatusCode
	switch {
	case code >= 200 && code <= 299:
		r.Delivered = true
		return r
	case code >= 300 && code <= 399:
		r.Err = fmt.Errorf("%w: POST %s answered %d", ErrRedirect, host, code)
		return r
	}
	r.Err = fmt.Errorf("%w: POST %s answered %d", ErrStatus, host, code)
	r.Retryable = code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
	if r.Retryable {
		r.RetryAfter = httpx.RetryAfter(resp.Header, now)
	}
	return r
}

// drain reads and discards at most limit bytes of r, returning how many it read.
func drain(r io.Reader, limit int64) (int64, error) {
	return io.Copy(io.Discard, io.LimitReader(r, limit))
}

// unwrapURLError drops the *url.Error layer, whose message repeats the full URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func isRefusal(err error) bool {
	return errors.Is(err, ErrRefused) ||
		errors.Is(err, ssrf.ErrProhibitedIP) ||
		errors.Is(err, ssrf.ErrProhibitedNetwork) ||
		errors.Is(err, ssrf.ErrProhibitedPort) ||
		errors.Is(err, ssrf.ErrInvalidHostPort)
}

// dialer resolves names itself (through the injectable lookup) and dials each
// address with a net.Dialer whose Control refuses non-public addresses.
type dialer struct {
	lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)
	net    *net.Dialer
	// privateOnly: no lookup at all; localhost is the loopback addresses.
	privateOnly bool
}

// DialContext implements http.Transport.DialContext.
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port: %w", address, err)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if d.privateOnly {
		if !localhostName(host) {
			return nil, fmt.Errorf("dial %s: %w", host, ErrNotLocal)
		}
		addrs = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
	} else {
		addrs, err = d.lookup(ctx, "ip", host)
		if err != nil {
			// A *net.DNSError names the resolver's own address: an internal
			// detail the webhook's owner sees in last_error. Keep the kind only.
			var dnsErr *net.DNSError
			if errors.As(err, &dnsErr) {
				switch {
				case dnsErr.IsNotFound:
					return nil, fmt.Errorf("resolve %s: no such host", host)
				case dnsErr.IsTimeout:
					return nil, fmt.Errorf("resolve %s: DNS timeout", host)
				default:
					return nil, fmt.Errorf("resolve %s: DNS lookup failed", host)
				}
			}
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("resolve %s: no addresses", host)
		}
		// IPv4 first: many egress paths (Cloud Run among them) route no IPv6.
		addrs = slices.Clone(addrs)
		slices.SortStableFunc(addrs, func(a, b netip.Addr) int {
			return boolRank(b.Unmap().Is4()) - boolRank(a.Unmap().Is4())
		})
	}
	var errs []error
	for _, a := range addrs {
		target := netip.AddrPortFrom(a.Unmap(), uint16(port)).String()
		conn, err := d.net.DialContext(ctx, network, target)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, dialErrors(errs)
}

// dialErrors joins the errors of each address tried on one line.
type dialErrors []error

func (e dialErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e dialErrors) Unwrap() []error { return e }

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}
