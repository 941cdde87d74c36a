// Package hubsim is a Hugging Face Hub simulator for tests and the offline
// demo, in the manner of net/http/httptest: New starts it on 127.0.0.1 and
// URL is its base URL.
//
// It answers the endpoints the huggingface client uses, with the Hub's
// shapes and error conventions:
//
//	GET  /api/models/{id}[?blobs=true]         model info (siblings sizes with blobs=true)
//	GET  /api/models/{id}/revision/{rev}       the same at a revision ("main" or the sha)
//	GET  /api/models/{id}/auth-check           200 when the token can download the repo
//	GET  /api/models/{id}/tree/{rev}[/{dir}]   the files and folders (?recursive=true)
//	GET  /{id}/resolve/{rev}/{file}            a repo file (HEAD too; LFS files redirect to CDNURL)
//
// and enough of the download protocol for huggingface_hub's hf_hub_download
// and snapshot_download (files.go): X-Repo-Commit, ETag, X-Linked-Etag,
// X-Linked-Size, Range. LoadDir serves real repositories from disk (the
// tiny models of the inference worker, VISGATE_TINY_MODELS).
//
// Errors: X-Error-Code RepoNotFound, GatedRepo, RevisionNotFound or
// EntryNotFound with X-Error-Message; 401 without a code for a missing or
// private repo asked without a token; 401 "Invalid credentials in
// Authorization header" for a token the simulator does not know; 403 "Access
// to this resource is disabled." for a disabled repo; 307 for a renamed repo;
// and on demand 429 (Retry-After and RateLimit headers) and 5xx.
//
// It starts with real models (fixtures/, Hub-shaped JSON written by hand
// with the models' real parameter counts, file names and sizes as published
// on their pages; the commit shas and blob ids are made up): see Preloaded.
// Tokens must be declared with SetToken (or SetAcceptAnyToken for a demo);
// a token the simulator does not know is refused as the Hub refuses a
// revoked one. It is safe for concurrent use.
package hubsim

