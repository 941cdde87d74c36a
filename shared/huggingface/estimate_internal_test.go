package huggingface

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestKVCacheBytes(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		want int64
	}{
		{name: "llama GQA", cfg: `{"num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"hidden_size":4096,"max_position_embeddings":131072}`,
			want: 2 * 32 * 8 * 128 * 4096 * 2},
		{name: "explicit head_dim wins", cfg: `{"num_hidden_layers":40,"num_attention_heads":32,"num_key_value_heads":8,"hidden_size":5120,"head_dim":128}`,
			want: 2 * 40 * 8 * 128 * 4096 * 2},
		{name: "no KV heads: multi-head", cfg: `{"num_hidden_layers":2,"num_attention_heads":4,"hidden_size":256}`,
			want: 2 * 2 * 4 * 64 * 4096 * 2},
		{name: "multi-query", cfg: `{"n_layer":2,"n_head":4,"n_embd":256,"multi_query":true}`,
			want: 2 * 2 * 1 * 64 * 4096 * 2},
		{name: "gpt2 names, short context", cfg: `{"n_layer":12,"n_head":12,"n_embd":768,"n_positions":1024}`,
			want: 2 * 12 * 12 * 64 * 1024 * 2},
		{name: "multimodal text_config", cfg: `{"vision_config":{"num_hidden_layers":27},"text_config":{"num_hidden_layers":28,"num_attention_heads":28,"num_key_value_heads":4,"hidden_size":3584}}`,
			want: 2 * 28 * 4 * 128 * 4096 * 2},
		{name: "unknown shape", cfg: `{"model_type":"mamba"}`, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg map[string]any
			if err := json.Unmarshal([]byte(tt.cfg), &cfg); err != nil {
				t.Fatal(err)
			}
			if got := kvCacheBytes(cfg, DefaultContextLength); got != tt.want {
				t.Errorf("kvCacheBytes = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestWeightsFromParameters(t *testing.T) {
	tests := []struct {
		name                               string
		params                             map[string]int64
		family                             Family
		wantParams, wantLoaded, wantStored int64
	}{
		{name: "bf16 llm", params: map[string]int64{"BF16": 1000}, family: FamilyTextGeneration, wantParams: 1000, wantLoaded: 2000, wantStored: 2000},
		{name: "f32 llm served in 16-bit", params: map[string]int64{"F32": 1000}, family: FamilyTextGeneration, wantParams: 1000, wantLoaded: 2000, wantStored: 4000},
		{name: "f32 encoder kept", params: map[string]int64{"F32": 1000}, family: FamilyEncoder, wantParams: 1000, wantLoaded: 4000, wantStored: 4000},
		{name: "fp8 checkpoint with bf16 norms", params: map[string]int64{"F8_E4M3": 1000, "BF16": 10}, family: FamilyTextGeneration, wantParams: 1010, wantLoaded: 1020, wantStored: 1020},
		{name: "gptq packed int4", params: map[string]int64{"I32": 100, "F16": 50}, family: FamilyTextGeneration, wantParams: 150, wantLoaded: 500, wantStored: 500},
		{name: "unknown dtype counts 4 bytes", params: map[string]int64{"X9": 10}, family: FamilyOther, wantParams: 10, wantLoaded: 40, wantStored: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, l, s := weightsFromParameters(&safetensors{Parameters: tt.params}, tt.family)
			if diff := cmp.Diff([3]int64{tt.wantParams, tt.wantLoaded, tt.wantStored}, [3]int64{p, l, s}); diff != "" {
				t.Errorf("params, loaded, stored (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChooseComponentSet(t *testing.T) {
	sib := func(name string, size int64) sibling { return sibling{RFilename: name, Size: size} }
	tests := []struct {
		name      string
		siblings  []sibling
		wantFiles []string
	}{
		{name: "fp16 safetensors first", siblings: []sibling{
			sib("unet/diffusion_pytorch_model.bin", 40), sib("unet/diffusion_pytorch_model.fp16.bin", 20),
			sib("unet/diffusion_pytorch_model.safetensors", 40), sib("unet/diffusion_pytorch_model.fp16.safetensors", 20),
			sib("unet/diffusion_pytorch_model.non_ema.safetensors", 40)},
			wantFiles: []string{"unet/diffusion_pytorch_model.fp16.safetensors"}},
		{name: "sharded fp16 variant", siblings: []sibling{
			sib("transformer/diffusion_pytorch_model.fp16-00001-of-00002.safetensors", 10),
			sib("transformer/diffusion_pytorch_model.fp16-00002-of-00002.safetensors", 5),
			sib("transformer/diffusion_pytorch_model-00001-of-00003.safetensors", 10),
			sib("transformer/diffusion_pytorch_model-00002-of-00003.safetensors", 10),
			sib("transformer/diffusion_pytorch_model-00003-of-00003.safetensors", 10)},
			wantFiles: []string{"transformer/diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "transformer/diffusion_pytorch_model.fp16-00002-of-00002.safetensors"}},
		{name: "bin only", siblings: []sibling{sib("vae/diffusion_pytorch_model.bin", 4), sib("vae/config.json", 1)},
			wantFiles: []string{"vae/diffusion_pytorch_model.bin"}},
		{name: "only a non_ema copy", siblings: []sibling{sib("unet/diffusion_pytorch_model.non_ema.safetensors", 9)},
			wantFiles: []string{"unet/diffusion_pytorch_model.non_ema.safetensors"}},
		{name: "no weights (tokenizer)", siblings: []sibling{sib("tokenizer/vocab.json", 9)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := chooseComponentSet(weightSets(tt.siblings))
			if diff := cmp.Diff(tt.wantFiles, got.files); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiffusersComponents(t *testing.T) {
	var index map[string]json.RawMessage
	err := json.Unmarshal([]byte(`{"_class_name":"StableDiffusionXLPipeline","_diffusers_version":"0.24.0",
		"feature_extractor":[null,null],"force_zeros_for_empty_prompt":true,"image_encoder":[null,null],
		"scheduler":["diffusers","EulerAncestralDiscreteScheduler"],"text_encoder":["transformers","CLIPTextModel"],
		"unet":["diffusers","UNet2DConditionModel"],"vae":["diffusers","AutoencoderKL"]}`), &index)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"scheduler", "text_encoder", "unet", "vae"}
	if diff := cmp.Diff(want, diffusersComponents(index)); diff != "" {
		t.Errorf("components (-want +got):\n%s", diff)
	}
}

func TestVRAMGB(t *testing.T) {
	tests := []struct {
		weights, kv int64
		want        int
	}{
		{0, 0, 1},
		{1, 0, 1},
		{gib * 5 / 6, 0, 1},     // ×1.2 is exactly 1 GiB
		{gib*5/6 + 5, 0, 2},     // just above
		{10 * gib, 2 * gib, 14}, // 12 + 2
	}
	for _, tt := range tests {
		if got := vramGB(tt.weights, tt.kv); got != tt.want {
			t.Errorf("vramGB(%d, %d) = %d, want %d", tt.weights, tt.kv, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{name: "seconds", header: http.Header{"Retry-After": {"30"}}, want: 30 * time.Second},
		{name: "http date", header: http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, want: 90 * time.Second},
		{name: "RateLimit t", header: http.Header{"Ratelimit": {`"api";r=0;t=55`}}, want: 55 * time.Second},
		{name: "Retry-After wins", header: http.Header{"Retry-After": {"5"}, "Ratelimit": {`"api";r=0;t=55`}}, want: 5 * time.Second},
		{name: "capped", header: http.Header{"Retry-After": {"999999"}}, want: time.Hour},
		{name: "garbage", header: http.Header{"Retry-After": {"soon"}}, want: 0},
		{name: "none", header: http.Header{}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfter(tt.header, now); got != tt.want {
				t.Errorf("retryAfter = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestFamilyOf(t *testing.T) {
	tests := []struct {
		pipeline, library string
		want              Family
	}{
		{"text-generation", "transformers", FamilyTextGeneration},
		{"image-text-to-text", "transformers", FamilyTextGeneration},
		{"text-to-image", "diffusers", FamilyDiffusion},
		{"", "diffusers", FamilyDiffusion},
		{"sentence-similarity", "sentence-transformers", FamilyEncoder},
		{"fill-mask", "transformers", FamilyEncoder},
		{"automatic-speech-recognition", "transformers", FamilySpeech},
		{"text2text-generation", "transformers", FamilyOther},
		{"", "", FamilyOther},
	}
	for _, tt := range tests {
		if got := FamilyOf(tt.pipeline, tt.library); got != tt.want {
			t.Errorf("FamilyOf(%q, %q) = %q, want %q", tt.pipeline, tt.library, got, tt.want)
		}
	}
}

func TestValidID(t *testing.T) {
	tests := map[string]bool{
		"black-forest-labs/FLUX.1-schnell": true,
		"gpt2":                             true,
		"Qwen/Qwen2.5-14B-Instruct":        true,
		"":                                 false,
		"a/b/c":                            false,
		"../x":                             false,
		"acme/x..y":                        false,
		"acme/x--y":                        false,
		"acme/name.":                       false,
		"acme/-name":                       false,
		"acme/na me":                       false,
		"acme/name?x=1":                    false,
		// The Hub's rule (huggingface_hub validate_repo_id): '_' is a word
		// character, so it may start and end a part.
		"org/name_":                      true,
		"_org/_name":                     true,
		"org/" + strings.Repeat("n", 96): true,
		"org/" + strings.Repeat("n", 97): false,
		"org/name.git":                   false,
		"org/":                           false,
		"/name":                          false,
		"org/nàme":                       false,
	}
	for id, want := range tests {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}
