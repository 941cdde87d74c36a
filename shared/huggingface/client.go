// Package huggingface is a small client of the Hugging Face Hub: it resolves
// a model id to its canonical id and revision, checks that the model can be
// downloaded with the caller's token, and estimates the GPU memory (VRAM) it
// needs to serve.
//
// The simulator in hubsim answers the same endpoints on loopback, for tests
// and the offline demo.
package huggingface

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// DefaultBaseURL is the public Hub.
const DefaultBaseURL = "https://huggingface.co"

// Limits on what the client reads and follows.
const (
	maxInfoBytes  = 32 << 20 // model info of repos with thousands of files
	maxFileBytes  = 8 << 20  // config.json, model_index.json
	maxRedirects  = 5
	retryDelay    = 200 * time.Millisecond
	userAgent     = "visgate-deployment-orchestrator/1"
	defaultTimout = 30 * time.Second
)

// Client talks to one Hub. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	baseErr error
	hc      *http.Client
	// retryDelay is the pause before the single immediate retry of a 5xx or
	// network failure.
	retryDelay time.Duration
}

// NewClient returns a client of the Hub at baseURL (DefaultBaseURL when
// empty). hc nil gives a client with sane timeouts. Redirects are followed
// by the client itself (the Hub answers 307 for renamed repositories), so
// hc's CheckRedirect is not used; the Authorization header is never sent to
// another host than the base URL's.
func NewClient(baseURL string, hc *http.Client) *Client {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	c := &Client{retryDelay: retryDelay}
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	switch {
	case err != nil:
		c.baseErr = fmt.Errorf("parse Hugging Face base URL: %w", err)
		u = &url.URL{}
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		c.baseErr = fmt.Errorf("hugging Face base URL %q is not an absolute http(s) URL", baseURL)
	}
	c.base = u
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.TLSHandshakeTimeout = 10 * time.Second
		t.ResponseHeaderTimeout = 20 * time.Second
		hc = &http.Client{Transport: t, Timeout: defaultTimout}
	}
	own := *hc
	own.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &own
	return c
}

// Inspection is what Inspect learned about a model.
type Inspection struct {
	ModelID     string // canonical id, after renames
	Revision    string // commit sha the rest of the deployment must pin
	PipelineTag string
	LibraryName string
	Family      Family
	Gated       bool
	Private     bool
	Estimate    Estimate
}

// MaxNameLength is the longest repository name the Hub accepts.
const MaxNameLength = 96

// ValidID reports whether id is a Hub model id: "namespace/name" or a legacy
// bare "name". This is the only model-id rule of the service (the API checks
// requests with it), and it is the Hub's own (huggingface_hub's
// validate_repo_id): each part of ASCII letters, digits, '_', '-' and '.',
// starting and ending with a letter, digit or '_'; the name at most 96
// characters; no "--" or ".." anywhere; not ending in ".git".
func ValidID(id string) bool {
	if strings.Contains(id, "--") || strings.Contains(id, "..") || strings.HasSuffix(id, ".git") {
		return false
	}
	ns, name, hasNS := strings.Cut(id, "/")
	if !hasNS {
		ns, name = "", id
	}
	if len(name) > MaxNameLength || !validIDPart(name) {
		return false
	}
	return !hasNS || validIDPart(ns)
}