import (
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed fixtures
var fixtures embed.FS

// AllRepos, given to SetToken, grants a token every private and gated repo.
const AllRepos = "*"

// Model is a repository the simulator serves.
type Model struct {
	ID          string // canonical "owner/name"
	SHA         string // commit of "main"; derived from ID when empty
	Private     bool
	Gated       string // "" (not gated), "auto" or "manual"
	Disabled    bool
	PipelineTag string
	LibraryName string
	Tags        []string
	// Parameters is safetensors.parameters (dtype → count); nil when the
	// repo has no safetensors metadata (diffusers repos, .bin-only repos).
	Parameters map[string]int64
	Files      []File
}

// File is a file of a repository: Size is what the model info reports;
// Content, or else the file at Path, is what resolve serves (with neither,
// resolve answers with the size in X-Linked-Size and an empty body, enough
// for metadata look-ups). See files.go for how files are served.
type File struct {
	Name    string
	Size    int64
	Content []byte
	Path    string // a file on disk (LoadDir)

	gitOID, sha256 string // of the bytes, filled by hashes
}

// Request is one request the simulator received. It never holds the token.
type Request struct {
	Method        string
	Path          string
	Query         string
	Authenticated bool
}

// Server is a running simulator.
type Server struct {
	URL string
	// CDNURL is the origin /resolve redirects LFS files to (another
	// loopback port, as the real CDN is another host).
	CDNURL string

	ts  *httptest.Server
	cdn *httptest.Server

	mu       sync.Mutex
	repos    map[string]*repo  // lower-case id → repo
	renames  map[string]string // lower-case old id → new id
	tokens   map[string]map[string]bool
	anyToken bool
	faults   []fault
	requests []Request
	blobs    map[string]File // sha256 → LFS file handed out by a redirect
}

type repo struct {
	model Model
	extra map[string]json.RawMessage // other fields of a fixture's info, served as is
}

type fault struct {
	remaining  int
	status     int
	retryAfter time.Duration
}

// New starts a simulator on 127.0.0.1 preloaded with the fixtures.
func New() *Server {
	s := &Server{
		repos:   map[string]*repo{},
		renames: map[string]string{},
		tokens:  map[string]map[string]bool{},
		blobs:   map[string]File{},
	}
	if err := s.loadFixtures(); err != nil {
		// The fixtures are embedded: a broken one is a bug of this package.
		panic(fmt.Sprintf("hubsim: load fixtures: %v", err))
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.ts.URL
	s.cdn = httptest.NewServer(http.HandlerFunc(s.serveCDN))
	s.CDNURL = s.cdn.URL
	return s
}

// Close shuts the simulator down.
func (s *Server) Close() {
	s.ts.Close()
	s.cdn.Close()
}

// Client returns an HTTP client for the simulator.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Preloaded lists the ids of the fixture models, sorted.
func Preloaded() []string {
	ids, err := fixtureIDs()
	if err != nil {
		panic(fmt.Sprintf("hubsim: list fixtures: %v", err))
	}
	return ids
}

// AddModel adds (or replaces) a repository.
func (s *Server) AddModel(m Model) {
	if m.SHA == "" {
		m.SHA = fakeSHA(m.ID)
	}
	m.Files = slices.Clone(m.Files)
	for i := range m.Files {
		_ = m.Files[i].hashes() // Content cannot fail; LoadDir hashes Path files first
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[strings.ToLower(m.ID)] = &repo{model: m}
}

// Model returns a copy of the repository with that id (any case).
func (s *Server) Model(id string) (Model, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[strings.ToLower(id)]
	if !ok {
		return Model{}, false
	}
	return r.model, true
}

// Rename makes oldID answer 307 to newID, as the Hub does for moved repos.
func (s *Server) Rename(oldID, newID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renames[strings.ToLower(oldID)] = newID
}

// SetDisabled disables (or re-enables) a repository.
func (s *Server) SetDisabled(id string, disabled bool) {
	s.update(id, func(m *Model) { m.Disabled = disabled })
}

// SetGated sets a repository's gating: "", "auto" or "manual".
func (s *Server) SetGated(id, gated string) { s.update(id, func(m *Model) { m.Gated = gated }) }

// SetPrivate makes a repository private (or public).
func (s *Server) SetPrivate(id string, private bool) {
	s.update(id, func(m *Model) { m.Private = private })
}

func (s *Server) update(id string, f func(*Model)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.repos[strings.ToLower(id)]; ok {
		f(&r.model)
	}
}

// SetToken declares a valid token and the private or gated repositories it
// can read (AllRepos for every one). Public, non-gated repos need no grant.
// Calling it again replaces the grants.
func (s *Server) SetToken(token string, repos ...string) {
	grants := map[string]bool{}
	for _, r := range repos {
		grants[strings.ToLower(r)] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = grants
}

// SetAcceptAnyToken makes every non-empty token valid with access to every
// repository (for the offline demo). Declared tokens keep their grants.
func (s *Server) SetAcceptAnyToken(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.anyToken = on
}

// FailNext makes the next n requests answer status (a 5xx, say). n <= 0 or
// a status outside 400-599 does nothing.
func (s *Server) FailNext(n, status int) {
	if n <= 0 || status < 400 || status > 599 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{remaining: n, status: status})
}

// RateLimitNext makes the next n requests answer 429 with Retry-After and
// RateLimit headers saying retryAfter (rounded up to whole seconds).
func (s *Server) RateLimitNext(n int, retryAfter time.Duration) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{remaining: n, status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// Requests is the number of requests received so far.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Log returns the requests received so far, oldest first.
func (s *Server) Log() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ---- serving ----

const (
	msgRepoNotFound  = "Repository not found"
	msgUnauthorized  = "Invalid username or password."
	msgInvalidToken  = "Invalid credentials in Authorization header"
	msgDisabled      = "Access to this resource is disabled."
	msgEntryNotFound = "Entry not found"
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	after := s.serveLocked(w, r)
	s.mu.Unlock()
	if after != nil {
		after()
	}
}

// serveLocked answers r under s.mu; what it returns (a file body) is run
// after the lock is released.
func (s *Server) serveLocked(w http.ResponseWriter, r *http.Request) func() {
	token, hasToken := bearer(r)
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Authenticated: hasToken})

	if len(s.faults) > 0 {
		f := &s.faults[0]
		f.remaining--
		status, wait := f.status, f.retryAfter
		if f.remaining <= 0 {
			s.faults = s.faults[1:]
		}
		if status == http.StatusTooManyRequests {
			secs := int((wait + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			w.Header().Set("RateLimit", fmt.Sprintf(`"api";r=0;t=%d`, secs))
			w.Header().Set("RateLimit-Policy", `"fixed window";"api";q=500;w=300`)
			writeError(w, status, "", "", "You have exceeded our hourly quotas for action: api. We invite you to retry later.")
			return nil
		}
		writeError(w, status, "", "", http.StatusText(status))
		return nil
	}

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "", "", "Method not allowed")
		return nil
	}
	if hasToken && !s.validToken(token) {
		writeError(w, http.StatusUnauthorized, "", msgInvalidToken, msgInvalidToken)
		return nil
	}

	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/api/models/"); ok {
		s.serveAPI(w, r, rest, token, hasToken)
		return nil
	}
	return s.serveResolve(w, r, strings.TrimPrefix(p, "/"), token, hasToken)
}

// serveAPI handles /api/models/{id}, .../revision/{rev}, .../auth-check and
// .../tree/{rev}[/{path}].
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, rest, token string, hasToken bool) {
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	var id, rev, action, dir string
	switch {
	case len(segs) >= 4 && segs[2] == "tree":
		id, rev, action, dir = segs[0]+"/"+segs[1], segs[3], "tree", strings.Join(segs[4:], "/")
	case len(segs) >= 4 && segs[2] == "revision":
		id, rev, action = segs[0]+"/"+segs[1], strings.Join(segs[3:], "/"), "info"
	case len(segs) >= 3 && segs[1] == "revision":
		id, rev, action = segs[0], strings.Join(segs[2:], "/"), "info"
	case len(segs) == 3 && segs[2] == "auth-check":
		id, action = segs[0]+"/"+segs[1], "auth-check"
	case len(segs) == 2 && segs[1] == "auth-check" && s.lookup(segs[0]+"/"+segs[1]) == nil:
		id, action = segs[0], "auth-check"
	case len(segs) == 2:
		id, action = segs[0]+"/"+segs[1], "info"
	case len(segs) == 1 && segs[0] != "":
		id, action = segs[0], "info"
	default:
		writeError(w, http.StatusNotFound, "", "", "Sorry, we can't find the page you are looking for.")
		return
	}

	if target, ok := s.renames[strings.ToLower(id)]; ok {
		loc := "/api/models/" + target + strings.TrimPrefix(rest, id)
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		redirect(w, loc)
		return
	}
	rp := s.lookup(id)
	if !s.visible(w, rp, token, hasToken) {
		return
	}
	if rev != "" && rev != "main" && rev != rp.model.SHA {
		writeError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev, "Invalid rev id: "+rev)
		return
	}
	switch action {
	case "auth-check":
		if !s.downloadable(w, rp, token, hasToken) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	case "tree":
		if !s.downloadable(w, rp, token, hasToken) {
			return
		}
		entries, found := rp.treeEntries(dir, strings.EqualFold(r.URL.Query().Get("recursive"), "true"))
		if !found {
			msg := fmt.Sprintf("%s does not exist on %q", dir, rev)
			writeError(w, http.StatusNotFound, "EntryNotFound", msg, msg)
			return
		}
		writeJSON(w, entries)
	default:
		writeJSON(w, rp.info(r.URL.Query().Get("blobs") == "true"))
	}
}

