package hubsim

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The ids of the tiny real models, fixed by the worker contract.
// One per family the worker serves (inference/tools/make_tiny_models.py).
const (
	TinyTextToImage         = "visgate-tiny/text-to-image"
	TinySentenceEmbeddings  = "visgate-tiny/sentence-embeddings"
	TinySpeechRecognition   = "visgate-tiny/speech-recognition"
	TinyTextClassification  = "visgate-tiny/text-classification"
	TinyTokenClassification = "visgate-tiny/token-classification"
	TinyFillMask            = "visgate-tiny/fill-mask"
	TinyImageClassification = "visgate-tiny/image-classification"
	TinyFeatureExtraction   = "visgate-tiny/feature-extraction"
)

const (
	repoMetaFile          = "visgate-repo.json"
	maxRepoMetaBytes      = 64 << 10
	maxFilesPerRepoOnDisk = 10000
)

// repoMeta is a repository folder's visgate-repo.json: the Hub metadata the
// folder itself cannot say.
type repoMeta struct {
	PipelineTag string   `json:"pipeline_tag"`
	LibraryName string   `json:"library_name"`
	Tags        []string `json:"tags"`
}

// LoadDir serves every repository under root laid out as root/owner/name/
// with a visgate-repo.json (pipeline_tag, library_name, tags) beside the
// repository's files, which are served from disk (visgate-repo.json itself is
// not a repo file). The commit sha is derived from the files' contents. It
// returns the ids it loaded, sorted.
func (s *Server) LoadDir(root string) ([]string, error) {
	metas, err := filepath.Glob(filepath.Join(root, "*", "*", repoMetaFile))
	if err != nil {
		return nil, fmt.Errorf("hubsim: list %s: %w", root, err)
	}
	if len(metas) == 0 {
		return nil, fmt.Errorf("hubsim: %s holds no model repository (no */*/%s)", root, repoMetaFile)
	}
	var ids []string
	for _, meta := range metas {
		dir := filepath.Dir(meta)
		id := filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
		m, err := loadRepoDir(id, dir)
		if err != nil {
			return nil, fmt.Errorf("hubsim: %s: %w", id, err)
		}
		s.AddModel(m)
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

func loadRepoDir(id, dir string) (Model, error) {
	b, err := os.ReadFile(filepath.Join(dir, repoMetaFile))
	if err != nil {
		return Model{}, err
	}
	if len(b) > maxRepoMetaBytes {
		return Model{}, fmt.Errorf("%s is larger than %d bytes", repoMetaFile, maxRepoMetaBytes)
	}
	var meta repoMeta
	if err := json.Unmarshal(b, &meta); err != nil {
		return Model{}, fmt.Errorf("%s: %w", repoMetaFile, err)
	}
	m := Model{ID: id, PipelineTag: meta.PipelineTag, LibraryName: meta.LibraryName, Tags: meta.Tags}
	commit := sha1.New()
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if rel == repoMetaFile || strings.HasPrefix(d.Name(), ".") || !d.Type().IsRegular() {
			return nil
		}
		if len(m.Files) >= maxFilesPerRepoOnDisk {
			return errors.New("too many files")
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := File{Name: rel, Size: info.Size(), Path: p}
		if err := f.hashes(); err != nil {
			return err
		}
		fmt.Fprintf(commit, "%s %s\n", f.Name, f.gitOID)
		m.Files = append(m.Files, f)
		return nil
	})
	if err != nil {
		return Model{}, err
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Name < m.Files[j].Name })
	m.SHA = hex.EncodeToString(commit.Sum(nil))
	return m, nil
}