// validIDPart: one or more of [A-Za-z0-9_.-], first and last in [A-Za-z0-9_].
func validIDPart(p string) bool {
	if p == "" || !wordChar(p[0]) || !wordChar(p[len(p)-1]) {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; !wordChar(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func wordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// Inspect resolves id (following 307 renames to the canonical id), pins the
// revision sha, checks that the model is usable (it exists, is not disabled,
// a private one is readable with token, a gated one downloadable with token:
// the Hub's auth-check endpoint, or a HEAD of a file when that endpoint is
// not served) and estimates its VRAM. token may be empty.
//
// Every failure is an *Error. Inspect never sleeps beyond one short
// immediate retry of a 5xx or network failure; retrying later is the
// caller's decision (Error.Retryable, Error.RetryAfter).
func (c *Client) Inspect(ctx context.Context, id string, token secret.Secret) (*Inspection, error) {
	id = strings.TrimSpace(id)
	if c.baseErr != nil {
		return nil, &Error{Kind: KindUnavailable, Model: id, Message: "the Hugging Face Hub client is misconfigured", Err: c.baseErr}
	}
	if !ValidID(id) {
		return nil, &Error{Kind: KindInvalid, Model: id, Message: fmt.Sprintf("%q is not a valid Hugging Face model id (expected owner/name)", id)}
	}
	hasToken := !token.Empty()

	info, err := c.modelInfo(ctx, id, token)
	if err != nil {
		return nil, c.classify(id, hasToken, stepInfo, err)
	}
	model := info.ID
	if model == "" {
		model = id
	}
	if info.Disabled {
		return nil, &Error{Kind: KindDisabled, Model: model, Message: fmt.Sprintf("Hugging Face model %q has been disabled on the Hub and cannot be downloaded", model)}
	}
	if info.SHA == "" {
		return nil, &Error{Kind: KindUnavailable, Model: model, Retryable: true,
			Message: fmt.Sprintf("the Hugging Face Hub did not report a revision for model %q", model),
			Err:     errors.New("model info without sha")}
	}
	gated := info.Gated.gated()
	if gated {
		if !hasToken {
			return nil, &Error{Kind: KindGated, Model: model, Message: c.gatedMessage(model, false),
				Err: errors.New("gated repository and no token")}
		}
		if err := c.checkAccess(ctx, model, info, token); err != nil {
			return nil, c.classify(model, hasToken, stepAccess, err)
		}
	}

	family := FamilyOf(info.PipelineTag, info.LibraryName)
	est, err := c.estimate(ctx, model, info, family, token)
	if err != nil {
		return nil, c.classify(model, hasToken, stepFile, err)
	}
	return &Inspection{
		ModelID:     model,
		Revision:    info.SHA,
		PipelineTag: info.PipelineTag,
		LibraryName: info.LibraryName,
		Family:      family,
		Gated:       gated,
		Private:     info.Private,
		Estimate:    est,
	}, nil
}

// modelInfo is the part of GET /api/models/{id}?blobs=true this client reads.
type modelInfo struct {
	ID          string       `json:"id"`
	SHA         string       `json:"sha"`
	Private     bool         `json:"private"`
	Disabled    bool         `json:"disabled"`
	Gated       gatedField   `json:"gated"`
	PipelineTag string       `json:"pipeline_tag"`
	LibraryName string       `json:"library_name"`
	Siblings    []sibling    `json:"siblings"`
	Safetensors *safetensors `json:"safetensors"`
}

type sibling struct {
	RFilename string `json:"rfilename"`
	Size      int64  `json:"size"`
	LFS       *struct {
		Size int64 `json:"size"`
	} `json:"lfs"`
}

func (s sibling) size() int64 {
	if s.Size == 0 && s.LFS != nil {
		return s.LFS.Size
	}
	return s.Size
}

type safetensors struct {
	Parameters map[string]int64 `json:"parameters"`
	Total      int64            `json:"total"`
}

// gatedField is the Hub's "gated": false, "auto" or "manual".
type gatedField string

func (g *gatedField) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*g = gatedField(s)
		return nil
	}
	var on bool
	if err := json.Unmarshal(b, &on); err != nil {
		return fmt.Errorf("gated: want a bool or a string, got %s", b)
	}
	if on {
		*g = "true"
	} else {
		*g = ""
	}
	return nil
}

func (g gatedField) gated() bool { return g != "" && g != "false" }

func (c *Client) modelInfo(ctx context.Context, id string, token secret.Secret) (*modelInfo, error) {
	resp, err := c.do(ctx, http.MethodGet, "/api/models/"+escapeID(id), url.Values{"blobs": {"true"}}, token)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var info modelInfo
	if err := decodeJSON(resp.Body, maxInfoBytes, &info); err != nil {
		return nil, fmt.Errorf("decode model info of %s: %w", id, err)
	}
	return &info, nil
}

// checkAccess proves that token can download the gated repo: GET
// /api/models/{id}/auth-check, or where a Hub does not serve that endpoint
// (404 or 405 without an error code), a HEAD of one small file at the pinned
// revision.
func (c *Client) checkAccess(ctx context.Context, model string, info *modelInfo, token secret.Secret) error {
	resp, err := c.do(ctx, http.MethodGet, "/api/models/"+escapeID(model)+"/auth-check", nil, token)
	if err == nil {
		resp.Body.Close()
		return nil
	}
	var se *StatusError
	if !errors.As(err, &se) || se.Code != "" || (se.Status != http.StatusNotFound && se.Status != http.StatusMethodNotAllowed) {
		return err
	}
	probe := "config.json"
	if !hasSibling(info, probe) && hasSibling(info, "model_index.json") {
		probe = "model_index.json"
	}
	resp, err = c.do(ctx, http.MethodHead, resolvePath(model, info.SHA, probe), nil, token)
	if err != nil {
		if errors.As(err, &se) && se.Code == codeEntryNotFound {
			return nil // past the gate: the file is just not there
		}
		return err
	}
	resp.Body.Close()
	return nil
}

// fetchFile GETs a small JSON file at the pinned revision. A file the repo
// does not have gives (false, nil).
func (c *Client) fetchFile(ctx context.Context, model, sha, name string, token secret.Secret, v any) (bool, error) {
	resp, err := c.do(ctx, http.MethodGet, resolvePath(model, sha, name), nil, token)
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Code == codeEntryNotFound {
			return false, nil
		}
		return false, err
	}
	defer resp.Body.Close()
	if err := decodeJSON(resp.Body, maxFileBytes, v); err != nil {
		return false, fmt.Errorf("decode %s of %s: %w", name, model, err)
	}
	return true, nil
}