// serveResolve handles /{id}/resolve/{rev}/{file...}.
func (s *Server) serveResolve(w http.ResponseWriter, r *http.Request, p, token string, hasToken bool) func() {
	segs := strings.Split(p, "/")
	var id, rev, file string
	switch {
	case len(segs) >= 5 && segs[2] == "resolve":
		id, rev, file = segs[0]+"/"+segs[1], segs[3], strings.Join(segs[4:], "/")
	case len(segs) >= 4 && segs[1] == "resolve":
		id, rev, file = segs[0], segs[2], strings.Join(segs[3:], "/")
	default:
		writeError(w, http.StatusNotFound, "", "", "Sorry, we can't find the page you are looking for.")
		return nil
	}
	if target, ok := s.renames[strings.ToLower(id)]; ok {
		redirect(w, "/"+target+"/resolve/"+rev+"/"+file)
		return nil
	}
	rp := s.lookup(id)
	if !s.visible(w, rp, token, hasToken) || !s.downloadable(w, rp, token, hasToken) {
		return nil
	}
	if rev != "main" && rev != rp.model.SHA {
		writeError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev, "Invalid rev id: "+rev)
		return nil
	}
	for i := range rp.model.Files {
		if f := &rp.model.Files[i]; f.Name == file {
			return s.serveFile(w, r, rp, f)
		}
	}
	w.Header().Set("X-Repo-Commit", rp.model.SHA)
	writeError(w, http.StatusNotFound, "EntryNotFound", msgEntryNotFound, msgEntryNotFound)
	return nil
}

