package huggingface_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// TestUnreachableHubNamesTheCause: a Hub that cannot be reached gives a
// retryable error whose message says why (the user reads it), in words
// rather than dial errors.
func TestUnreachableHubNamesTheCause(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	dialing := func(dial func(ctx context.Context) error) *http.Client {
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return nil, dial(ctx) }}
		return &http.Client{Transport: tr, Timeout: 200 * time.Millisecond}
	}
	for _, tc := range []struct {
		name, base string
		hc         *http.Client
		want       string
	}{
		{"refused", closed, nil, "connection refused"},
		{"no such host", "https://huggingface.co", dialing(func(context.Context) error {
			return &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "huggingface.co", IsNotFound: true}}
		}), "could not resolve huggingface.co"},
		{"timeout", "https://huggingface.co", dialing(func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}), "timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := huggingface.NewClient(tc.base, tc.hc)
			_, err := c.Inspect(t.Context(), "openai-community/gpt2", secret.Secret{})
			var he *huggingface.Error
			if !errors.As(err, &he) || !he.Retryable || he.Kind != huggingface.KindUnavailable {
				t.Fatalf("err = %#v, want a retryable unavailable *Error", err)
			}
			if !strings.Contains(he.Error(), tc.want) {
				t.Errorf("message %q does not say %q", he.Error(), tc.want)
			}
			if strings.Contains(he.Error(), "dial") || strings.Contains(he.Error(), "127.0.0.1") {
				t.Errorf("message %q carries internals", he.Error())
			}
		})
	}
}
