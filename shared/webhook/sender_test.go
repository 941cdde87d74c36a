package webhook

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

func testSecret(t *testing.T) secret.Secret {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return secret.New(SecretPrefix + base64.StdEncoding.EncodeToString(b))
}

// watchedListener is a loopback TCP listener that records every connection
// it accepts, so a test can prove that nothing reached it.
type watchedListener struct {
	ln       net.Listener
	accepted chan string // remote address of each accepted connection
}

func newWatchedListener(t *testing.T) *watchedListener {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	w := &watchedListener{ln: ln, accepted: make(chan string, 64)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			w.accepted <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return w
}

func (w *watchedListener) port() uint16 {
	return uint16(w.ln.Addr().(*net.TCPAddr).Port)
}

// othersBeforeSentinel connects once itself and waits for that connection to
// be accepted. Accepts are in arrival order, so every connection that reached
// the listener earlier has been accepted by then: it returns their count.
func (w *watchedListener) othersBeforeSentinel(t *testing.T) int {
	t.Helper()
	c, err := net.Dial("tcp4", w.ln.Addr().String())
	if err != nil {
		t.Fatalf("sentinel dial: %v", err)
	}
	defer c.Close()
	sentinel := c.LocalAddr().String()
	others := 0
	timeout := time.After(10 * time.Second)
	for {
		select {
		case remote := <-w.accepted:
			if remote == sentinel {
				return others
			}
			others++
		case <-timeout:
			t.Fatal("the sentinel connection was never accepted")
		}
	}
}

// fakeDNS answers from a fixed table and fails for every other name, so no
// test depends on real DNS.
func fakeDNS(table map[string][]netip.Addr) func(context.Context, string, string) ([]netip.Addr, error) {
	return func(_ context.Context, _, host string) ([]netip.Addr, error) {
		if a, ok := table[strings.ToLower(host)]; ok {
			return a, nil
		}
		return nil, &net.DNSError{Err: "no such host (fake resolver)", Name: host, IsNotFound: true}
	}
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func TestSendRefusesNonPublicDestinations(t *testing.T) {
	w := newWatchedListener(t)
	p := w.port()
	dns := fakeDNS(map[string][]netip.Addr{
		"loopback.example.com":  addrs("127.0.0.1"),
		"loopback6.example.com": addrs("::1"),
		"mapped.example.com":    addrs("::ffff:127.0.0.1"),
		"private.example.com":   addrs("10.0.0.1"),
		"metadata.example.com":  addrs("169.254.169.254"),
		"cgnat.example.com":     addrs("100.64.0.1"),
		"mixed.example.com":     addrs("127.0.0.1", "192.168.0.1"),
	})
	s := NewSender(Options{Timeout: 2 * time.Second, LookupNetIP: dns})
	whsec := testSecret(t)

	tests := []struct {
		url  string
		want error
	}{
		// Refused by ValidateURL before any lookup or dial.
		{fmt.Sprintf("https://127.0.0.1:%d/hook", p), ErrInvalidURL},
		{fmt.Sprintf("https://[::1]:%d/hook", p), ErrInvalidURL},
		{"https://10.0.0.1/hook", ErrInvalidURL},
		{"https://169.254.169.254/computeMetadata/v1/", ErrInvalidURL},
		{"https://metadata.google.internal/computeMetadata/v1/", ErrInvalidURL},
		{fmt.Sprintf("https://localhost:%d/hook", p), ErrInvalidURL},
		{fmt.Sprintf("http://loopback.example.com:%d/hook", p), ErrInvalidURL},
		// Names that pass ValidateURL and resolve to non-public addresses:
		// refused by the dialer's Control, before connect.
		{fmt.Sprintf("https://loopback.example.com:%d/hook", p), ErrRefused},
		{fmt.Sprintf("https://loopback6.example.com:%d/hook", p), ErrRefused},
		{fmt.Sprintf("https://mapped.example.com:%d/hook", p), ErrRefused},
		{"https://private.example.com/hook", ErrRefused},
		{"https://metadata.example.com/computeMetadata/v1/", ErrRefused},
		{"https://cgnat.example.com/hook", ErrRefused},
		{fmt.Sprintf("https://mixed.example.com:%d/hook", p), ErrRefused},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			r := s.Send(t.Context(), tt.url, whsec, "msg_1", time.Now(), []byte(`{}`))
			if !errors.Is(r.Err, tt.want) {
				t.Fatalf("Send: err %v, want %v", r.Err, tt.want)
			}
			if r.Delivered || r.Retryable || r.StatusCode != 0 {
				t.Errorf("Send: %+v, want not delivered, not retryable, no status", r)
			}
			// The owner's sentence says why, never what the name resolved to.
			sum := r.Summary()
			if sum == "" || strings.ContainsAny(sum, "0123456789:[") || strings.Contains(sum, "dial") {
				t.Errorf("Summary() = %q: empty or carries an address", sum)
			}
		})
	}
	if n := w.othersBeforeSentinel(t); n != 0 {
		t.Errorf("%d connection(s) reached the watched loopback listener", n)
	}
}