func resolvePath(model, rev, file string) string {
	parts := strings.Split(file, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/" + escapeID(model) + "/resolve/" + url.PathEscape(rev) + "/" + strings.Join(parts, "/")
}

func escapeID(id string) string {
	ns, name, ok := strings.Cut(id, "/")
	if !ok {
		return url.PathEscape(id)
	}
	return url.PathEscape(ns) + "/" + url.PathEscape(name)
}

func hasSibling(info *modelInfo, name string) bool {
	for _, s := range info.Siblings {
		if s.RFilename == name {
			return true
		}
	}
	return false
}

func decodeJSON(r io.Reader, limit int64, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("body larger than %d bytes", limit)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse JSON: %w", err)
	}
	return nil
}

// do sends one request, follows redirects (at most maxRedirects; the token
// only goes to the base URL's host) and retries once, after a short pause, a
// 5xx or network failure. A non-2xx final answer is a *StatusError.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, token secret.Secret) (*http.Response, error) {
	resp, err := c.follow(ctx, method, path, query, token)
	if !retryable(ctx, err) {
		return resp, err
	}
	t := time.NewTimer(c.retryDelay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%s %s: %w", method, path, ctx.Err())
	case <-t.C:
	}
	return c.follow(ctx, method, path, query, token)
}

func retryable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status >= 500
	}
	return true // transport error
}

func (c *Client) follow(ctx context.Context, method, path string, query url.Values, token secret.Secret) (*http.Response, error) {
	unescaped, err := url.PathUnescape(path)
	if err != nil {
		return nil, fmt.Errorf("build URL for %s: %w", path, err)
	}
	base := *c.base
	target := &base
	target.Path = c.base.Path + unescaped
	target.RawPath = c.base.EscapedPath() + path
	target.RawQuery = query.Encode()

	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(ctx, method, target.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
		}
		req.Header.Set("User-Agent", userAgent)
		req.Header.Set("Accept", "application/json")
		if !token.Empty() && sameOrigin(target, c.base) {
			req.Header.Set("Authorization", "Bearer "+token.Reveal())
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, target.Path, scrubURLError(err))
		}
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return resp, nil
		case isRedirect(resp.StatusCode):
			loc := resp.Header.Get("Location")
			drain(resp)
			if loc == "" || hop >= maxRedirects {
				return nil, &StatusError{Method: method, Path: target.Path, Status: resp.StatusCode, Message: "redirect not followed"}
			}
			next, err := target.Parse(loc)
			if err != nil {
				return nil, fmt.Errorf("%s %s: bad redirect location: %w", method, target.Path, err)
			}
			target = next
		default:
			se := &StatusError{
				Method:  method,
				Path:    target.Path,
				Status:  resp.StatusCode,
				Code:    resp.Header.Get("X-Error-Code"),
				Message: resp.Header.Get("X-Error-Message"),
			}
			if se.Message == "" && method != http.MethodHead {
				se.Message = errorBodyMessage(resp.Body)
			}
			if resp.StatusCode == http.StatusTooManyRequests {
				se.RetryAfter = retryAfter(resp.Header, time.Now())
			}
			drain(resp)
			return nil, se
		}
	}
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// errorBodyMessage reads the {"error": "..."} body the Hub sends with errors.
func errorBodyMessage(r io.Reader) string {
	var body struct {
		Error string `json:"error"`
	}
	b, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil || json.Unmarshal(b, &body) != nil {
		return ""
	}
	const maxLen = 300
	if len(body.Error) > maxLen {
		return body.Error[:maxLen]
	}
	return body.Error
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// scrubURLError drops the URL from a *url.Error (the query and path are not
// secret, but the message reads better without the full URL twice).
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
