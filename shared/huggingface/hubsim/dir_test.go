package hubsim_test

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
)

// tinyRepo writes a small Hub-shaped repository under root and returns its
// files' contents by name.
func tinyRepo(t *testing.T, root, id string) map[string][]byte {
	t.Helper()
	weights := bytes.Repeat([]byte{0, 1, 2, 3, 4, 5, 6, 7}, 4096) // 32 KiB
	files := map[string][]byte{
		"config.json":                  []byte(`{"model_type":"bert","hidden_size":32}`),
		"vocab.txt":                    []byte("[PAD]\n[UNK]\nred\nsquare\n"),
		"model.safetensors":            weights,
		"1_Pooling/config.json":        []byte(`{"word_embedding_dimension":32}`),
		".cache/huggingface/ignored":   []byte("not a repo file"),
		"visgate-repo.json":            []byte(`{"pipeline_tag":"sentence-similarity","library_name":"sentence-transformers","tags":["sentence-transformers","bert"]}`),
		"unet/diffusion_pytorch_model": []byte("no extension: kept in git"),
	}
	for name, b := range files {
		p := filepath.Join(root, filepath.FromSlash(id), filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	delete(files, ".cache/huggingface/ignored")
	delete(files, "visgate-repo.json")
	return files
}

func gitOID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestLoadDirServesRepoFromDisk(t *testing.T) {
	root := t.TempDir()
	files := tinyRepo(t, root, hubsim.TinySentenceEmbeddings)
	s := hubsim.New()
	defer s.Close()
	ids, err := s.LoadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{hubsim.TinySentenceEmbeddings}, ids); diff != "" {
		t.Fatalf("ids (-want +got):\n%s", diff)
	}
	m := mustModel(t, s, hubsim.TinySentenceEmbeddings)

	// Model info: metadata from visgate-repo.json (overriding what the
	// config files say: transformers), siblings with real sizes
	// and hashes; the weight file is in LFS, the rest in git.
	a, body, _ := get(t, s, "GET", "/api/models/"+hubsim.TinySentenceEmbeddings+"/revision/main?blobs=true", "")
	if a.Status != 200 {
		t.Fatalf("info: %+v", a)
	}
	var info struct {
		SHA         string `json:"sha"`
		PipelineTag string `json:"pipeline_tag"`
		LibraryName string `json:"library_name"`
		Siblings    []struct {
			RFilename string `json:"rfilename"`
			Size      int64  `json:"size"`
			BlobID    string `json:"blobId"`
			LFS       *struct {
				SHA256 string `json:"sha256"`
				Size   int64  `json:"size"`
			} `json:"lfs"`
		} `json:"siblings"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	if info.SHA != m.SHA || len(m.SHA) != 40 || info.PipelineTag != "sentence-similarity" || info.LibraryName != "sentence-transformers" {
		t.Errorf("info sha %q (model %q), pipeline_tag %q, library_name %q", info.SHA, m.SHA, info.PipelineTag, info.LibraryName)
	}
	if len(info.Siblings) != len(files) {
		t.Errorf("%d siblings, want %d: %+v", len(info.Siblings), len(files), info.Siblings)
	}
	for _, sib := range info.Siblings {
		b, ok := files[sib.RFilename]
		if !ok {
			t.Errorf("unexpected sibling %s", sib.RFilename)
			continue
		}
		if sib.Size != int64(len(b)) {
			t.Errorf("%s: size %d, want %d", sib.RFilename, sib.Size, len(b))
		}
		isLFS := strings.HasSuffix(sib.RFilename, ".safetensors")
		switch {
		case isLFS && (sib.LFS == nil || sib.LFS.SHA256 != sha256Hex(b) || sib.LFS.Size != int64(len(b))):
			t.Errorf("%s: lfs %+v, want sha256 %s", sib.RFilename, sib.LFS, sha256Hex(b))
		case !isLFS && (sib.LFS != nil || sib.BlobID != gitOID(b)):
			t.Errorf("%s: lfs %+v, blobId %s; want git blob %s", sib.RFilename, sib.LFS, sib.BlobID, gitOID(b))
		}
	}

	// A git file: 200 with its bytes, its git blob id as ETag, the commit.
	a, body, h := get(t, s, "GET", "/"+hubsim.TinySentenceEmbeddings+"/resolve/"+m.SHA+"/1_Pooling/config.json", "")
	if a.Status != 200 || string(body) != string(files["1_Pooling/config.json"]) ||
		h.Get("ETag") != `"`+gitOID(files["1_Pooling/config.json"])+`"` || h.Get("X-Repo-Commit") != m.SHA {
		t.Errorf("GET git file: %+v %q ETag %s commit %s", a, body, h.Get("ETag"), h.Get("X-Repo-Commit"))
	}

	// An LFS file: HEAD answers 302 to the CDN with the linked etag and size.
	weights := files["model.safetensors"]
	a, _, h = get(t, s, "HEAD", "/"+hubsim.TinySentenceEmbeddings+"/resolve/main/model.safetensors", "")
	wantHeaders := map[string]string{
		"X-Repo-Commit": m.SHA, "X-Linked-Etag": `"` + sha256Hex(weights) + `"`,
		"X-Linked-Size": fmt.Sprint(len(weights)), "ETag": `"` + sha256Hex(weights) + `"`,
	}
	for k, v := range wantHeaders {
		if h.Get(k) != v {
			t.Errorf("HEAD weights: %s = %q, want %q", k, h.Get(k), v)
		}
	}
	if a.Status != http.StatusFound || !strings.HasPrefix(a.Location, s.CDNURL+"/") || s.CDNURL == s.URL {
		t.Fatalf("HEAD weights: %+v, want 302 to the CDN %s", a, s.CDNURL)
	}

	// The CDN serves the bytes, whole and by range.
	resp, err := http.Get(a.Location)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, weights) {
		t.Errorf("CDN GET: %d, %d bytes (want %d)", resp.StatusCode, len(got), len(weights))
	}
	req, _ := http.NewRequest(http.MethodGet, a.Location, nil)
	req.Header.Set("Range", "bytes=100-")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, weights[100:]) ||
		resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-%d/%d", len(weights)-1, len(weights)) {
		t.Errorf("CDN range GET: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(got))
	}
	if resp, err := http.Get(s.CDNURL + "/repos/" + strings.Repeat("0", 64)); err != nil || resp.StatusCode != 404 {
		t.Errorf("CDN unknown blob: %v %v", resp, err)
	}
}

func TestTree(t *testing.T) {
	root := t.TempDir()
	files := tinyRepo(t, root, hubsim.TinySentenceEmbeddings)
	s := hubsim.New()
	defer s.Close()
	if _, err := s.LoadDir(root); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		Type string `json:"type"`
		Path string `json:"path"`
		Size int64  `json:"size"`
		LFS  *struct {
			OID string `json:"oid"`
		} `json:"lfs"`
	}
	list := func(path string) (answer, []entry) {
		a, body, _ := get(t, s, "GET", path, "")
		var out []entry
		if a.Status == 200 {
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
		}
		return a, out
	}
	base := "/api/models/" + hubsim.TinySentenceEmbeddings + "/tree/main"
	_, top := list(base)
	want := []entry{
		{Type: "directory", Path: "1_Pooling"},
		{Type: "file", Path: "config.json", Size: int64(len(files["config.json"]))},
		{Type: "file", Path: "model.safetensors", Size: int64(len(files["model.safetensors"])), LFS: &struct {
			OID string `json:"oid"`
		}{OID: sha256Hex(files["model.safetensors"])}},
		{Type: "directory", Path: "unet"},
		{Type: "file", Path: "vocab.txt", Size: int64(len(files["vocab.txt"]))},
	}
	if diff := cmp.Diff(want, top); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	_, all := list(base + "?recursive=true&expand=false")
	var paths []string
	for _, e := range all {
		paths = append(paths, e.Type[:1]+":"+e.Path)
	}
	wantPaths := []string{"d:1_Pooling", "f:1_Pooling/config.json", "f:config.json", "f:model.safetensors",
		"d:unet", "f:unet/diffusion_pytorch_model", "f:vocab.txt"}
	if diff := cmp.Diff(wantPaths, paths); diff != "" {
		t.Errorf("recursive tree (-want +got):\n%s", diff)
	}
	if _, sub := list(base + "/1_Pooling"); len(sub) != 1 || sub[0].Path != "1_Pooling/config.json" {
		t.Errorf("tree of 1_Pooling: %+v", sub)
	}
	if a, _ := list(base + "/nope"); a.Status != 404 || a.Code != "EntryNotFound" {
		t.Errorf("tree of a missing folder: %+v", a)
	}
}

// TestLoadDirWithoutOverride: a repository folder without
// visgate-repo.json is served, its metadata read from its model card and
// config files as the Hub reads them; an empty folder is no repository.
func TestLoadDirWithoutOverride(t *testing.T) {
	root := t.TempDir()
	for name, content := range map[string]string{
		"acme/classifier/README.md":         "---\nlicense: apache-2.0\ntags:\n- sentiment\n---\n# Classifier\n",
		"acme/classifier/config.json":       `{"architectures":["DistilBertForSequenceClassification"],"model_type":"distilbert"}`,
		"acme/classifier/model.safetensors": "weights",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "acme", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := hubsim.New()
	defer s.Close()
	ids, err := s.LoadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"acme/classifier"}, ids); diff != "" {
		t.Fatalf("ids (-want +got):\n%s", diff)
	}
	a, body, _ := get(t, s, "GET", "/api/models/acme/classifier", "")
	if a.Status != 200 {
		t.Fatalf("info: %+v", a)
	}
	var info struct {
		PipelineTag string   `json:"pipeline_tag"`
		LibraryName string   `json:"library_name"`
		Tags        []string `json:"tags"`
		Siblings    []struct {
			RFilename string `json:"rfilename"`
		} `json:"siblings"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	if info.PipelineTag != "text-classification" || info.LibraryName != "transformers" {
		t.Errorf("pipeline_tag %q, library_name %q; want text-classification, transformers", info.PipelineTag, info.LibraryName)
	}
	if diff := cmp.Diff([]string{"sentiment", "transformers", "safetensors", "distilbert"}, info.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if len(info.Siblings) != 3 {
		t.Errorf("siblings %+v, want README.md, config.json and model.safetensors", info.Siblings)
	}
}

func TestLoadDirErrors(t *testing.T) {
	s := hubsim.New()
	defer s.Close()
	if _, err := s.LoadDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no model repository") {
		t.Errorf("empty dir: %v", err)
	}
	root := t.TempDir()
	p := filepath.Join(root, "acme", "bad", "visgate-repo.json")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadDir(root); err == nil || !strings.Contains(err.Error(), "acme/bad") {
		t.Errorf("bad visgate-repo.json: %v", err)
	}
}

// TestHuggingFaceHubDownloads runs the real huggingface_hub against the
// simulator: snapshot_download with allow_patterns and hf_hub_download,
// then checks the bytes. It needs a Python with huggingface_hub: the
// worker's environment (VISGATE_INFERENCE_VENV, `make inference-env`).
func TestHuggingFaceHubDownloads(t *testing.T) {
	venv := os.Getenv("VISGATE_INFERENCE_VENV")
	if venv == "" {
		msg := "VISGATE_INFERENCE_VENV is unset: run `make inference-env` and eval its output to run huggingface_hub against the simulator"
		if os.Getenv("REQUIRE_INFERENCE") == "1" {
			t.Fatal(msg + " (REQUIRE_INFERENCE=1)")
		}
		t.Skip(msg)
	}
	root := t.TempDir()
	files := tinyRepo(t, root, hubsim.TinySentenceEmbeddings)
	s := hubsim.New()
	defer s.Close()
	if _, err := s.LoadDir(root); err != nil {
		t.Fatal(err)
	}
	m := mustModel(t, s, hubsim.TinySentenceEmbeddings)
	out := t.TempDir()
	script := `
import json, os, sys
from huggingface_hub import snapshot_download, hf_hub_download
repo, rev, out = sys.argv[1], sys.argv[2], sys.argv[3]
d = snapshot_download(repo, revision=rev, allow_patterns=["config.json", "model.safetensors", "1_Pooling/*"], cache_dir=out)
p = hf_hub_download(repo, "vocab.txt", revision=rev, cache_dir=out)
print(json.dumps({"dir": d, "vocab": p}))
`
	cmd := exec.Command(filepath.Join(venv, "bin", "python"), "-c", script, hubsim.TinySentenceEmbeddings, m.SHA, out)
	cmd.Env = append(os.Environ(), "HF_ENDPOINT="+s.URL, "HF_HUB_DISABLE_TELEMETRY=1", "HF_HUB_ETAG_TIMEOUT=5",
		"HF_HOME="+filepath.Join(out, "home"))
	cmd.WaitDelay = 5 * time.Second
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("huggingface_hub: %v\n%s", err, b)
	}
	var res struct{ Dir, Vocab string }
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("output %q: %v", b, err)
	}
	for _, name := range []string{"config.json", "model.safetensors", "1_Pooling/config.json"} {
		got, err := os.ReadFile(filepath.Join(res.Dir, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, files[name]) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", name, len(got), err, len(files[name]))
		}
	}
	if _, err := os.Stat(filepath.Join(res.Dir, "unet")); !os.IsNotExist(err) {
		t.Errorf("a file outside allow_patterns was downloaded (%v)", err)
	}
	if got, err := os.ReadFile(res.Vocab); err != nil || !bytes.Equal(got, files["vocab.txt"]) {
		t.Errorf("vocab.txt: %q, %v", got, err)
	}
	// The weights came from the CDN, without the Hub in between.
	cdn := 0
	for _, r := range s.Log() {
		if strings.HasPrefix(r.Path, "cdn:") && r.Method == "GET" {
			cdn++
		}
	}
	if cdn != 1 {
		t.Errorf("%d CDN downloads, want 1 (model.safetensors): %+v", cdn, s.Log())
	}
}