// TestDialerRefusesLiteralAddresses checks the dial-time guard on its own,
// without ValidateURL in front of it.
func TestDialerRefusesLiteralAddresses(t *testing.T) {
	w := newWatchedListener(t)
	p := w.port()
	s := NewSender(Options{Timeout: 2 * time.Second, LookupNetIP: fakeDNS(nil)})
	d := s.client.Transport.(*http.Transport).DialContext
	for _, addr := range []string{
		fmt.Sprintf("127.0.0.1:%d", p),
		fmt.Sprintf("[::1]:%d", p),
		fmt.Sprintf("[::ffff:127.0.0.1]:%d", p),
		fmt.Sprintf("0.0.0.0:%d", p),
		"10.0.0.1:443",
		"172.16.0.1:443",
		"192.168.1.1:80",
		"169.254.169.254:80",
		"100.64.0.1:443",
		"[fe80::1]:443",
		"[fd00::1]:443",
	} {
		t.Run(addr, func(t *testing.T) {
			c, err := d(t.Context(), "tcp", addr)
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded")
			}
			if !isRefusal(err) {
				t.Errorf("dial error %v is not a refusal", err)
			}
		})
	}
	if n := w.othersBeforeSentinel(t); n != 0 {
		t.Errorf("%d connection(s) reached the watched loopback listener", n)
	}
}

// TestSendDoesNotFollowRedirects makes a loopback TLS server pass for a
// public one (its address is exempted from the guard, its name comes from the
// fake resolver) and has it redirect to the watched listener, whose address is
// exempted too: nothing but the no-redirect policy stands in the way, and no
// connection may arrive.
func TestSendDoesNotFollowRedirects(t *testing.T) {
	w := newWatchedListener(t)
	target := fmt.Sprintf("http://127.0.0.1:%d/internal", w.port())

	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				http.Redirect(rw, r, target, code)
			}))
			defer srv.Close()
			s := newSender(Options{
				Timeout:     5 * time.Second,
				LookupNetIP: fakeDNS(map[string][]netip.Addr{"hooks.example.com": addrs("127.0.0.1")}),
			}, testHooks{allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, rootCAs: certPool(srv)})
			url := fmt.Sprintf("https://hooks.example.com:%d/hook", srv.Listener.Addr().(*net.TCPAddr).Port)

			r := s.Send(t.Context(), url, testSecret(t), "msg_1", time.Now(), []byte(`{}`))
			if !errors.Is(r.Err, ErrRedirect) || r.StatusCode != code || r.Delivered || r.Retryable {
				t.Errorf("Send: %+v, want status %d, ErrRedirect, not delivered, not retryable", r, code)
			}
		})
	}
	if n := w.othersBeforeSentinel(t); n != 0 {
		t.Errorf("%d connection(s) followed a redirect to the watched listener", n)
	}
}

func certPool(srv *httptest.Server) *x509.CertPool {
	return srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
}

