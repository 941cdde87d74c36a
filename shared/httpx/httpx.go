// Package httpx holds the HTTP plumbing every function shares: the
// contract's error shape, strict JSON decoding with a size limit, request ids.
package httpx

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxBody is the largest request body accepted (SPEC: 64 KiB).
const MaxBody = 64 << 10

// Error is an API error in the contract's shape:
// {"error": Name, "message": Message, "details": {...}}.
type Error struct {
	Status  int            `json:"-"`
	Name    string         `json:"error"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string { return e.Name + ": " + e.Message }

// Error constructors for the contract's errors.
func BadRequest(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Name: "BadRequestError", Message: msg, Details: map[string]any{}}
}

// Unauthorized is the 401 of the contract.
func Unauthorized() *Error {
	return &Error{Status: http.StatusUnauthorized, Name: "UnauthorizedError", Message: "Missing or invalid API key", Details: map[string]any{}}
}

// NotFound is the contract's 404 for a deployment.
func NotFound(id string) *Error {
	return &Error{Status: http.StatusNotFound, Name: "DeploymentNotFoundError", Message: "Deployment not found: " + id,
		Details: map[string]any{"deployment_id": id}}
}

// RouteNotFound is a 404 for a path nothing serves.
func RouteNotFound(path string) *Error {
	return &Error{Status: http.StatusNotFound, Name: "NotFoundError", Message: "No such endpoint: " + path, Details: map[string]any{"path": path}}
}

// MethodNotAllowed is a 405 listing the allowed methods.
func MethodNotAllowed(allowed ...string) *Error {
	return &Error{Status: http.StatusMethodNotAllowed, Name: "MethodNotAllowedError", Message: "Method not allowed; use " + strings.Join(allowed, ", "),
		Details: map[string]any{"allowed": allowed}}
}

// Conflict is a 409.
func Conflict(msg string, details map[string]any) *Error {
	if details == nil {
		details = map[string]any{}
	}
	return &Error{Status: http.StatusConflict, Name: "ConflictError", Message: msg, Details: details}
}

// TooLarge is the 413 for a body over MaxBody.
func TooLarge() *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Name: "PayloadTooLargeError",
		Message: fmt.Sprintf("Request body exceeds %d bytes", MaxBody), Details: map[string]any{"limit_bytes": MaxBody}}
}

// RateLimited is the 429 with its Retry-After.
func RateLimited(limit int, retryAfter time.Duration) *Error {
	return &Error{Status: http.StatusTooManyRequests, Name: "RateLimitError",
		Message:    fmt.Sprintf("Rate limit of %d requests per minute exceeded", limit),
		Details:    map[string]any{"limit": limit, "retry_after_seconds": retryAfterSeconds(retryAfter)},
		RetryAfter: retryAfter}
}

// AuthThrottled is the 429 for a client address that failed authentication
// too often.
func AuthThrottled(limit int, retryAfter time.Duration) *Error {
	return &Error{Status: http.StatusTooManyRequests, Name: "RateLimitError",
		Message:    fmt.Sprintf("Too many failed authentication attempts from this address (at most %d a minute); retry later", limit),
		Details:    map[string]any{"limit": limit, "retry_after_seconds": retryAfterSeconds(retryAfter)},
		RetryAfter: retryAfter}
}

// StorageFull is the 503 of a write the store refused for want of space:
// nothing was changed, and the client may retry.
func StorageFull(retryAfter time.Duration) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Name: "StorageFullError",
		Message: fmt.Sprintf("The service cannot store anything right now: the disk that holds its data is full. Nothing was changed; retry in %d seconds.",
			retryAfterSeconds(retryAfter)),
		Details:    map[string]any{"retry_after_seconds": retryAfterSeconds(retryAfter)},
		RetryAfter: retryAfter}
}

// Internal is the 500: no internals, only the request id.
func Internal(requestID string) *Error {
	return &Error{Status: http.StatusInternalServerError, Name: "InternalError",
		Message: "Internal error; quote the request id when reporting it", Details: map[string]any{"request_id": requestID}}
}

// FieldErrors collects validation failures, field name to reason.
type FieldErrors map[string]string

// Add records a failure for field (the first reason for a field wins).
func (f FieldErrors) Add(field, reason string) {
	if _, ok := f[field]; !ok {
		f[field] = reason
	}
}

// Err returns the 422 for the collected failures, or nil if there are none.
func (f FieldErrors) Err() *Error {
	if len(f) == 0 {
		return nil
	}
	names := make([]string, 0, len(f))
	details := make(map[string]any, len(f))
	for k, v := range f {
		names = append(names, k)
		details[k] = v
	}
	slices.Sort(names)
	msg := "Invalid request: " + names[0] + ": " + f[names[0]]
	if len(names) > 1 {
		msg = fmt.Sprintf("Invalid request: %d fields are invalid (%s)", len(names), strings.Join(names, ", "))
	}
	return &Error{Status: http.StatusUnprocessableEntity, Name: "ValidationError", Message: msg, Details: details}
}

func retryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := EncodeJSON(v)
	if err != nil {
		http.Error(w, `{"error":"InternalError","message":"encoding failed","details":{}}`, http.StatusInternalServerError)
		return
	}
	WriteEncoded(w, status, b)
}

// EncodeJSON is the body WriteJSON writes for v: its JSON and a newline.
func EncodeJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Header values every JSON answer shares. They are assigned to a
// response's header map, never changed in place: a handler that wants
// another value replaces the slice (Header.Set, or an Add, which appends
// to a full slice: a copy), and net/http copies the values it sends.
var (
	jsonType = []string{"application/json"}
	noStore  = []string{"no-store"}
	nosniff  = []string{"nosniff"}
)

// SetJSONHeaders sets the headers of every JSON answer: Content-Type,
// Cache-Control: no-store and X-Content-Type-Options: nosniff. The keys
// are canonical and assigned directly: Header.Set canonicalises its key and
// allocates a slice for its value, which under make bench's GET load was a
// fifth of the handler's CPU (pprof).
func SetJSONHeaders(h http.Header) {
	h["Content-Type"] = jsonType
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = nosniff
}

// ContentLength is the Content-Length header value of body, made once for
// a body answered many times (see WriteEncodedLength).
func ContentLength(body []byte) []string {
	return []string{strconv.Itoa(len(body))}
}

// WriteEncoded writes body, made by EncodeJSON, with WriteJSON's headers
// and its Content-Length (so that a body above net/http's 2 KB buffer is
// not sent chunked: one framing less for the server and the client).
func WriteEncoded(w http.ResponseWriter, status int, body []byte) {
	WriteEncodedLength(w, status, body, ContentLength(body))
}

// WriteEncodedLength is WriteEncoded with the Content-Length value made
// already (ContentLength(body)); it is shared, never changed.
func WriteEncodedLength(w http.ResponseWriter, status int, body []byte, length []string) {
	h := w.Header()
	SetJSONHeaders(h)
	h["Content-Length"] = length
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// WriteError writes e in the contract's shape.
func WriteError(w http.ResponseWriter, e *Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(e.RetryAfter)))
	}
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	WriteJSON(w, e.Status, e)
}

// ReadBody reads a request body of at most MaxBody bytes: a 413 above it,
// a 400 when it cannot be read.
func ReadBody(r *http.Request) ([]byte, *Error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return nil, BadRequest("Could not read the request body")
	}
	if len(body) > MaxBody {
		return nil, TooLarge()
	}
	return body, nil
}

// DecodeObject reads a JSON object body of at most MaxBody bytes into a map
// of raw fields, so the caller can report unknown fields and wrong types by
// name. It returns a 400 for invalid JSON or a non-object, a 413 for a body
// over the limit.
func DecodeObject(r *http.Request) (map[string]json.RawMessage, *Error) {
	body, herr := ReadBody(r)
	if herr != nil {
		return nil, herr
	}
	return ParseObject(body)
}

// ParseObject parses body as one JSON object (see DecodeObject).
func ParseObject(body []byte) (map[string]json.RawMessage, *Error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, BadRequest("Request body is empty; expected a JSON object")
	}
	if trimmed[0] != '{' {
		if !json.Valid(trimmed) {
			return nil, BadRequest("Request body is not valid JSON")
		}
		return nil, BadRequest("Request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil {
		return nil, BadRequest("Request body is not valid JSON")
	}
	if dec.More() {
		return nil, BadRequest("Request body holds more than one JSON value")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, BadRequest("Request body holds more than one JSON value")
	}
	if dupe := duplicateKey(trimmed); dupe != "" {
		return nil, BadRequest("Request body repeats the field " + strconv.Quote(dupe))
	}
	return m, nil
}

// duplicateKey returns a top-level key that appears twice, or "".
func duplicateKey(obj []byte) string {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		k, _ := tok.(string)
		if seen[k] {
			return k
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// NewRequestID returns a random request id. The request's context carries
// it for its log lines and error bodies: logging.WithRequest,
// logging.RequestID.
//
// The id names a request in the logs; it guards nothing, so it needs no
// cryptographic randomness: math/rand/v2's generator (ChaCha8, seeded by
// the runtime from the system's entropy, per thread) gives 64 bits without
// crypto/rand's locking and reseeding, which showed in the request's
// profile, and the id is built in one allocation.
func NewRequestID() string {
	var raw [8]byte
	binary.BigEndian.PutUint64(raw[:], mathrand.Uint64())
	var b [len(requestIDPrefix) + 2*len(raw)]byte
	copy(b[:], requestIDPrefix)
	hex.Encode(b[len(requestIDPrefix):], raw[:])
	return string(b[:])
}

const requestIDPrefix = "req_"