func (s *Server) lookup(id string) *repo { return s.repos[strings.ToLower(id)] }

func (s *Server) validToken(token string) bool {
	_, ok := s.tokens[token]
	return ok || s.anyToken
}

func (s *Server) granted(rp *repo, token string) bool {
	if s.anyToken {
		return true
	}
	g := s.tokens[token]
	return g[AllRepos] || g[strings.ToLower(rp.model.ID)]
}

// visible writes the Hub's answer for a repo the caller cannot see at all
// and reports whether the caller can.
func (s *Server) visible(w http.ResponseWriter, rp *repo, token string, hasToken bool) bool {
	switch {
	case rp == nil || (rp.model.Private && !(hasToken && s.granted(rp, token))):
		if !hasToken {
			writeError(w, http.StatusUnauthorized, "", msgUnauthorized, msgUnauthorized)
		} else {
			writeError(w, http.StatusNotFound, "RepoNotFound", msgRepoNotFound, msgRepoNotFound)
		}
		return false
	case rp.model.Disabled:
		writeError(w, http.StatusForbidden, "", msgDisabled, msgDisabled)
		return false
	}
	return true
}

// downloadable writes the Hub's answer for a gated repo the caller may not
// download and reports whether the caller may.
func (s *Server) downloadable(w http.ResponseWriter, rp *repo, token string, hasToken bool) bool {
	if rp.model.Gated == "" {
		return true
	}
	id := rp.model.ID
	switch {
	case !hasToken:
		msg := fmt.Sprintf("Access to model %s is restricted. You must have access to it and be authenticated to access it. Please log in.", id)
		writeError(w, http.StatusUnauthorized, "GatedRepo", msg, msg)
		return false
	case !s.granted(rp, token):
		msg := fmt.Sprintf("Access to model %s is restricted and you are not in the authorized list. Visit https://huggingface.co/%s to ask for access.", id, id)
		writeError(w, http.StatusForbidden, "GatedRepo", msg, msg)
		return false
	}
	return true
}

// info renders the model info as the Hub does.
func (rp *repo) info(blobs bool) map[string]any {
	m := rp.model
	out := map[string]any{}
	for k, v := range rp.extra {
		out[k] = v
	}
	out["id"] = m.ID
	out["modelId"] = m.ID
	out["sha"] = m.SHA
	out["private"] = m.Private
	out["disabled"] = m.Disabled
	if m.Gated == "" {
		out["gated"] = false
	} else {
		out["gated"] = m.Gated
	}
	if m.PipelineTag != "" {
		out["pipeline_tag"] = m.PipelineTag
	}
	if m.LibraryName != "" {
		out["library_name"] = m.LibraryName
	}
	if m.Tags != nil {
		out["tags"] = m.Tags
	}
	if _, ok := out["author"]; !ok {
		if owner, _, ok := strings.Cut(m.ID, "/"); ok {
			out["author"] = owner
		}
	}
	siblings := make([]map[string]any, 0, len(m.Files))
	var used int64
	for _, f := range m.Files {
		used += f.Size
		sib := map[string]any{"rfilename": f.Name}
		if blobs {
			sib["blobId"] = f.blobID(m.ID)
			sib["size"] = f.Size
			if l := f.lfsInfo(m.ID, "sha256"); l != nil {
				sib["lfs"] = l
			}
		}
		siblings = append(siblings, sib)
	}
	out["siblings"] = siblings
	out["usedStorage"] = used
	if m.Parameters != nil {
		var total int64
		for _, n := range m.Parameters {
			total += n
		}
		out["safetensors"] = map[string]any{"parameters": m.Parameters, "total": total}
	} else {
		delete(out, "safetensors")
	}
	return out
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	tok = strings.TrimSpace(tok)
	return tok, ok && tok != ""
}

func redirect(w http.ResponseWriter, loc string) {
	w.Header().Set("Location", loc)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusTemporaryRedirect)
	_, _ = fmt.Fprintf(w, "Temporary Redirect. Redirecting to %s", loc)
}

