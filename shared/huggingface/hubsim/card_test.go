package hubsim

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeRepo writes files (name → content) into a new repository folder.
func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "acme", "model")
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestRepoMetaAsTheHubReadsIt: a repository's pipeline_tag, library_name
// and tags come from its model card's front matter, else from its config
// files; visgate-repo.json overrides each field it sets.
func TestRepoMetaAsTheHubReadsIt(t *testing.T) {
	const weights = "model.safetensors"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  repoMeta
	}{
		{"card says everything", map[string]string{
			"README.md":   "---\nlicense: mit\npipeline_tag: text-classification\nlibrary_name: transformers\ntags:\n- bert\n- 'sentiment'\n---\n\n# A model\n",
			"config.json": `{"architectures":["BertForMaskedLM"],"model_type":"bert"}`, weights: "w",
		}, repoMeta{"text-classification", "transformers", []string{"bert", "sentiment", "transformers", "safetensors"}}},
		{"card with CRLF and a single tag, task from the config", map[string]string{
			"README.md":   "---\r\ntags: audio\r\n---\r\nBody\r\n",
			"config.json": `{"architectures":["WhisperForConditionalGeneration"],"model_type":"whisper"}`,
		}, repoMeta{"automatic-speech-recognition", "transformers", []string{"audio", "transformers", "whisper"}}},
		{"no card: a transformers classifier", map[string]string{
			"config.json": `{"architectures":["BertForSequenceClassification"],"model_type":"bert"}`, weights: "w",
		}, repoMeta{"text-classification", "transformers", []string{"transformers", "safetensors", "bert"}}},
		{"base model: feature extraction", map[string]string{
			"config.json": `{"architectures":["BertModel"],"model_type":"bert"}`,
		}, repoMeta{"feature-extraction", "transformers", []string{"transformers", "bert"}}},
		{"causal LM", map[string]string{
			"config.json": `{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2"}`,
		}, repoMeta{"text-generation", "transformers", []string{"transformers", "qwen2"}}},
		{"image classifier", map[string]string{
			"config.json": `{"architectures":["ViTForImageClassification"],"model_type":"vit"}`,
		}, repoMeta{"image-classification", "transformers", []string{"transformers", "vit"}}},
		{"conditional generation that is no speech model: no task", map[string]string{
			"config.json": `{"architectures":["LlavaForConditionalGeneration"],"model_type":"llava"}`,
		}, repoMeta{"", "transformers", []string{"transformers", "llava"}}},
		{"diffusers text-to-image", map[string]string{
			"model_index.json": `{"_class_name":"StableDiffusionPipeline"}`, "unet/diffusion_pytorch_model.safetensors": "w",
		}, repoMeta{"text-to-image", "diffusers", []string{"diffusers", "safetensors"}}},
		{"diffusers img2img", map[string]string{
			"model_index.json": `{"_class_name":"StableDiffusionXLImg2ImgPipeline"}`,
		}, repoMeta{"image-to-image", "diffusers", []string{"diffusers"}}},
		{"sentence-transformers beats its config.json", map[string]string{
			"modules.json": `[]`, "config.json": `{"architectures":["BertModel"],"model_type":"bert"}`,
		}, repoMeta{"sentence-similarity", "sentence-transformers", []string{"sentence-transformers", "bert"}}},
		{"a card without front matter, a config that is not JSON", map[string]string{
			"README.md": "# Just prose\n", "config.json": "{",
		}, repoMeta{"", "transformers", []string{"transformers"}}},
		{"nothing to read", map[string]string{"notes.txt": "hi"}, repoMeta{"", "", nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeRepo(t, tc.files)
			m, err := loadRepoDir("acme/model", dir)
			if err != nil {
				t.Fatal(err)
			}
			got := repoMeta{m.PipelineTag, m.LibraryName, m.Tags}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRepoMetaOverride(t *testing.T) {
	files := map[string]string{
		"README.md":   "---\npipeline_tag: fill-mask\ntags: [bert]\n---\n",
		"config.json": `{"architectures":["BertForMaskedLM"],"model_type":"bert"}`,
	}
	for _, tc := range []struct {
		name, override string
		want           repoMeta
	}{
		{"task only", `{"pipeline_tag":"feature-extraction"}`, repoMeta{"feature-extraction", "transformers", []string{"bert", "transformers"}}},
		{"everything", `{"pipeline_tag":"text-classification","library_name":"custom","tags":["x"]}`, repoMeta{"text-classification", "custom", []string{"x"}}},
		{"nothing", `{}`, repoMeta{"fill-mask", "transformers", []string{"bert", "transformers"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withOverride := map[string]string{repoMetaFile: tc.override}
			for k, v := range files {
				withOverride[k] = v
			}
			m, err := loadRepoDir("acme/model", writeRepo(t, withOverride))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, repoMeta{m.PipelineTag, m.LibraryName, m.Tags}); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
			for _, f := range m.Files {
				if f.Name == repoMetaFile {
					t.Errorf("%s is served as a repo file", repoMetaFile)
				}
			}
		})
	}
}

func TestRepoMetaBadCard(t *testing.T) {
	for _, card := range []string{"---\npipeline_tag: [unclosed\n---\n", "---\npipeline_tag: x\n"} {
		_, err := loadRepoDir("acme/model", writeRepo(t, map[string]string{"README.md": card}))
		if err == nil || !strings.Contains(err.Error(), "README.md") {
			t.Errorf("card %q: err = %v, want one naming README.md", card, err)
		}
	}
}

// TestTinyModelsReadAsTheHubReadsThem: the worker's tiny real models
// (VISGATE_TINY_MODELS, `make inference-env`) carry a model card, as Hub
// repositories do, and no visgate-repo.json: read as the Hub reads them,
// each has its family's pipeline_tag and library_name, and its config files
// alone (the card taken away) say the same.
func TestTinyModelsReadAsTheHubReadsThem(t *testing.T) {
	root := os.Getenv("VISGATE_TINY_MODELS")
	if root == "" {
		t.Skip("VISGATE_TINY_MODELS is unset (`make inference-env` makes them)")
	}
	for id, want := range map[string][2]string{
		TinyTextToImage:         {"text-to-image", "diffusers"},
		TinySentenceEmbeddings:  {"sentence-similarity", "sentence-transformers"},
		TinySpeechRecognition:   {"automatic-speech-recognition", "transformers"},
		TinyTextClassification:  {"text-classification", "transformers"},
		TinyTokenClassification: {"token-classification", "transformers"},
		TinyFillMask:            {"fill-mask", "transformers"},
		TinyImageClassification: {"image-classification", "transformers"},
		TinyFeatureExtraction:   {"feature-extraction", "transformers"},
	} {
		t.Run(id, func(t *testing.T) {
			dir := filepath.Join(root, filepath.FromSlash(id))
			if _, err := os.Stat(filepath.Join(dir, repoMetaFile)); !os.IsNotExist(err) {
				t.Errorf("%s has a %s (err %v): the card and config files should say it all", id, repoMetaFile, err)
			}
			m, err := loadRepoDir(id, dir)
			if err != nil {
				t.Fatal(err)
			}
			card := slices.ContainsFunc(m.Files, func(f File) bool { return f.Name == "README.md" })
			if got := [2]string{m.PipelineTag, m.LibraryName}; got != want || !card {
				t.Errorf("read %v (card served: %v), want %v", got, card, want)
			}
			// The same folder without its card: every entry linked but README.md.
			bare := t.TempDir()
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Name() != "README.md" {
					if err := os.Symlink(filepath.Join(dir, e.Name()), filepath.Join(bare, e.Name())); err != nil {
						t.Fatal(err)
					}
				}
			}
			read, err := readRepoMeta(bare, m.Files)
			if err != nil {
				t.Fatal(err)
			}
			if got := [2]string{read.PipelineTag, read.LibraryName}; got != want {
				t.Errorf("config files alone say %v, want %v", got, want)
			}
		})
	}
}
