package huggingface_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

const (
	allToken  = "hf_test_all_access_0123456789"
	noneToken = "hf_test_no_grants_0123456789"
)

func newSim(t *testing.T) (*hubsim.Server, *huggingface.Client) {
	t.Helper()
	sim := hubsim.New()
	t.Cleanup(sim.Close)
	sim.SetToken(allToken, hubsim.AllRepos)
	sim.SetToken(noneToken)
	return sim, huggingface.NewClient(sim.URL, &http.Client{Timeout: 10 * time.Second})
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestInspectEstimates runs Inspect on real models, described by the
// Hub-shaped fixtures hubsim serves (parameter counts, file names and sizes
// as their Hub pages list them), and checks two things:
//
//   - the exact estimate, against values worked out by hand from the rule
//     documented on huggingface.Estimate (the arithmetic is in each row);
//   - that the estimate is within 20% of a published figure. "Published"
//     means a number the model's authors or the serving docs state, and the
//     row says which: either a memory figure (compared with VRAMGB when it is
//     a total requirement, with WeightBytes when it is the weights alone), or
//     a parameter count turned into bytes at the precision the model is
//     served in (compared with WeightBytes). None of them was measured here.
func TestInspectEstimates(t *testing.T) {
	const gb = 1e9
	type basis int
	const (
		weights basis = iota // published figure is the weights alone
		total                // published figure is the memory needed to serve
	)
	tests := []struct {
		id        string
		published float64 // GB (10^9 bytes), or GiB for total
		basis     basis
		source    string
		want      huggingface.Inspection
	}{
		{
			id: "meta-llama/Llama-3.1-8B-Instruct", published: 16, basis: weights,
			source: "Hugging Face blog 'Llama 3.1 - 405B, 70B & 8B', inference memory table: 8B in FP16/BF16, 16 GB",
			want: huggingface.Inspection{
				ModelID: "meta-llama/Llama-3.1-8B-Instruct", PipelineTag: "text-generation", LibraryName: "transformers",
				Family: huggingface.FamilyTextGeneration, Gated: true,
				Estimate: huggingface.Estimate{
					Parameters:    8030261248,
					WeightBytes:   8030261248 * 2, // BF16
					DownloadBytes: 16060556376,    // model-0000{1..4}-of-00004.safetensors, not original/consolidated.00.pth
					KVCacheBytes:  2 * 32 * 8 * 128 * 4096 * 2,
					VRAMGB:        19, // (16060522496×1.2 + 536870912) / 2^30 = 18.45
				},
			},
		},
		{
			id: "meta-llama/Llama-3.1-70B-Instruct", published: 140, basis: weights,
			source: "Hugging Face blog 'Llama 3.1 - 405B, 70B & 8B', inference memory table: 70B in FP16/BF16, 140 GB",
			want: huggingface.Inspection{
				ModelID: "meta-llama/Llama-3.1-70B-Instruct", PipelineTag: "text-generation", LibraryName: "transformers",
				Family: huggingface.FamilyTextGeneration, Gated: true,
				Estimate: huggingface.Estimate{
					Parameters:    70553706496,
					WeightBytes:   70553706496 * 2,
					DownloadBytes: 141107497984, // 30 safetensors shards, not the 8 original/*.pth
					KVCacheBytes:  2 * 80 * 8 * 128 * 4096 * 2,
					VRAMGB:        159, // (141107412992×1.2 + 1342177280) / 2^30 = 158.95
				},
			},
		},
		{
			id: "mistralai/Mistral-7B-Instruct-v0.3", published: 16, basis: total,
			source: "Mistral AI self-deployment docs: Mistral 7B, minimum GPU RAM for inference 16 GB",
			want: huggingface.Inspection{
				ModelID: "mistralai/Mistral-7B-Instruct-v0.3", PipelineTag: "text-generation", LibraryName: "transformers",
				Family: huggingface.FamilyTextGeneration, Gated: true,
				Estimate: huggingface.Estimate{
					Parameters:    7248023552,
					WeightBytes:   7248023552 * 2,
					DownloadBytes: 14496080928, // model-*.safetensors; consolidated.safetensors is the same weights again
					KVCacheBytes:  2 * 32 * 8 * 128 * 4096 * 2,
					VRAMGB:        17, // (14496047104×1.2 + 536870912) / 2^30 = 16.70
				},
			},
		},
		{
			id: "Qwen/Qwen2.5-14B-Instruct", published: 14.7 * 2, basis: weights,
			source: "model card: 'Number of Parameters: 14.7B', served in BF16 (2 bytes each)",
			want: huggingface.Inspection{
				ModelID: "Qwen/Qwen2.5-14B-Instruct", PipelineTag: "text-generation", LibraryName: "transformers",
				Family: huggingface.FamilyTextGeneration,
				Estimate: huggingface.Estimate{
					Parameters:    14770033664,
					WeightBytes:   14770033664 * 2,
					DownloadBytes: 29540133888,
					KVCacheBytes:  2 * 48 * 8 * 128 * 4096 * 2, // 48 layers, 8 KV heads, 5120/40 = 128
					VRAMGB:        34,                          // (29540067328×1.2 + 805306368) / 2^30 = 33.76
				},
			},
		},
		{
			id: "openai-community/gpt2", published: 0.124 * 2, basis: weights,
			source: "model card: smallest GPT-2, 124M parameters; stored FP32, served FP16 by vLLM's dtype auto",
			want: huggingface.Inspection{
				ModelID: "openai-community/gpt2", PipelineTag: "text-generation", LibraryName: "transformers",
				Family: huggingface.FamilyTextGeneration,
				Estimate: huggingface.Estimate{
					Parameters:    137022720,
					WeightBytes:   137022720 * 2,               // F32 counted as 16-bit
					DownloadBytes: 548105171,                   // model.safetensors as stored (F32)
					KVCacheBytes:  2 * 12 * 12 * 64 * 1024 * 2, // n_layer, n_head, n_embd/n_head; context capped at n_positions
					VRAMGB:        1,
				},
			},
		},
		{
			id: "stabilityai/sdxl-turbo", published: 6.94, basis: weights,
			source: "model page file list: sd_xl_turbo_1.0_fp16.safetensors, one fp16 copy of every component, 6.94 GB",
			want: huggingface.Inspection{
				ModelID: "stabilityai/sdxl-turbo", PipelineTag: "text-to-image", LibraryName: "diffusers",
				Family: huggingface.FamilyDiffusion,
				Estimate: huggingface.Estimate{
					// fp16 safetensors of text_encoder, text_encoder_2, unet, vae; not the root single files
					WeightBytes:   246144152 + 1389382176 + 5135149760 + 167335342,
					DownloadBytes: 246144152 + 1389382176 + 5135149760 + 167335342,
					VRAMGB:        8, // 6938011430×1.2 / 2^30 = 7.75
				},
			},
		},
		{
			id: "stabilityai/stable-diffusion-xl-base-1.0", published: 6.94, basis: weights,
			source: "model page file list: sd_xl_base_1.0.safetensors (fp16, all components), 6.94 GB",
			want: huggingface.Inspection{
				ModelID: "stabilityai/stable-diffusion-xl-base-1.0", PipelineTag: "text-to-image", LibraryName: "diffusers",
				Family: huggingface.FamilyDiffusion,
				Estimate: huggingface.Estimate{
					// vae_1_0, vae_encoder, vae_decoder and the onnx/openvino copies are not pipeline components
					WeightBytes:   246144152 + 1389382176 + 5135149760 + 167335342,
					DownloadBytes: 246144152 + 1389382176 + 5135149760 + 167335342,
					VRAMGB:        8,
				},
			},
		},
		{
			id: "black-forest-labs/FLUX.1-schnell", published: 12*2 + 4.7*2 + 0.123*2 + 0.084*2, basis: weights,
			source: "model card: 12B-parameter transformer; T5-XXL encoder 4.7B and CLIP ViT-L 123M text encoders, VAE 84M (their papers); all in BF16",
			want: huggingface.Inspection{
				ModelID: "black-forest-labs/FLUX.1-schnell", PipelineTag: "text-to-image", LibraryName: "diffusers",
				Family: huggingface.FamilyDiffusion,
				Estimate: huggingface.Estimate{
					// transformer (3 shards) + text_encoder + text_encoder_2 (2 shards) + vae;
					// not flux1-schnell.safetensors nor ae.safetensors at the root
					WeightBytes:   9962580296 + 9949328904 + 3870584832 + 246144152 + 4994582224 + 4530066360 + 167666902,
					DownloadBytes: 9962580296 + 9949328904 + 3870584832 + 246144152 + 4994582224 + 4530066360 + 167666902,
					VRAMGB:        38, // 33720953670×1.2 / 2^30 = 37.69
				},
			},
		},
		{
			id: "stable-diffusion-v1-5/stable-diffusion-v1-5", published: (0.860 + 0.123 + 0.084 + 0.304) * 2, basis: weights,
			source: "model card: 860M UNet, CLIP ViT-L/14 text encoder 123M; VAE 84M, safety checker (CLIP ViT-L/14 vision) 304M; fp16",
			want: huggingface.Inspection{
				ModelID: "stable-diffusion-v1-5/stable-diffusion-v1-5", PipelineTag: "text-to-image", LibraryName: "diffusers",
				Family: huggingface.FamilyDiffusion,
				Estimate: huggingface.Estimate{
					// fp16 .safetensors of safety_checker, text_encoder, unet, vae: not .bin, not non_ema, not v1-5-pruned*
					WeightBytes:   608016280 + 246144152 + 1719125304 + 167335342,
					DownloadBytes: 608016280 + 246144152 + 1719125304 + 167335342,
					VRAMGB:        4, // 2740621078×1.2 / 2^30 = 3.06
				},
			},
		},
		{
			id: "google-bert/bert-base-uncased", published: 0.110 * 4, basis: weights,
			source: "BERT paper (Devlin et al. 2018): BERT-base 110M parameters, served in FP32",
			want: huggingface.Inspection{
				ModelID: "google-bert/bert-base-uncased", PipelineTag: "fill-mask", LibraryName: "transformers",
				Family: huggingface.FamilyEncoder,
				Estimate: huggingface.Estimate{
					Parameters: 110106428, WeightBytes: 110106428 * 4, DownloadBytes: 440449768, VRAMGB: 1,
				},
			},
		},
		{
			id: "sentence-transformers/all-MiniLM-L6-v2", published: 0.080, basis: weights,
			source: "sbert.net pretrained models table: all-MiniLM-L6-v2, model size 80 MB",
			want: huggingface.Inspection{
				ModelID: "sentence-transformers/all-MiniLM-L6-v2", PipelineTag: "sentence-similarity", LibraryName: "sentence-transformers",
				Family: huggingface.FamilyEncoder,
				Estimate: huggingface.Estimate{
					Parameters: 22713216, WeightBytes: 22713216 * 4, DownloadBytes: 90868376, VRAMGB: 1,
				},
			},
		},
		{
			id: "openai/whisper-large-v3", published: 1.55 * 2, basis: weights,
			source: "model card: large-v3, 1550M parameters; FP16 checkpoint",
			want: huggingface.Inspection{
				ModelID: "openai/whisper-large-v3", PipelineTag: "automatic-speech-recognition", LibraryName: "transformers",
				Family: huggingface.FamilySpeech,
				Estimate: huggingface.Estimate{
					Parameters:    1543490560,
					WeightBytes:   1543490560 * 2,
					DownloadBytes: 3087130976, // model.safetensors, not the model.fp32-* shards
					VRAMGB:        4,          // 3086981120×1.2 / 2^30 = 3.45
				},
			},
		},
	}
	sim, client := newSim(t)
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := client.Inspect(testContext(t), tt.id, secret.New(allToken))
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			m, _ := sim.Model(tt.id)
			tt.want.Revision = m.SHA
			// Files: TestInspectFiles.
			if diff := cmp.Diff(&tt.want, got, cmpopts.IgnoreFields(huggingface.Estimate{}, "Files")); diff != "" {
				t.Errorf("Inspect (-want +got):\n%s", diff)
			}
			var estimate float64
			switch tt.basis {
			case weights:
				estimate = float64(got.Estimate.WeightBytes) / gb
			case total:
				estimate = float64(got.Estimate.VRAMGB)
			}
			if ratio := estimate / tt.published; ratio < 0.8 || ratio > 1.2 {
				t.Errorf("estimate %.2f is %.0f%% of the published %.2f (%s); want within 20%%",
					estimate, ratio*100, tt.published, tt.source)
			}
		})
	}
}

