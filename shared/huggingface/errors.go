package huggingface

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/httpx"
)

// ErrorKind classifies why Inspect failed.
type ErrorKind string

// The kinds of Error. Callers decide from Kind and Retryable; Message is for
// the user.
const (
	// KindNotFound: the repository (or the pinned revision) does not exist,
	// or it is private and the token given cannot see it.
	KindNotFound ErrorKind = "not_found"
	// KindPrivate: the Hub refused the request for lack of credentials: the
	// repository is private (or missing) and no token, or a token without
	// read permission on it, was given.
	KindPrivate ErrorKind = "private"
	// KindGated: the repository is gated and the token is missing or its
	// account has not been granted access.
	KindGated ErrorKind = "gated"
	// KindDisabled: the repository has been disabled on the Hub.
	KindDisabled ErrorKind = "disabled"
	// KindInvalidToken: the Hub rejected the token itself (malformed,
	// revoked or expired).
	KindInvalidToken ErrorKind = "invalid_token"
	// KindRateLimited: the Hub answered 429. Retryable, with RetryAfter.
	KindRateLimited ErrorKind = "rate_limited"
	// KindUnavailable: a 5xx answer, a network failure, a cancelled context,
	// or an answer this client cannot understand.
	KindUnavailable ErrorKind = "unavailable"
	// KindInvalid: the model id is malformed, or the Hub refused the request
	// as invalid.
	KindInvalid ErrorKind = "invalid"
)

// Error is every failure Inspect reports. Error() is a sentence a user can
// act on: it never carries the token nor internals; Err keeps the cause (an
// HTTP status with the Hub's error code, a network error, a context error)
// for logs and errors.Is/As.
type Error struct {
	Kind    ErrorKind
	Model   string
	Message string
	// Retryable reports whether the same call may succeed later: rate limits,
	// 5xx answers and network errors.
	Retryable bool
	// RetryAfter is how long the Hub asked to wait (429), zero when it did
	// not say.
	RetryAfter time.Duration
	Err        error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("Hugging Face model %q: %s", e.Model, e.Kind)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// StatusError is the cause kept in Error.Err for a non-2xx answer of the Hub.
// It names the request (method and path, never a header) and the Hub's
// X-Error-Code and X-Error-Message headers.
type StatusError struct {
	Method     string
	Path       string
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

// Error implements error.
func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// Hub error codes and messages (X-Error-Code, X-Error-Message).
const (
	codeRepoNotFound     = "RepoNotFound"
	codeGatedRepo        = "GatedRepo"
	codeRevisionNotFound = "RevisionNotFound"
	codeEntryNotFound    = "EntryNotFound"
	msgDisabled          = "Access to this resource is disabled."
	msgInvalidToken      = "Invalid credentials in Authorization header"
)

// retryAfter reads how long to wait from Retry-After (httpx.RetryAfter)
// or, failing that, from the IETF RateLimit header the Hub sends
// (`"api";r=0;t=55`: t is the seconds until the window resets), with the
// same cap.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if d := httpx.RetryAfter(h, now); d > 0 {
		return d
	}
	return min(rateLimitReset(h.Values("RateLimit")), httpx.MaxRetryAfter)
}

// rateLimitReset returns the largest t= parameter among RateLimit header
// items, zero when there is none.
func rateLimitReset(values []string) time.Duration {
	best := time.Duration(0)
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			for param := range strings.SplitSeq(item, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(param), "=")
				if !ok || strings.TrimSpace(k) != "t" {
					continue
				}
				if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && n > 0 {
					best = max(best, time.Duration(n)*time.Second)
				}
			}
		}
	}
	return best
}

// step names what Inspect was doing when a request failed, which changes
// what an ambiguous answer means.
type step int

const (
	stepInfo   step = iota // GET /api/models/{id}
	stepAccess             // auth-check or HEAD resolve on a gated repo
	stepFile               // GET resolve of model_index.json / config.json
)

// classify turns the failure of one request into an *Error for the user.
func (c *Client) classify(model string, hasToken bool, st step, err error) *Error {
	e := &Error{Kind: KindUnavailable, Model: model, Err: err}
	var se *StatusError
	switch {
	case errors.Is(err, context.Canceled):
		e.Retryable = true
		e.Message = fmt.Sprintf("checking Hugging Face model %q was interrupted before the Hub answered", model)
	case errors.As(err, &se):
		c.classifyStatus(e, se, hasToken, st)
	default:
		e.Retryable = true
		e.Message = fmt.Sprintf("the Hugging Face Hub could not be reached to check model %q: %s", model, c.networkCause(err))
	}
	return e
}

