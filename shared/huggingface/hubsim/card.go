package hubsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"
)

// maxCardBytes bounds the model card LoadDir reads (its front matter is at
// the top).
const maxCardBytes = 1 << 20

// readRepoMeta reads a repository folder's metadata as the Hub does: the
// model card's front matter (README.md) says pipeline_tag, library_name
// and tags; what it leaves out, the config files say (see inferLibrary and
// inferPipeline). The tags are the card's, then the library, "safetensors"
// when a weight file is one, and config.json's model_type, each once.
func readRepoMeta(dir string, files []File) (repoMeta, error) {
	card, err := readCard(filepath.Join(dir, "README.md"))
	if err != nil {
		return repoMeta{}, err
	}
	cfg := readJSON(filepath.Join(dir, "config.json"))
	meta := card
	if meta.LibraryName == "" {
		meta.LibraryName = inferLibrary(files)
	}
	if meta.PipelineTag == "" {
		meta.PipelineTag = inferPipeline(meta.LibraryName, cfg, readJSON(filepath.Join(dir, "model_index.json")))
	}
	tags := slices.Clone(card.Tags)
	add := func(tag string) {
		if tag != "" && !slices.Contains(tags, tag) {
			tags = append(tags, tag)
		}
	}
	add(meta.LibraryName)
	if slices.ContainsFunc(files, func(f File) bool { return strings.HasSuffix(f.Name, ".safetensors") }) {
		add("safetensors")
	}
	if t, ok := cfg["model_type"].(string); ok {
		add(t)
	}
	meta.Tags = tags
	return meta, nil
}

// readCard reads the YAML front matter of a model card: the lines between
// a first line "---" and the next "---". A card without front matter (or
// no card) says nothing; front matter that is not YAML is an error, as the
// Hub refuses such a card on push.
func readCard(path string) (repoMeta, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return repoMeta{}, nil
	}
	if err != nil {
		return repoMeta{}, err
	}
	if len(b) > maxCardBytes {
		b = b[:maxCardBytes]
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	rest, ok := bytes.CutPrefix(b, []byte("---\n"))
	if !ok {
		return repoMeta{}, nil
	}
	front, _, ok := bytes.Cut(rest, []byte("\n---"))
	if !ok {
		return repoMeta{}, errors.New("README.md: the front matter has no closing ---")
	}
	var fm map[string]any
	if err := yaml.Unmarshal(front, &fm); err != nil {
		return repoMeta{}, fmt.Errorf("README.md front matter: %w", err)
	}
	var meta repoMeta
	meta.PipelineTag, _ = fm["pipeline_tag"].(string)
	meta.LibraryName, _ = fm["library_name"].(string)
	switch t := fm["tags"].(type) {
	case string: // a single tag
		meta.Tags = []string{t}
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok {
				meta.Tags = append(meta.Tags, s)
			}
		}
	}
	return meta, nil
}

// readJSON is a config file's top-level object; nil when the file is
// missing or not a JSON object (the Hub then infers nothing from it).
func readJSON(path string) map[string]any {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// inferLibrary is the library the Hub infers from a repository's files
// when its card names none.
func inferLibrary(files []File) string {
	has := func(name string) bool {
		return slices.ContainsFunc(files, func(f File) bool { return f.Name == name })
	}
	switch {
	case has("model_index.json"):
		return "diffusers"
	case has("config_sentence_transformers.json"), has("modules.json"):
		return "sentence-transformers"
	case has("config.json"):
		return "transformers"
	}
	return ""
}

// architectureTasks maps the suffix of a transformers architecture
// (config.json "architectures") to the task of its auto class, the first
// match in this order.
var architectureTasks = []struct{ suffix, task string }{
	{"ForCausalLM", "text-generation"},
	{"ForMaskedLM", "fill-mask"},
	{"ForSequenceClassification", "text-classification"},
	{"ForTokenClassification", "token-classification"},
	{"ForQuestionAnswering", "question-answering"},
	{"ForImageClassification", "image-classification"},
	{"ForObjectDetection", "object-detection"},
	{"ForAudioClassification", "audio-classification"},
	{"ForCTC", "automatic-speech-recognition"},
	{"ForSpeechSeq2Seq", "automatic-speech-recognition"},
	{"ForSeq2SeqLM", "text2text-generation"},
	{"Model", "feature-extraction"},
}

// speechSeq2Seq are the model types whose ForConditionalGeneration
// architecture is a speech recogniser.
var speechSeq2Seq = []string{"whisper", "speech_to_text", "speecht5", "seamless_m4t"}

// inferPipeline is the task the Hub infers from the config files when the
// card names none: a diffusers pipeline's class (model_index.json
// _class_name), a sentence-transformers model's similarity, a transformers
// model's first architecture; "" when they say nothing.
func inferPipeline(library string, cfg, modelIndex map[string]any) string {
	switch library {
	case "diffusers":
		class, _ := modelIndex["_class_name"].(string)
		switch {
		case class == "":
			return ""
		case strings.Contains(class, "Img2Img"), strings.Contains(class, "Inpaint"):
			return "image-to-image"
		case strings.Contains(class, "Video"):
			return "text-to-video"
		}
		return "text-to-image"
	case "sentence-transformers":
		return "sentence-similarity"
	case "transformers":
		archs, _ := cfg["architectures"].([]any)
		if len(archs) == 0 {
			return ""
		}
		arch, _ := archs[0].(string)
		if strings.HasSuffix(arch, "ForConditionalGeneration") {
			if t, _ := cfg["model_type"].(string); slices.Contains(speechSeq2Seq, t) {
				return "automatic-speech-recognition"
			}
			return ""
		}
		for _, at := range architectureTasks {
			if strings.HasSuffix(arch, at.suffix) {
				return at.task
			}
		}
	}
	return ""
}
