package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestValidatePrivateURL(t *testing.T) {
	for raw, want := range map[string]string{
		"http://127.0.0.1:9000/hook":        "",
		"http://[::1]:9000/hook":            "",
		"http://10.1.2.3/hook":              "",
		"https://192.168.1.10/hook":         "",
		"http://172.16.0.1/hook":            "",
		"http://[fd00::1]/hook":             "",
		"http://localhost:9000/hook":        "",
		"http://hooks.localhost/hook":       "",
		"https://example.com/hook":          "a name other than localhost",
		"https://fuzzed-name.invalid/x":     "a name other than localhost",
		"http://receiver/hook":              "a name other than localhost",
		"https://93.184.215.14/hook":        "not a loopback or private address",
		"http://169.254.169.254/latest":     "not a loopback or private address",
		"http://100.64.0.1/hook":            "not a loopback or private address",
		"http://[2606:4700::1111]/hook":     "not a loopback or private address",
		"ftp://127.0.0.1/hook":              "not supported",
		"http://user:pw@127.0.0.1:9000/h":   "user information",
		"http://127.0.0.1:9000/hook?\x01=1": "control character",
	} {
		err := ValidatePrivateURL(raw)
		switch {
		case want == "" && err != nil:
			t.Errorf("ValidatePrivateURL(%q) = %v, want nil", raw, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("ValidatePrivateURL(%q) = %v, want an error about %q", raw, err, want)
		}
	}
}

// TestPrivateOnlySenderStaysLocal: a PrivateOnly sender (SIMULATE=1's)
// delivers to loopback, localhost included, and refuses a public host,
// named or by address, without resolving a name or dialling: a final
// failure with a sentence for the owner.
func TestPrivateOnlySenderStaysLocal(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	t.Cleanup(srv.Close)
	var lookups atomic.Int32
	s := NewSender(Options{PrivateOnly: true, Timeout: 2 * time.Second,
		LookupNetIP: func(context.Context, string, string) ([]netip.Addr, error) {
			lookups.Add(1)
			return nil, errors.New("no lookups here")
		}})
	whsec := testSecret(t)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	for _, u := range []string{srv.URL + "/hook", "http://localhost:" + strconv.Itoa(port) + "/hook"} {
		if r := s.Send(t.Context(), u, whsec, "msg_1", time.Now(), []byte(`{}`)); !r.Delivered {
			t.Errorf("Send(%s) = %+v, want delivered", u, r)
		}
	}
	if got.Load() != 2 {
		t.Errorf("the loopback receiver got %d webhooks, want 2", got.Load())
	}
	for _, u := range []string{"https://example.com/hook", "http://93.184.215.14/hook", "http://169.254.169.254/latest/meta-data/"} {
		r := s.Send(t.Context(), u, whsec, "msg_1", time.Now(), []byte(`{}`))
		if !errors.Is(r.Err, ErrNotLocal) || r.Retryable || r.Delivered {
			t.Errorf("Send(%s) = %+v, want a final ErrNotLocal", u, r)
		}
		if sum := r.Summary(); !strings.Contains(sum, "not a loopback or private address") {
			t.Errorf("Send(%s).Summary() = %q", u, sum)
		}
	}
	if n := lookups.Load(); n != 0 {
		t.Errorf("%d name lookups, want none", n)
	}
	// The dialer on its own: a public address is refused before connect, a
	// name other than localhost is never looked up.
	d := s.client.Transport.(*http.Transport).DialContext
	for _, addr := range []string{"93.184.215.14:443", "[2606:4700::1111]:443", "example.com:443"} {
		if c, err := d(t.Context(), "tcp", addr); !errors.Is(err, ErrNotLocal) {
			if c != nil {
				c.Close()
			}
			t.Errorf("dial %s = %v, want ErrNotLocal", addr, err)
		}
	}
	if n := lookups.Load(); n != 0 {
		t.Errorf("%d name lookups, want none", n)
	}
}
