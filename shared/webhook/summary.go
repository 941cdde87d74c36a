package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// Summary is the attempt's outcome as a sentence for the webhook's owner
// (the deployment's webhook.last_error and log): what went wrong, never how
// a name resolved, which address was dialled or any other internal detail.
// Result.Err, with those details, is for the server log only. "" when the
// webhook was delivered.
func (r Result) Summary() string {
	switch {
	case r.Delivered:
		return ""
	case r.Err == nil:
		return fmt.Sprintf("the receiver answered HTTP %d", r.StatusCode)
	case errors.Is(r.Err, ErrInvalidURL):
		return "the webhook URL is not a valid https URL"
	case errors.Is(r.Err, ErrNotLocal):
		return "the webhook host is not a loopback or private address, the only ones this server sends webhooks to"
	case errors.Is(r.Err, ErrRefused):
		return "the webhook host is not a public address (loopback, private and metadata addresses are refused)"
	case errors.Is(r.Err, ErrRedirect):
		return fmt.Sprintf("the receiver answered HTTP %d, a redirect, which is not followed", r.StatusCode)
	case errors.Is(r.Err, ErrStatus):
		return fmt.Sprintf("the receiver answered HTTP %d", r.StatusCode)
	case errors.Is(r.Err, ErrTransport):
		return "the request to the receiver failed: " + transportCause(r.Err)
	}
	return "the webhook could not be sent"
}

// transportCause names the kind of a transport failure.
func transportCause(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return "it timed out"
	case errors.As(err, &dnsErr) || strings.Contains(err.Error(), "resolve "):
		return "the host name could not be resolved"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the connection was refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "the connection was reset"
	case errors.As(err, &certErr) || errors.As(err, &recErr) || strings.Contains(err.Error(), "tls:"):
		return "the TLS handshake failed"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "it timed out"
	}
	return "the connection failed"
}
