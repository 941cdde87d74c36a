// Package runpod is a client for the parts of RunPod's REST API v2 that the
// orchestrator uses: serverless endpoints, their workers, and the GPU
// catalogue.
//
// Every call takes the user's API key as a secret.Secret; the key is revealed
// only to build the Authorization header and never appears in an error.
// Calls do not retry: a caller that gets a retryable error (see Retryable)
// re-enqueues its work after the delay the error carries.
package runpod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// DefaultBaseURL is RunPod's REST v2 API: the openapi document's server
// (https://api.runpod.io) followed by the /v2 prefix that every path carries.
// A base URL given to NewClient includes that prefix.
const DefaultBaseURL = "https://api.runpod.io/v2"

// DefaultTimeout bounds one HTTP exchange when NewClient builds its own
// http.Client.
const DefaultTimeout = 30 * time.Second

// maxBody bounds how much of a response the client reads.
const maxBody = 4 << 20

// Client calls RunPod's REST v2 API. It is safe for concurrent use.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client for the API at baseURL (DefaultBaseURL when
// empty; it ends with /v2, e.g. runpodsim's Server.URL). A nil hc gets an
// http.Client with DefaultTimeout.
func NewClient(baseURL string, hc *http.Client) *Client {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc}
}

// ErrNoKey is returned, before any request, when the key is empty.
var ErrNoKey = errors.New("runpod: no RunPod API key was given")

// do sends one request. in, when not nil, is sent as JSON; out, when not nil,
// receives a 2xx JSON body. Non-2xx answers become *Error; failures to reach
// RunPod become *TransportError.
func (c *Client) do(ctx context.Context, key secret.Secret, method, path string, in, out any) error {
	return c.doURL(ctx, key, method, c.base+path, method+" "+path, in, out)
}

// doURL is do for a full URL (an endpoint's job API), named op in errors.
func (c *Client) doURL(ctx context.Context, key secret.Secret, method, target, op string, in, out any) error {
	if key.Empty() {
		return ErrNoKey
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("runpod: %s: encoding the request: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("runpod: %s: building the request: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+key.Reveal())
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", "visgate-deployment-orchestrator")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("runpod: %s: %w", op, ctxErr)
		}
		return &TransportError{Op: op, Err: scrub(err, key)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("runpod: %s: %w", op, ctxErr)
		}
		return &TransportError{Op: op, Err: fmt.Errorf("reading the response: %w", scrub(err, key))}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newError(resp, raw, key)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("runpod: %s: RunPod answered %d with a body that is not the documented JSON: %w",
			op, resp.StatusCode, err)
	}
	return nil
}

// scrub wraps err so that its message cannot carry the key, should any layer
// below have echoed it.
func scrub(err error, key secret.Secret) error {
	k := key.Reveal()
	if k == "" || !strings.Contains(err.Error(), k) {
		return err
	}
	return &scrubbed{msg: strings.ReplaceAll(err.Error(), k, secret.Redacted), err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.err }