// TestInspectFiles checks the download list: the weights the estimate
// counted (one variant, one format, one shard series) and the configuration
// and tokenizer files beside them; no other runtime's copy, no shard index of
// a set not chosen, no README.
func TestInspectFiles(t *testing.T) {
	tests := []struct {
		id   string
		want []string
	}{
		{"stabilityai/sdxl-turbo", []string{"model_index.json", "scheduler/scheduler_config.json",
			"text_encoder/config.json", "text_encoder/model.fp16.safetensors",
			"text_encoder_2/config.json", "text_encoder_2/model.fp16.safetensors",
			"tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
			"tokenizer_2/merges.txt", "tokenizer_2/special_tokens_map.json", "tokenizer_2/tokenizer_config.json", "tokenizer_2/vocab.json",
			"unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors",
			"vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors"}},
		{"black-forest-labs/FLUX.1-schnell", []string{"model_index.json", "scheduler/scheduler_config.json",
			"text_encoder/config.json", "text_encoder/model.safetensors",
			"text_encoder_2/config.json", "text_encoder_2/model-00001-of-00002.safetensors",
			"text_encoder_2/model-00002-of-00002.safetensors", "text_encoder_2/model.safetensors.index.json",
			"tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
			"tokenizer_2/special_tokens_map.json", "tokenizer_2/spiece.model", "tokenizer_2/tokenizer.json", "tokenizer_2/tokenizer_config.json",
			"transformer/config.json", "transformer/diffusion_pytorch_model-00001-of-00003.safetensors",
			"transformer/diffusion_pytorch_model-00002-of-00003.safetensors", "transformer/diffusion_pytorch_model-00003-of-00003.safetensors",
			"transformer/diffusion_pytorch_model.safetensors.index.json",
			"vae/config.json", "vae/diffusion_pytorch_model.safetensors"}},
		{"openai/whisper-large-v3", []string{"added_tokens.json", "config.json", "generation_config.json", "merges.txt",
			"model.safetensors", "normalizer.json", "preprocessor_config.json", "special_tokens_map.json",
			"tokenizer.json", "tokenizer_config.json", "vocab.json"}},
		{"sentence-transformers/all-MiniLM-L6-v2", []string{"1_Pooling/config.json", "config.json",
			"config_sentence_transformers.json", "data_config.json", "model.safetensors", "modules.json",
			"sentence_bert_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"}},
		{"google-bert/bert-base-uncased", []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt"}},
	}
	_, client := newSim(t)
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := client.Inspect(testContext(t), tt.id, secret.New(allToken))
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if diff := cmp.Diff(tt.want, got.Estimate.Files); diff != "" {
				t.Errorf("Files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInspectFollowsRename(t *testing.T) {
	sim, client := newSim(t)
	got, err := client.Inspect(testContext(t), "bert-base-uncased", secret.Secret{})
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if got.ModelID != "google-bert/bert-base-uncased" {
		t.Errorf("ModelID = %q, want the canonical google-bert/bert-base-uncased", got.ModelID)
	}
	log := sim.Log()
	if len(log) < 2 || log[0].Path != "/api/models/bert-base-uncased" || log[1].Path != "/api/models/google-bert/bert-base-uncased" {
		t.Errorf("requests = %+v, want the old id then the new one", log)
	}
	if log[1].Query != "blobs=true" {
		t.Errorf("redirected request query = %q, want blobs=true kept", log[1].Query)
	}
}

func TestInspectErrors(t *testing.T) {
	const (
		private = "acme/private-model"
		gated   = "meta-llama/Llama-3.1-8B-Instruct"
	)
	tests := []struct {
		name  string
		setup func(*hubsim.Server)
		id    string
		token string
		want  huggingface.Error // Kind, Model, Retryable, RetryAfter compared
		// wantMessage is a fragment the user-facing message must hold.
		wantMessage string
	}{
		{name: "missing, anonymous (401 without code)", id: "acme/nothing-here",
			want: huggingface.Error{Kind: huggingface.KindPrivate, Model: "acme/nothing-here"}, wantMessage: "pass an hf_token"},
		{name: "missing, with a token", id: "acme/nothing-here", token: noneToken,
			want: huggingface.Error{Kind: huggingface.KindNotFound, Model: "acme/nothing-here"}, wantMessage: "was not found"},
		{name: "private, anonymous", id: private,
			want: huggingface.Error{Kind: huggingface.KindPrivate, Model: private}, wantMessage: "is private"},
		{name: "private, token without grant", id: private, token: noneToken,
			want: huggingface.Error{Kind: huggingface.KindNotFound, Model: private}, wantMessage: "cannot read it"},
		{name: "gated, anonymous", id: gated,
			want: huggingface.Error{Kind: huggingface.KindGated, Model: gated}, wantMessage: "pass an hf_token"},
		{name: "gated, token without grant", id: gated, token: noneToken,
			want: huggingface.Error{Kind: huggingface.KindGated, Model: gated}, wantMessage: "has not been granted access"},
		{name: "unknown token", id: "openai-community/gpt2", token: "hf_revoked_token_0000",
			want: huggingface.Error{Kind: huggingface.KindInvalidToken, Model: "openai-community/gpt2"}, wantMessage: "rejected the hf_token"},
		{name: "disabled", id: "openai-community/gpt2", token: allToken,
			setup: func(s *hubsim.Server) { s.SetDisabled("openai-community/gpt2", true) },
			want:  huggingface.Error{Kind: huggingface.KindDisabled, Model: "openai-community/gpt2"}, wantMessage: "disabled"},
		{name: "rate limited", id: "openai-community/gpt2",
			setup:       func(s *hubsim.Server) { s.RateLimitNext(1, 42*time.Second) },
			want:        huggingface.Error{Kind: huggingface.KindRateLimited, Model: "openai-community/gpt2", Retryable: true, RetryAfter: 42 * time.Second},
			wantMessage: "retry in 42s"},
		{name: "5xx twice", id: "openai-community/gpt2",
			setup: func(s *hubsim.Server) { s.FailNext(2, http.StatusServiceUnavailable) },
			want:  huggingface.Error{Kind: huggingface.KindUnavailable, Model: "openai-community/gpt2", Retryable: true}, wantMessage: "HTTP 503"},
		{name: "malformed id", id: "../etc/passwd",
			want: huggingface.Error{Kind: huggingface.KindInvalid, Model: "../etc/passwd"}, wantMessage: "not a valid"},
		{name: "malformed id, double dash", id: "acme/a--b",
			want: huggingface.Error{Kind: huggingface.KindInvalid, Model: "acme/a--b"}, wantMessage: "not a valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, client := newSim(t)
			sim.AddModel(hubsim.Model{ID: private, Private: true, PipelineTag: "text-generation",
				Parameters: map[string]int64{"BF16": 1000}, Files: []hubsim.File{{Name: "model.safetensors", Size: 2100}}})
			if tt.setup != nil {
				tt.setup(sim)
			}
			_, err := client.Inspect(testContext(t), tt.id, secret.New(tt.token))
			var he *huggingface.Error
			if !errors.As(err, &he) {
				t.Fatalf("Inspect error = %v (%T), want *huggingface.Error", err, err)
			}
			got := huggingface.Error{Kind: he.Kind, Model: he.Model, Retryable: he.Retryable, RetryAfter: he.RetryAfter}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("error (-want +got):\n%s\nmessage: %s", diff, he.Error())
			}
			if !strings.Contains(he.Error(), tt.wantMessage) {
				t.Errorf("message %q does not hold %q", he.Error(), tt.wantMessage)
			}
			if tt.token != "" && strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, errors.Unwrap(err)), tt.token) {
				t.Errorf("the token leaks into the error: %v", err)
			}
		})
	}
}