func writeError(w http.ResponseWriter, status int, code, message, body string) {
	h := w.Header()
	if code != "" {
		h.Set("X-Error-Code", code)
	}
	if message != "" {
		h.Set("X-Error-Message", message)
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": body})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func contentType(name string) string {
	if strings.HasSuffix(name, ".json") {
		return "application/json"
	}
	return "application/octet-stream"
}

func fakeSHA(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func fakeSHA256(s string) string {
	sum := sha1.Sum([]byte("lfs:" + s))
	return hex.EncodeToString(sum[:]) + hex.EncodeToString(sum[:12])
}

// ---- fixtures ----

// fixtureInfo is the part of a fixture's info.json decoded into Model.
type fixtureInfo struct {
	ID          string          `json:"id"`
	SHA         string          `json:"sha"`
	Private     bool            `json:"private"`
	Disabled    bool            `json:"disabled"`
	Gated       json.RawMessage `json:"gated"`
	PipelineTag string          `json:"pipeline_tag"`
	LibraryName string          `json:"library_name"`
	Tags        []string        `json:"tags"`
	Siblings    []struct {
		RFilename string `json:"rfilename"`
		Size      int64  `json:"size"`
	} `json:"siblings"`
	Safetensors *struct {
		Parameters map[string]int64 `json:"parameters"`
	} `json:"safetensors"`
}

// typedFields are the info fields Model carries; the rest pass through.
var typedFields = []string{"id", "modelId", "sha", "private", "disabled", "gated", "pipeline_tag",
	"library_name", "tags", "siblings", "safetensors", "usedStorage"}

func fixtureIDs() ([]string, error) {
	var ids []string
	err := fs.WalkDir(fixtures, "fixtures/models", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "info.json" {
			ids = append(ids, strings.TrimPrefix(path.Dir(p), "fixtures/models/"))
		}
		return nil
	})
	sort.Strings(ids)
	return ids, err
}

func (s *Server) loadFixtures() error {
	ids, err := fixtureIDs()
	if err != nil {
		return err
	}
	for _, id := range ids {
		rp, err := loadFixture(id)
		if err != nil {
			return fmt.Errorf("fixture %s: %w", id, err)
		}
		s.repos[strings.ToLower(rp.model.ID)] = rp
	}
	b, err := fixtures.ReadFile("fixtures/renames.json")
	if err != nil {
		return err
	}
	var renames map[string]string
	if err := json.Unmarshal(b, &renames); err != nil {
		return fmt.Errorf("renames.json: %w", err)
	}
	for from, to := range renames {
		if _, ok := s.repos[strings.ToLower(to)]; !ok {
			return fmt.Errorf("renames.json: %s → %s: no such fixture", from, to)
		}
		s.renames[strings.ToLower(from)] = to
	}
	return nil
}

func loadFixture(id string) (*repo, error) {
	dir := "fixtures/models/" + id
	b, err := fixtures.ReadFile(dir + "/info.json")
	if err != nil {
		return nil, err
	}
	var fi fixtureInfo
	if err := json.Unmarshal(b, &fi); err != nil {
		return nil, fmt.Errorf("info.json: %w", err)
	}
	if fi.ID != id {
		return nil, fmt.Errorf("info.json id %q does not match its folder", fi.ID)
	}
	var extra map[string]json.RawMessage
	if err := json.Unmarshal(b, &extra); err != nil {
		return nil, fmt.Errorf("info.json: %w", err)
	}
	for _, k := range typedFields {
		delete(extra, k)
	}
	m := Model{ID: fi.ID, SHA: fi.SHA, Private: fi.Private, Disabled: fi.Disabled,
		PipelineTag: fi.PipelineTag, LibraryName: fi.LibraryName, Tags: fi.Tags}
	var gated string
	if json.Unmarshal(fi.Gated, &gated) == nil {
		m.Gated = gated
	}
	if fi.Safetensors != nil {
		m.Parameters = fi.Safetensors.Parameters
	}
	for _, sib := range fi.Siblings {
		f := File{Name: sib.RFilename, Size: sib.Size}
		if content, err := fixtures.ReadFile(dir + "/files/" + sib.RFilename); err == nil {
			f.Content = content
			if int64(len(content)) != sib.Size {
				return nil, fmt.Errorf("%s: size %d in info.json, %d in files/", sib.RFilename, sib.Size, len(content))
			}
			if err := f.hashes(); err != nil {
				return nil, err
			}
		}
		m.Files = append(m.Files, f)
	}
	return &repo{model: m, extra: extra}, nil
}
