package hubsim

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// How files are served, as on the Hub:
//
//   - A file stored in git (configs, tokenizers: small, not a weight format)
//     answers /resolve with 200, its git blob id as ETag, X-Repo-Commit and
//     its bytes (Range requests honoured).
//   - A file stored in LFS (a weight format, or over lfsThreshold) answers
//     /resolve with 302 to the simulator's CDN (another origin, so that
//     huggingface_hub drops the Authorization header as it does for the
//     real CDN), with X-Repo-Commit, X-Linked-Etag (its sha256), X-Linked-Size
//     and ETag. The CDN serves the bytes with Range support.
//   - A fixture file known only by its size (no Content, no Path) answers
//     200 with X-Linked-Size and no body: enough for metadata look-ups.
//
// No Xet headers are ever sent, so huggingface_hub downloads over plain HTTP.

// lfsThreshold is the size above which the Hub stores any file in LFS.
const lfsThreshold = 10 << 20

// lfsExts are the extensions .gitattributes sends to LFS in a new Hub repo.
var lfsExts = map[string]bool{
	"safetensors": true, "bin": true, "pt": true, "pth": true, "ckpt": true, "h5": true, "msgpack": true,
	"gguf": true, "onnx": true, "ot": true, "tflite": true, "pb": true, "npy": true, "npz": true, "pkl": true,
	"model": true, "zip": true, "tar": true, "gz": true, "tgz": true, "joblib": true, "arrow": true, "parquet": true,
}

// hasData reports whether the simulator can serve the file's bytes.
func (f *File) hasData() bool { return f.Content != nil || f.Path != "" }

// lfs reports whether the Hub would keep the file in LFS.
func (f *File) lfs() bool {
	ext := strings.ToLower(path.Ext(f.Name))
	return lfsExts[strings.TrimPrefix(ext, ".")] || f.Size > lfsThreshold
}

// hashes fills the file's git blob id and sha256 from its bytes, once.
func (f *File) hashes() error {
	if f.gitOID != "" || !f.hasData() {
		return nil
	}
	r, closeFn, err := f.open()
	if err != nil {
		return err
	}
	defer closeFn()
	git := sha1.New()
	fmt.Fprintf(git, "blob %d\x00", f.Size)
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(git, sum), r)
	if err != nil {
		return fmt.Errorf("hash %s: %w", f.Name, err)
	}
	if n != f.Size {
		return fmt.Errorf("%s: %d bytes read, size says %d", f.Name, n, f.Size)
	}
	f.gitOID = hex.EncodeToString(git.Sum(nil))
	f.sha256 = hex.EncodeToString(sum.Sum(nil))
	return nil
}

// open returns the file's bytes as a ReadSeeker.
func (f *File) open() (io.ReadSeeker, func(), error) {
	if f.Content != nil {
		return bytes.NewReader(f.Content), func() {}, nil
	}
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", f.Name, err)
	}
	return fh, func() { fh.Close() }, nil
}

// blobID is the git object id the Hub reports for the file (the pointer
// file's id for LFS files; made up for files known only by size).
func (f *File) blobID(repoID string) string {
	if f.gitOID != "" && !f.lfs() {
		return f.gitOID
	}
	return fakeSHA(repoID + "/" + f.Name)
}

// lfsOID is the sha256 of an LFS file's bytes.
func (f *File) lfsOID(repoID string) string {
	if f.sha256 != "" {
		return f.sha256
	}
	return fakeSHA256(repoID + "/" + f.Name)
}

// lfsInfo is the "lfs" object of a sibling or tree entry, nil for a file
// kept in git. keyName is "sha256" (model info) or "oid" (tree).
func (f *File) lfsInfo(repoID, keyName string) map[string]any {
	if f.hasData() && !f.lfs() {
		return nil
	}
	return map[string]any{keyName: f.lfsOID(repoID), "size": f.Size, "pointerSize": 134}
}

// serveFile answers /resolve for one file of rp. It runs under s.mu and
// returns what must be written after the lock is released (file bodies), or
// nil when the answer is complete.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, rp *repo, f *File) func() {
	h := w.Header()
	h.Set("X-Repo-Commit", rp.model.SHA)
	h.Set("Accept-Ranges", "bytes")
	switch {
	case !f.hasData():
		h.Set("ETag", `"`+fakeSHA(rp.model.ID+"/"+f.Name)+`"`)
		h.Set("X-Linked-Size", strconv.FormatInt(f.Size, 10))
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	case f.lfs():
		oid := f.lfsOID(rp.model.ID)
		s.blobs[oid] = *f
		loc := s.CDNURL + "/repos/" + oid + "?filename=" + path.Base(f.Name)
		h.Set("ETag", `"`+oid+`"`)
		h.Set("X-Linked-Etag", `"`+oid+`"`)
		h.Set("X-Linked-Size", strconv.FormatInt(f.Size, 10))
		h.Set("Location", loc)
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusFound)
		if r.Method == http.MethodGet {
			_, _ = fmt.Fprintf(w, "Found. Redirecting to %s", loc)
		}
		return nil
	}
	file := *f
	h.Set("ETag", `"`+f.gitOID+`"`)
	h.Set("Content-Type", contentType(f.Name))
	return func() { serveBytes(w, r, &file) }
}

// serveBytes writes a file's bytes, honouring Range and HEAD.
func serveBytes(w http.ResponseWriter, r *http.Request, f *File) {
	rs, closeFn, err := f.open()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", "", "the simulator could not read "+f.Name)
		return
	}
	defer closeFn()
	http.ServeContent(w, r, "", time.Time{}, rs)
}

// serveCDN serves LFS blobs handed out by /resolve redirects:
// GET|HEAD /repos/{sha256}.
func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	oid, ok := strings.CutPrefix(r.URL.Path, "/repos/")
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: "cdn:" + r.URL.Path, Query: r.URL.RawQuery})
	f, found := s.blobs[oid]
	s.mu.Unlock()
	if !ok || !found {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>")
		return
	}
	w.Header().Set("ETag", `"`+oid+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`inline; filename*=UTF-8''%s; filename="%s";`, path.Base(f.Name), path.Base(f.Name)))
	serveBytes(w, r, &f)
}

// treeEntries lists the repo's files and folders under dir (recursively or
// not), as GET /api/models/{id}/tree/{rev}/{dir} does.
func (rp *repo) treeEntries(dir string, recursive bool) ([]map[string]any, bool) {
	dir = strings.Trim(dir, "/")
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	folders := map[string]bool{}
	var out []map[string]any
	found := dir == ""
	for i := range rp.model.Files {
		f := &rp.model.Files[i]
		rest, ok := strings.CutPrefix(f.Name, prefix)
		if !ok {
			continue
		}
		found = true
		parts := strings.Split(rest, "/")
		// Folders between dir and the file.
		for depth := 1; depth < len(parts); depth++ {
			if !recursive && depth > 1 {
				break
			}
			folder := prefix + strings.Join(parts[:depth], "/")
			if !folders[folder] {
				folders[folder] = true
				out = append(out, map[string]any{"type": "directory", "oid": fakeSHA("tree:" + rp.model.ID + "/" + folder), "size": 0, "path": folder})
			}
		}
		if !recursive && len(parts) > 1 {
			continue
		}
		e := map[string]any{"type": "file", "oid": f.blobID(rp.model.ID), "size": f.Size, "path": f.Name}
		if l := f.lfsInfo(rp.model.ID, "oid"); l != nil {
			e["lfs"] = l
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i]["path"].(string) < out[j]["path"].(string) })
	if out == nil {
		out = []map[string]any{}
	}
	return out, found
}