func TestInspectFaultsAroundASuccess(t *testing.T) {
	tests := []struct {
		name         string
		setup        func(*hubsim.Server)
		wantRequests int
	}{
		{name: "plain", wantRequests: 2}, // info, config.json
		{name: "one 503 is retried at once", setup: func(s *hubsim.Server) { s.FailNext(1, http.StatusServiceUnavailable) }, wantRequests: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, client := newSim(t)
			if tt.setup != nil {
				tt.setup(sim)
			}
			got, err := client.Inspect(testContext(t), "openai-community/gpt2", secret.Secret{})
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if got.ModelID != "openai-community/gpt2" {
				t.Errorf("ModelID = %q", got.ModelID)
			}
			if n := sim.Requests(); n != tt.wantRequests {
				t.Errorf("requests = %d, want %d: %+v", n, tt.wantRequests, sim.Log())
			}
		})
	}
}

func TestInspectGatedAccess(t *testing.T) {
	const id = "meta-llama/Llama-3.1-8B-Instruct"
	tests := []struct {
		name     string
		token    string
		grant    []string
		wantKind huggingface.ErrorKind // "" for success
	}{
		{name: "granted this repo", token: "hf_granted_0001", grant: []string{id}},
		{name: "granted everything", token: "hf_granted_0002", grant: []string{hubsim.AllRepos}},
		{name: "granted another repo", token: "hf_granted_0003", grant: []string{"meta-llama/Llama-3.1-70B-Instruct"}, wantKind: huggingface.KindGated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, client := newSim(t)
			sim.SetToken(tt.token, tt.grant...)
			_, err := client.Inspect(testContext(t), id, secret.New(tt.token))
			if tt.wantKind == "" {
				if err != nil {
					t.Fatalf("Inspect: %v", err)
				}
			} else {
				var he *huggingface.Error
				if !errors.As(err, &he) || he.Kind != tt.wantKind {
					t.Fatalf("Inspect error = %v, want kind %s", err, tt.wantKind)
				}
			}
			var sawAuthCheck bool
			for _, r := range sim.Log() {
				sawAuthCheck = sawAuthCheck || r.Path == "/api/models/"+id+"/auth-check"
			}
			if !sawAuthCheck {
				t.Errorf("no auth-check request: %+v", sim.Log())
			}
		})
	}
}