// networkCause names why a request got no answer, in words a user can act
// on: "could not resolve huggingface.co", "connection refused", "timed out".
// Only a name that does not resolve is named (the user may know it); the
// addresses dialled are internals.
func (c *Client) networkCause(err error) string {
	host := c.base.Hostname()
	var dnsErr *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &dnsErr) && (dnsErr.IsTimeout || dnsErr.IsTemporary) && !dnsErr.IsNotFound:
		return "could not resolve " + host + " (DNS timed out)"
	case errors.As(err, &dnsErr):
		return "could not resolve " + host
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "network unreachable"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:"):
		return "TLS handshake failed"
	}
	return "connection failed"
}

func (c *Client) classifyStatus(e *Error, se *StatusError, hasToken bool, st step) {
	model := e.Model
	switch {
	case se.Status == http.StatusTooManyRequests:
		e.Kind, e.Retryable, e.RetryAfter = KindRateLimited, true, se.RetryAfter
		e.Message = "the Hugging Face Hub is rate limiting requests"
		if se.RetryAfter > 0 {
			e.Message += fmt.Sprintf("; retry in %s", se.RetryAfter)
		}
		if !hasToken {
			e.Message += " (anonymous requests have the lowest limits: an hf_token raises them)"
		}
	case se.Status >= 500:
		e.Kind, e.Retryable = KindUnavailable, true
		e.Message = fmt.Sprintf("the Hugging Face Hub is temporarily unavailable (HTTP %d) while checking model %q", se.Status, model)
	case se.Message == msgDisabled:
		e.Kind = KindDisabled
		e.Message = fmt.Sprintf("Hugging Face model %q has been disabled on the Hub and cannot be downloaded", model)
	case se.Status == http.StatusUnauthorized && strings.HasPrefix(se.Message, msgInvalidToken):
		e.Kind = KindInvalidToken
		e.Message = "the Hugging Face Hub rejected the hf_token (invalid, revoked or expired)"
	case se.Code == codeGatedRepo || (st == stepAccess && (se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden)):
		e.Kind = KindGated
		e.Message = c.gatedMessage(model, hasToken)
	case se.Code == codeRevisionNotFound:
		e.Kind = KindNotFound
		e.Message = fmt.Sprintf("the revision of Hugging Face model %q was not found", model)
	case se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden:
		e.Kind = KindPrivate
		if hasToken {
			e.Message = fmt.Sprintf("the hf_token is not allowed to read Hugging Face model %q", model)
		} else {
			e.Message = fmt.Sprintf("Hugging Face model %q does not exist or is private: if it is private, pass an hf_token that can read it", model)
		}
	case se.Code == codeRepoNotFound || se.Status == http.StatusNotFound || se.Status == http.StatusGone:
		e.Kind = KindNotFound
		if hasToken {
			e.Message = fmt.Sprintf("Hugging Face model %q was not found (or it is private and the hf_token cannot read it)", model)
		} else {
			e.Message = fmt.Sprintf("Hugging Face model %q was not found", model)
		}
	case se.Status >= 400 && se.Status < 500:
		e.Kind = KindInvalid
		e.Message = fmt.Sprintf("the Hugging Face Hub refused to describe model %q (HTTP %d)", model, se.Status)
	default:
		e.Kind = KindUnavailable
		e.Message = fmt.Sprintf("the Hugging Face Hub gave an unexpected answer (HTTP %d) for model %q", se.Status, model)
	}
}

func (c *Client) gatedMessage(model string, hasToken bool) string {
	page := c.modelPage(model)
	if hasToken {
		return fmt.Sprintf("Hugging Face model %q is gated and the hf_token's account has not been granted access: request access at %s, then try again", model, page)
	}
	return fmt.Sprintf("Hugging Face model %q is gated: pass an hf_token of an account that has been granted access (request it at %s)", model, page)
}

func (c *Client) modelPage(model string) string {
	return strings.TrimRight(c.base.String(), "/") + "/" + model
}
