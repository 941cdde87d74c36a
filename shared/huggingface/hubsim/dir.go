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

// repoMeta is the Hub metadata of a repository: what the Hub reads from its
// model card and config files (readRepoMeta), or what a visgate-repo.json
// beside the files says instead (an override for what the files cannot
// say).
type repoMeta struct {
	PipelineTag string   `json:"pipeline_tag"`
	LibraryName string   `json:"library_name"`
	Tags        []string `json:"tags"`
}

// LoadDir serves every repository under root laid out as root/owner/name/
// (a folder holding at least one file), its files served from disk. Its
// pipeline_tag, library_name and tags are read as the Hub reads them: from
// the model card's YAML front matter (README.md), else from the config
// files (model_index.json: diffusers; config_sentence_transformers.json or
// modules.json: sentence-transformers; config.json: transformers, the task
// from its architectures). A visgate-repo.json in the folder, when there
// is one, overrides each field it sets, and is not a repo file. The commit
// sha is derived from the files' contents. It returns the ids it loaded,
// sorted.
func (s *Server) LoadDir(root string) ([]string, error) {
	dirs, err := filepath.Glob(filepath.Join(root, "*", "*"))
	if err != nil {
		return nil, fmt.Errorf("hubsim: list %s: %w", root, err)
	}
	var ids []string
	for _, dir := range dirs {
		owner, name := filepath.Base(filepath.Dir(dir)), filepath.Base(dir)
		if strings.HasPrefix(owner, ".") || strings.HasPrefix(name, ".") {
			continue
		}
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			continue
		}
		id := owner + "/" + name
		m, err := loadRepoDir(id, dir)
		if err != nil {
			return nil, fmt.Errorf("hubsim: %s: %w", id, err)
		}
		if len(m.Files) == 0 {
			continue // an empty folder is no repository
		}
		s.AddModel(m)
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("hubsim: %s holds no model repository (no owner/name/ folder with files)", root)
	}
	sort.Strings(ids)
	return ids, nil
}

func loadRepoDir(id, dir string) (Model, error) {
	m := Model{ID: id}
	commit := sha1.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
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
	meta, err := readRepoMeta(dir, m.Files)
	if err != nil {
		return Model{}, err
	}
	override, err := readOverride(dir)
	if err != nil {
		return Model{}, err
	}
	m.PipelineTag, m.LibraryName, m.Tags = meta.PipelineTag, meta.LibraryName, meta.Tags
	if override.PipelineTag != "" {
		m.PipelineTag = override.PipelineTag
	}
	if override.LibraryName != "" {
		m.LibraryName = override.LibraryName
	}
	if override.Tags != nil {
		m.Tags = override.Tags
	}
	return m, nil
}

// readOverride is the folder's visgate-repo.json, or nothing when it has
// none.
func readOverride(dir string) (repoMeta, error) {
	var meta repoMeta
	b, err := os.ReadFile(filepath.Join(dir, repoMetaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return meta, nil
	}
	if err != nil {
		return meta, err
	}
	if len(b) > maxRepoMetaBytes {
		return meta, fmt.Errorf("%s is larger than %d bytes", repoMetaFile, maxRepoMetaBytes)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return meta, fmt.Errorf("%s: %w", repoMetaFile, err)
	}
	return meta, nil
}