// A Hub that does not serve auth-check (404 without an error code): the
// client proves access with a HEAD of config.json at the pinned revision.
func TestInspectGatedAccessFallsBackToHead(t *testing.T) {
	const id = "meta-llama/Llama-3.1-8B-Instruct"
	sim, _ := newSim(t)
	sim.SetToken("hf_granted_0001", id)
	target, err := url.Parse(sim.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var heads []string
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/auth-check") {
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodHead {
			mu.Lock()
			heads = append(heads, r.URL.Path)
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	client := huggingface.NewClient(front.URL, nil)
	m, _ := sim.Model(id)

	if _, err := client.Inspect(testContext(t), id, secret.New("hf_granted_0001")); err != nil {
		t.Fatalf("Inspect with a granted token: %v", err)
	}
	want := []string{"/" + id + "/resolve/" + m.SHA + "/config.json"}
	mu.Lock()
	if diff := cmp.Diff(want, heads); diff != "" {
		t.Errorf("HEAD requests (-want +got):\n%s", diff)
	}
	mu.Unlock()

	_, err = client.Inspect(testContext(t), id, secret.New(noneToken))
	var he *huggingface.Error
	if !errors.As(err, &he) || he.Kind != huggingface.KindGated {
		t.Fatalf("Inspect with a token without grant = %v, want KindGated", err)
	}
}

// The token goes to the Hub's host only, never to where a redirect points.
func TestInspectKeepsTokenOnTheHubHost(t *testing.T) {
	var mu sync.Mutex
	var gotAuth []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"acme/moved","sha":"0123456789abcdef0123456789abcdef01234567","pipeline_tag":"fill-mask",
			"siblings":[{"rfilename":"model.safetensors","size":1000}],"safetensors":{"parameters":{"F32":250},"total":250}}`)
	}))
	t.Cleanup(other.Close)
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+allToken {
			t.Errorf("the Hub itself got Authorization %q", r.Header.Get("Authorization"))
		}
		http.Redirect(w, r, other.URL+"/api/models/acme/moved", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(hub.Close)

	got, err := huggingface.NewClient(hub.URL, nil).Inspect(testContext(t), "acme/old", secret.New(allToken))
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if got.ModelID != "acme/moved" {
		t.Errorf("ModelID = %q, want acme/moved", got.ModelID)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{""}, gotAuth); diff != "" {
		t.Errorf("Authorization seen by the other host (-want +got):\n%s", diff)
	}
}

func TestInspectCancelled(t *testing.T) {
	_, client := newSim(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := client.Inspect(ctx, "openai-community/gpt2", secret.Secret{})
	var he *huggingface.Error
	if !errors.As(err, &he) || he.Kind != huggingface.KindUnavailable || !he.Retryable {
		t.Fatalf("Inspect = %v, want a retryable KindUnavailable", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(err, context.Canceled) = false for %v", err)
	}
}

// A repo with neither safetensors metadata nor model_index.json: the root
// weight set PyTorch loads counts (one format, one shard series), as stored;
// not the larger TensorFlow copy.
func TestInspectLargestWeightSet(t *testing.T) {
	sim, client := newSim(t)
	sim.AddModel(hubsim.Model{
		ID: "acme/legacy-bin", PipelineTag: "text2text-generation", LibraryName: "transformers",
		Files: []hubsim.File{
			{Name: "config.json", Size: 2, Content: []byte("{}")},
			{Name: "pytorch_model-00001-of-00002.bin", Size: 3_000_000_000},
			{Name: "pytorch_model-00002-of-00002.bin", Size: 2_000_000_000},
			{Name: "tf_model.h5", Size: 5_100_000_000},
			{Name: "onnx/encoder_model.onnx", Size: 1_000_000_000},
			{Name: "pytorch_model.bin.index.json", Size: 30_000, Content: []byte("{}")},
		},
	})
	got, err := client.Inspect(testContext(t), "acme/legacy-bin", secret.Secret{})
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	want := huggingface.Estimate{WeightBytes: 5_000_000_000, DownloadBytes: 5_000_000_000, VRAMGB: 6, // 6e9 / 2^30 = 5.59
		Files: []string{"config.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json"}}
	if diff := cmp.Diff(want, got.Estimate); diff != "" {
		t.Errorf("Estimate (-want +got):\n%s", diff)
	}
	if got.Family != huggingface.FamilyOther {
		t.Errorf("Family = %q, want other", got.Family)
	}
}

func TestInspectConcurrent(t *testing.T) {
	_, client := newSim(t)
	ids := hubsim.Preloaded()
	var wg sync.WaitGroup
	errs := make(chan error, len(ids)*2)
	for range 2 {
		for _, id := range ids {
			wg.Go(func() {
				if _, err := client.Inspect(testContext(t), id, secret.New(allToken)); err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