// TestSendDeliversSignedRequest goes through the production path (https,
// public-only guard) to a receiver that verifies with the reference library.
func TestSendDeliversSignedRequest(t *testing.T) {
	whsec := testSecret(t)
	ref, err := standardwebhooks.NewWebhook(whsec.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"deployment.ready","deployment_id":"dep_2026_c1badc17"}`)
	type seen struct {
		verifyErr   error
		contentType string
		userAgent   string
		id          string
		body        string
	}
	got := make(chan seen, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{ref.Verify(b, r.Header), r.Header.Get("Content-Type"), r.Header.Get("User-Agent"), r.Header.Get(HeaderID), string(b)}
		rw.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	s := newSender(Options{
		UserAgent:   "test-agent/1",
		LookupNetIP: fakeDNS(map[string][]netip.Addr{"hooks.example.com": addrs("127.0.0.1")}),
	}, testHooks{allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, rootCAs: certPool(srv)})
	url := fmt.Sprintf("https://hooks.example.com:%d/hook", srv.Listener.Addr().(*net.TCPAddr).Port)

	r := s.Send(t.Context(), url, whsec, "msg_abc", time.Now(), body)
	if !r.Delivered || r.Err != nil || r.StatusCode != http.StatusNoContent {
		t.Fatalf("Send: %+v, want delivered with 204", r)
	}
	g := <-got
	if g.verifyErr != nil {
		t.Errorf("receiver could not verify: %v", g.verifyErr)
	}
	if g.contentType != "application/json" || g.userAgent != "test-agent/1" || g.id != "msg_abc" || g.body != string(body) {
		t.Errorf("receiver saw %+v", g)
	}
}

func TestSendAllowPrivate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	s := NewSender(Options{AllowPrivate: true, Timeout: 5 * time.Second,
		LookupNetIP: fakeDNS(map[string][]netip.Addr{"localhost": addrs("127.0.0.1")})})
	for _, url := range []string{srv.URL + "/hook", fmt.Sprintf("http://localhost:%d/hook", port)} {
		if r := s.Send(t.Context(), url, testSecret(t), "msg_1", time.Now(), []byte(`{}`)); !r.Delivered {
			t.Errorf("Send(%s) with AllowPrivate: %+v, want delivered", url, r)
		}
	}
}

func TestSendClassification(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		want       Result // Err compared with errors.Is
	}{
		{200, "", Result{StatusCode: 200, Delivered: true}},
		{201, "", Result{StatusCode: 201, Delivered: true}},
		{204, "", Result{StatusCode: 204, Delivered: true}},
		{302, "", Result{StatusCode: 302, Err: ErrRedirect}},
		{400, "", Result{StatusCode: 400, Err: ErrStatus}},
		{401, "", Result{StatusCode: 401, Err: ErrStatus}},
		{404, "", Result{StatusCode: 404, Err: ErrStatus}},
		{408, "", Result{StatusCode: 408, Err: ErrStatus, Retryable: true}},
		{410, "", Result{StatusCode: 410, Err: ErrStatus}},
		{413, "", Result{StatusCode: 413, Err: ErrStatus}},
		{422, "", Result{StatusCode: 422, Err: ErrStatus}},
		{429, "7", Result{StatusCode: 429, Err: ErrStatus, Retryable: true, RetryAfter: 7 * time.Second}},
		{429, "999999", Result{StatusCode: 429, Err: ErrStatus, Retryable: true, RetryAfter: httpx.MaxRetryAfter}},
		{429, "-3", Result{StatusCode: 429, Err: ErrStatus, Retryable: true}},
		{429, "soon", Result{StatusCode: 429, Err: ErrStatus, Retryable: true}},
		{500, "", Result{StatusCode: 500, Err: ErrStatus, Retryable: true}},
		{502, "", Result{StatusCode: 502, Err: ErrStatus, Retryable: true}},
		{503, "120", Result{StatusCode: 503, Err: ErrStatus, Retryable: true, RetryAfter: 2 * time.Minute}},
		{504, "", Result{StatusCode: 504, Err: ErrStatus, Retryable: true}},
	}
	s := NewSender(Options{AllowPrivate: true, Timeout: 5 * time.Second})
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.status, tt.retryAfter), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					rw.Header().Set("Retry-After", tt.retryAfter)
				}
				rw.WriteHeader(tt.status)
			}))
			defer srv.Close()
			r := s.Send(t.Context(), srv.URL+"/hook?token=tok_secret", testSecret(t), "msg_1", time.Now(), []byte(`{}`))
			assertResult(t, r, tt.want)
			if r.Err != nil && strings.Contains(r.Err.Error(), "tok_secret") {
				t.Errorf("error %q repeats the URL's query", r.Err)
			}
		})
	}
}

func assertResult(t *testing.T, got, want Result) {
	t.Helper()
	if !errors.Is(got.Err, want.Err) || (want.Err == nil) != (got.Err == nil) {
		t.Errorf("Err = %v, want %v", got.Err, want.Err)
	}
	if got.StatusCode != want.StatusCode || got.Delivered != want.Delivered || got.Retryable != want.Retryable || got.RetryAfter != want.RetryAfter {
		t.Errorf("got {Status %d Delivered %v Retryable %v RetryAfter %s}, want {Status %d Delivered %v Retryable %v RetryAfter %s}",
			got.StatusCode, got.Delivered, got.Retryable, got.RetryAfter, want.StatusCode, want.Delivered, want.Retryable, want.RetryAfter)
	}
}

func TestSendTransportFailuresAreRetryable(t *testing.T) {
	// A server that hangs up without answering.
	hangup := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c, _, err := rw.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	defer hangup.Close()
	// A server that never answers within the sender's timeout.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)
	// A port nobody listens on.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String() + "/hook"
	ln.Close()

	// Only "no answer" waits for the timeout; the others get a sender with
	// a long one, so that a loaded machine cannot turn their failure into
	// a time-out.
	quick := NewSender(Options{AllowPrivate: true, Timeout: 300 * time.Millisecond,
		LookupNetIP: fakeDNS(nil)})
	patient := NewSender(Options{AllowPrivate: true, Timeout: 10 * time.Second,
		LookupNetIP: fakeDNS(nil)})
	for name, tc := range map[string]struct {
		url, summary string
		s            *Sender
	}{
		"hang up":         {hangup.URL, "the request to the receiver failed: the connection failed", patient},
		"no answer":       {slow.URL, "the request to the receiver failed: it timed out", quick},
		"refused":         {closedURL, "the request to the receiver failed: the connection was refused", patient},
		"unresolved name": {"http://nowhere.example.com/hook", "the request to the receiver failed: the host name could not be resolved", patient},
	} {
		t.Run(name, func(t *testing.T) {
			r := tc.s.Send(t.Context(), tc.url, testSecret(t), "msg_1", time.Now(), []byte(`{}`))
			assertResult(t, r, Result{Err: ErrTransport, Retryable: true})
			if got := r.Summary(); got != tc.summary {
				t.Errorf("Summary() = %q, want %q (Err: %v)", got, tc.summary, r.Err)
			}
		})
	}
}

func TestSendCapsResponseRead(t *testing.T) {
	const limit = 1 << 10
	written := make(chan int64, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.WriteHeader(http.StatusOK)
		chunk := make([]byte, 32<<10)
		var n int64
		defer func() { written <- n }()
		// Write without end, until the client goes away.
		for {
			m, err := rw.Write(chunk)
			n += int64(m)
			if err != nil {
				return
			}
			rw.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	// A long timeout: if the body were read to its end, Send would only come
	// back when the timeout fires, after many gigabytes.
	s := NewSender(Options{AllowPrivate: true, Timeout: time.Minute, MaxResponseBytes: limit})
	r := s.Send(t.Context(), srv.URL, testSecret(t), "msg_1", time.Now(), []byte(`{}`))
	if !r.Delivered {
		t.Fatalf("Send: %+v, want delivered", r)
	}
	// Whatever the server wrote beyond what Send read sits in socket buffers:
	// a few megabytes at most.
	if n := <-written; n > 64<<20 {
		t.Errorf("server wrote %d bytes before the client hung up; the read is not capped", n)
	}
}

func TestDrainReadsAtMostLimit(t *testing.T) {
	for _, limit := range []int64{0, 1, 1000, 64 << 10} {
		n, err := drain(endless{}, limit)
		if err != nil || n != limit {
			t.Errorf("drain(endless, %d) = %d, %v", limit, n, err)
		}
	}
	n, err := drain(strings.NewReader("short"), 1000)
	if err != nil || n != 5 {
		t.Errorf("drain(short, 1000) = %d, %v", n, err)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

func TestSendRejectsBadInputs(t *testing.T) {
	s := NewSender(Options{AllowPrivate: true})
	if r := s.Send(t.Context(), "http://127.0.0.1:1/hook", secret.New("whsec_bad"), "msg_1", time.Now(), nil); !errors.Is(r.Err, ErrInvalidSecret) || r.Retryable {
		t.Errorf("bad secret: %+v", r)
	}
	if r := s.Send(t.Context(), "http://127.0.0.1:1/hook", testSecret(t), "", time.Now(), nil); !errors.Is(r.Err, ErrInvalidMessageID) || r.Retryable {
		t.Errorf("empty message id: %+v", r)
	}
}
