package webhook

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// TestDNSErrorsHideTheResolver: last_error is shown to the webhook's owner,
// so it names the failure, not the service's own DNS server.
func TestDNSErrorsHideTheResolver(t *testing.T) {
	for _, dnsErr := range []*net.DNSError{
		{Err: "no such host", Name: "hooks.example.com", Server: "10.255.255.53:53", IsNotFound: true},
		{Err: "i/o timeout", Name: "hooks.example.com", Server: "10.255.255.53:53", IsTimeout: true},
		{Err: "server misbehaving", Name: "hooks.example.com", Server: "10.255.255.53:53"},
	} {
		s := NewSender(Options{LookupNetIP: func(context.Context, string, string) ([]netip.Addr, error) { return nil, dnsErr }})
		res := s.Send(context.Background(), "https://hooks.example.com/x", secret.New("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "msg_1", time.Now(), []byte(`{}`))
		if res.Err == nil || res.Delivered {
			t.Fatalf("Send = %+v", res)
		}
		if msg := res.Err.Error(); strings.Contains(msg, "10.255.255.53") || !strings.Contains(msg, "resolve hooks.example.com") {
			t.Errorf("error = %q", msg)
		}
		if !res.Retryable {
			t.Errorf("a DNS failure should be retried: %+v", res)
		}
	}
}
