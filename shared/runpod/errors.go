package runpod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// Error is a non-2xx answer from RunPod: its RFC 9457 problem body (title,
// status, detail, and for validation failures the errors list) plus the
// Retry-After delay. Error() is a sentence a user can act on; it never
// carries the API key.
type Error struct {
	Status int
	Title  string
	Detail string
	// Type is the problem type URI when RunPod sends one (the v2 schema
	// does not require it).
	Type string
	// Errors lists individual request-validation failures (422).
	Errors []string
	// RetryAfter is the Retry-After header (429, 503), zero when absent.
	RetryAfter time.Duration
}

// maxDetail bounds how much of RunPod's text an error message repeats.
const maxDetail = 500

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Status == http.StatusUnauthorized:
		fmt.Fprintf(&b, "RunPod rejected the API key (%d)", e.Status)
	case e.Status == http.StatusForbidden:
		fmt.Fprintf(&b, "the RunPod API key is not allowed to do this (%d)", e.Status)
	case e.Status == http.StatusPaymentRequired:
		fmt.Fprintf(&b, "the RunPod account balance is insufficient (%d)", e.Status)
	case e.Status == http.StatusNotFound:
		fmt.Fprintf(&b, "RunPod has no such resource (%d)", e.Status)
	case e.Status == http.StatusUnprocessableEntity:
		fmt.Fprintf(&b, "RunPod rejected the request as invalid (%d)", e.Status)
	case e.Status == http.StatusBadRequest:
		fmt.Fprintf(&b, "RunPod refused the request (%d)", e.Status)
	case e.Status == http.StatusTooManyRequests:
		fmt.Fprintf(&b, "RunPod is rate limiting requests (%d)", e.Status)
	case e.Status >= 500:
		fmt.Fprintf(&b, "RunPod is temporarily unavailable (%d)", e.Status)
	default:
		fmt.Fprintf(&b, "RunPod answered %d", e.Status)
	}
	detail := e.Detail
	if detail == "" {
		detail = e.Title
	}
	if detail != "" {
		b.WriteString(": ")
		b.WriteString(detail)
	}
	if len(e.Errors) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(e.Errors, "; "))
		b.WriteString(")")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; retry after %s", e.RetryAfter)
	}
	return b.String()
}

// Retryable reports whether the same request may succeed later: rate limits,
// request timeouts and server errors. 400, 401, 402, 403, 404 and 422 are
// final.
func (e *Error) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500
}

// TransportError means RunPod could not be reached or its answer could not be
// read (connection refused, reset, timeout). It is always retryable.
type TransportError struct {
	Op  string // "POST /serverless"
	Err error
}

// Error implements error.
func (e *TransportError) Error() string {
	return fmt.Sprintf("RunPod could not be reached (%s): %v", e.Op, e.Err)
}

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }

// Retryable reports whether err (from this package, possibly wrapped) is
// worth retrying, and after how long RunPod asked the caller to wait (zero:
// no advice, use your own backoff). Transport failures and an expired
// context deadline (RunPod too slow for the caller's budget) are retryable;
// a cancelled context is not.
func Retryable(err error) (bool, time.Duration) {
	if err == nil || errors.Is(err, context.Canceled) {
		return false, 0
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true, 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable(), e.RetryAfter
	}
	var t *TransportError
	if errors.As(err, &t) {
		return true, 0
	}
	return false, 0
}

// IsNotFound reports whether err is RunPod's 404.
func IsNotFound(err error) bool { return IsStatus(err, http.StatusNotFound) }

// IsStatus reports whether err is a RunPod answer with the given HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// problem is RunPod's ErrorResponse (application/problem+json).
type problem struct {
	Type   string   `json:"type"`
	Title  string   `json:"title"`
	Status int      `json:"status"`
	Detail string   `json:"detail"`
	Errors []string `json:"errors"`
}

// newError maps a non-2xx response to *Error. A body that is not problem
// JSON (a proxy's HTML page) is not repeated: only the status is kept.
func newError(resp *http.Response, raw []byte, key secret.Secret) *Error {
	e := &Error{Status: resp.StatusCode, RetryAfter: httpx.RetryAfter(resp.Header, time.Now())}
	var p problem
	if json.Unmarshal(raw, &p) == nil {
		e.Type = p.Type
		e.Title = clean(p.Title, key)
		e.Detail = clean(p.Detail, key)
		for _, s := range p.Errors {
			e.Errors = append(e.Errors, clean(s, key))
		}
	}
	if e.Title == "" {
		e.Title = http.StatusText(resp.StatusCode)
	}
	return e
}

// clean bounds s and removes the key from it.
func clean(s string, key secret.Secret) string {
	if k := key.Reveal(); k != "" {
		s = strings.ReplaceAll(s, k, secret.Redacted)
	}
	s = strings.TrimSpace(s)
	if len(s) > maxDetail {
		s = strings.ToValidUTF8(s[:maxDetail], "") + "..."
	}
	return s
}
